using System.Runtime.InteropServices;
using System.Text;
using GemmaScope.Core.Tests.Support;
using GemmaScope.Formats;
using GemmaScope.Models;

namespace GemmaScope.Core.Tests.Formats;

/// <summary>
/// The public checkpoint API (ModelCheckpoint, SafeTensorsFile, ShardIndex) on tiny Gemma checkpoints written here: the
/// expected bytes, offsets and sizes come from the test's own tensors, never from the reader.
/// </summary>
public sealed class ModelCheckpointTests : IDisposable
{
    private const int Vocab = 8, D = 4, Ff = 6, Layers = 2, Heads = 2, KvHeads = 1, HeadDim = 2;
    private readonly TempDir _dir = new();
    private readonly Random _rng = new(1234);

    public void Dispose() => _dir.Dispose();

    private static string Gemma2Config => $$"""
        {"model_type": "gemma2", "vocab_size": {{Vocab}}, "hidden_size": {{D}}, "intermediate_size": {{Ff}},
         "num_hidden_layers": {{Layers}}, "num_attention_heads": {{Heads}}, "num_key_value_heads": {{KvHeads}}, "head_dim": {{HeadDim}},
         "query_pre_attn_scalar": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "attn_logit_softcapping": 50.0,
         "final_logit_softcapping": 30.0, "sliding_window": 4, "bos_token_id": 2, "pad_token_id": 0}
        """;

    // The Gemma 2 tensors, written out by hand (not taken from GemmaArchitecture.ExpectedTensors).
    private static List<(string Name, long[] Shape)> Gemma2Tensors(bool qkNorm = false) => CheckpointTensors.Gemma2(Vocab, D, Ff, Layers, Heads, KvHeads, HeadDim, qkNorm);

    private byte[] RandomFloats(long count)
    {
        var f = new float[count];
        for (int i = 0; i < f.Length; i++)
        {
            f[i] = (float)(_rng.NextDouble() * 2 - 1);
        }

        return MemoryMarshal.AsBytes(f.AsSpan()).ToArray();
    }

    private static long Count(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);

    // Writes a Gemma 2 checkpoint in two shards (layer 0 and the embedding in the first); returns stored name → bytes.
    private Dictionary<string, byte[]> WriteSharded(string folder, string? prefix = null, bool qkNorm = false, string? config = null)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config ?? Gemma2Config);
        var bytes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        var shards = new[] { new List<SafeTensors.TensorToWrite>(), new List<SafeTensors.TensorToWrite>() };
        var map = new StringBuilder();
        foreach (var (name, shape) in Gemma2Tensors(qkNorm))
        {
            string stored = prefix is null ? name : prefix + name["model.".Length..];
            int s = name.StartsWith("model.layers.1.", StringComparison.Ordinal) || name == "model.norm.weight" ? 1 : 0;
            var data = RandomFloats(Count(shape));
            bytes[stored] = data;
            shards[s].Add(new(stored, TensorDType.Float32, shape, data));
            map.Append(map.Length == 0 ? "" : ", ").Append($"\"{stored}\": \"model-0000{s + 1}-of-00002.safetensors\"");
        }

        if (prefix is not null)
        {
            // A vision-tower tensor that must never be read as part of the text model.
            var vision = RandomFloats(3);
            bytes["model.vision_tower.patch.weight"] = vision;
            shards[1].Add(new("model.vision_tower.patch.weight", TensorDType.Float32, [3], vision));
            map.Append(", \"model.vision_tower.patch.weight\": \"model-00002-of-00002.safetensors\"");
        }

        for (int s = 0; s < 2; s++)
        {
            SafeTensors.Write(Path.Combine(folder, $"model-0000{s + 1}-of-00002.safetensors"), shards[s]);
        }

        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), $"{{\"metadata\": {{\"total_size\": 1}}, \"weight_map\": {{{map}}}}}");
        return bytes;
    }

    [Fact]
    public unsafe void A_sharded_checkpoint_gives_every_tensor_with_its_bytes_offset_and_shape()
    {
        var folder = _dir.File("ck");
        var written = WriteSharded(folder);

        using var ck = ModelCheckpoint.Open(folder);

        Assert.Equal(Path.GetFullPath(folder), ck.Folder);
        Assert.Equal([Path.Combine(ck.Folder, "model-00001-of-00002.safetensors"), Path.Combine(ck.Folder, "model-00002-of-00002.safetensors")], ck.Files);
        var a = ck.Architecture;
        Assert.Equal(("gemma2", Vocab, D, Ff, Layers, Heads, KvHeads, HeadDim), (a.ModelType, a.Vocab, a.DModel, a.DFf, a.Layers, a.Heads, a.KvHeads, a.HeadDim));
        Assert.Equal([new LayerAttention(4, 10000.0), new LayerAttention(null, 10000.0)], a.LayerKinds);
        Assert.Equal(written.Values.Sum(b => (long)b.Length), ck.WeightBytes);
        foreach (var (name, shape) in Gemma2Tensors())
        {
            var info = ck.Info(name);
            Assert.Equal(name, info.Name);
            Assert.Equal(TensorDType.Float32, info.DType);
            Assert.Equal(shape, info.Shape);
            Assert.Equal(written[name].Length, info.ByteCount);
            Assert.Equal(written[name], ck.Bytes(name).ToArray());
            Assert.Equal(written[name], new ReadOnlySpan<byte>((void*)ck.Address(name), written[name].Length).ToArray());

            // DataOffset is a plain file offset: read the file there with ordinary I/O.
            var raw = new byte[info.ByteCount];
            using (var fs = File.OpenRead(info.File))
            {
                fs.Position = info.DataOffset;
                fs.ReadExactly(raw);
            }

            Assert.Equal(written[name], raw);
        }

        Assert.Throws<KeyNotFoundException>(() => ck.Info("model.layers.9.mlp.up_proj.weight"));
    }

    [Fact]
    public void A_single_file_checkpoint_opens()
    {
        var folder = _dir.File("single");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), Gemma2Config);
        var tensors = Gemma2Tensors().Select(t => new SafeTensors.TensorToWrite(t.Name, TensorDType.Float32, t.Shape, RandomFloats(Count(t.Shape)))).ToList();
        SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);

        using var ck = ModelCheckpoint.Open(folder);

        Assert.Equal([Path.Combine(ck.Folder, "model.safetensors")], ck.Files);
        Assert.Equal(tensors[^1].Data.ToArray(), ck.Bytes("model.norm.weight").ToArray());
    }

    [Fact]
    public void A_hub_cache_snapshot_of_symbolic_links_into_blobs_opens()
    {
        var staging = _dir.File("staging");
        var written = WriteSharded(staging);
        var blobs = _dir.File("blobs");
        var snapshot = _dir.File(Path.Combine("snapshots", "abc"));
        Directory.CreateDirectory(blobs);
        Directory.CreateDirectory(snapshot);
        foreach (var f in Directory.GetFiles(staging))
        {
            var blob = Path.Combine(blobs, "sha-" + Path.GetFileName(f));
            File.Move(f, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(f)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }

        using var ck = ModelCheckpoint.Open(snapshot);

        Assert.Equal(written["model.layers.1.mlp.down_proj.weight"], ck.Bytes("model.layers.1.mlp.down_proj.weight").ToArray());
        Assert.StartsWith(Path.GetFullPath(snapshot), ck.Info("model.norm.weight").File, StringComparison.Ordinal);
    }

    [Fact]
    public void An_image_text_gemma3_checkpoint_is_read_by_canonical_names_and_its_vision_tower_is_not()
    {
        var config = $$$"""
            {"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "vocab_size": {{{Vocab}}}, "hidden_size": {{{D}}},
             "intermediate_size": {{{Ff}}}, "num_hidden_layers": {{{Layers}}}, "num_attention_heads": {{{Heads}}}, "num_key_value_heads": {{{KvHeads}}},
             "head_dim": {{{HeadDim}}}, "query_pre_attn_scalar": 2, "sliding_window": 4, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
             "sliding_window_pattern": 2}}
            """;
        var folder = _dir.File("g3");
        var written = WriteSharded(folder, prefix: "model.language_model.", qkNorm: true, config: config);

        using var ck = ModelCheckpoint.Open(folder);

        Assert.True(ck.Architecture.QkNorm);
        var info = ck.Info("model.layers.0.self_attn.q_norm.weight");
        Assert.Equal("model.language_model.layers.0.self_attn.q_norm.weight", info.Name);
        Assert.Equal(written[info.Name], ck.Bytes("model.layers.0.self_attn.q_norm.weight").ToArray());
        Assert.False(ck.Contains("model.vision_tower.patch.weight"));
        Assert.Equal(written.Where(kv => !kv.Key.Contains("vision", StringComparison.Ordinal)).Sum(kv => (long)kv.Value.Length), ck.WeightBytes);
    }

    [Fact]
    public void Released_files_and_a_disposed_checkpoint_refuse_addresses_instead_of_dangling()
    {
        var folder = _dir.File("ck");
        WriteSharded(folder);
        var ck = ModelCheckpoint.Open(folder);
        var keep = new HashSet<string>(StringComparer.Ordinal) { ck.Info("model.norm.weight").File };

        ck.ReleaseFilesExcept(keep);

        Assert.Throws<ObjectDisposedException>(() => ck.Address("model.embed_tokens.weight"));
        Assert.NotEqual(0, ck.Address("model.norm.weight"));
        ck.Dispose();
        Assert.Throws<ObjectDisposedException>(() => ck.Address("model.norm.weight"));
        ck.Dispose(); // twice is harmless, also for the files released before
    }

    [Fact]
    public void A_missing_shard_names_the_index_the_shard_and_a_tensor_in_it()
    {
        var folder = _dir.File("ck");
        WriteSharded(folder);
        File.Delete(Path.Combine(folder, "model-00002-of-00002.safetensors"));

        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Open(folder));

        Assert.Equal(Path.Combine(Path.GetFullPath(folder), "model.safetensors.index.json"), e.FilePath);
        Assert.Contains("model-00002-of-00002.safetensors", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("model.layers.1.", e.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_the_index_places_in_a_shard_that_lacks_it_is_named()
    {
        var folder = _dir.File("ck");
        WriteSharded(folder);
        var index = Path.Combine(folder, "model.safetensors.index.json");
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"model.norm.weight\": \"model-00002", "\"model.norm.weight\": \"model-00001", StringComparison.Ordinal));

        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Open(folder));

        Assert.Equal("model.norm.weight", e.Field);
        Assert.EndsWith("model-00001-of-00002.safetensors", e.FilePath, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrong_dtype_is_refused_naming_the_tensor()
    {
        var folder = _dir.File("single");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), Gemma2Config);
        var tensors = Gemma2Tensors().Select(t => t.Name == "model.norm.weight"
            ? new SafeTensors.TensorToWrite(t.Name, TensorDType.Float64, t.Shape, new byte[Count(t.Shape) * 8])
            : new SafeTensors.TensorToWrite(t.Name, TensorDType.Float32, t.Shape, RandomFloats(Count(t.Shape)))).ToList();
        SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);

        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Open(folder));

        Assert.Equal("model.norm.weight", e.Field);
        Assert.Equal("float64", e.Actual);
    }

    [Theory]
    [InlineData("not json", "is not valid JSON")]
    [InlineData("{\"metadata\": {}}", "has no \"weight_map\" object")]
    [InlineData("[1]", "has no \"weight_map\" object")]
    [InlineData("{\"weight_map\": {}}", "has an empty weight_map")]
    [InlineData("{\"weight_map\": {\"a\": 3}}", "weight_map[\"a\"] is a JSON Number")]
    [InlineData("{\"weight_map\": {\"a\": \"../../etc/passwd.safetensors\"}}", "is not a safe relative path")]
    [InlineData("{\"weight_map\": {\"a\": \"sub/x.safetensors\"}}", "is not a safe relative path")]
    [InlineData("{\"weight_map\": {\"a\": \"..\"}}", "is not a safe relative path")]
    [InlineData("{\"weight_map\": {\"a\": \"model.bin\"}}", "is not a .safetensors file")]
    [InlineData("{\"weight_map\": {\"a\": \"x.safetensors\", \"a\": \"y.safetensors\"}}", "names tensor 'a' twice")]
    public void A_malformed_shard_index_is_refused_naming_the_file(string text, string expected)
    {
        var path = _dir.File("model.safetensors.index.json");
        File.WriteAllText(path, text);

        var e = Assert.Throws<CheckpointFormatException>(() => ShardIndex.Parse(path));

        Assert.Equal(path, e.FilePath);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_shard_index_lists_each_shard_once_in_ordinal_order()
    {
        var path = _dir.File("model.safetensors.index.json");
        File.WriteAllText(path, "{\"metadata\": {\"total_size\": 12}, \"weight_map\": {\"b\": \"s2.safetensors\", \"a\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}}");

        var index = ShardIndex.Parse(path);

        Assert.Equal(["s1.safetensors", "s2.safetensors"], index.Shards);
        Assert.Equal("s2.safetensors", index.WeightMap["c"]);
        Assert.Equal(3, index.WeightMap.Count);
        Assert.Throws<FileNotFoundException>(() => ShardIndex.Parse(_dir.File("absent.json")));
    }

    [Fact]
    public void SafeTensorsFile_exposes_metadata_and_refuses_a_span_over_two_gibibytes()
    {
        // A sparse file whose one tensor is 2 GiB + 4 bytes: the header is valid, no data page is ever touched.
        var path = _dir.File("big.safetensors");
        long elements = (1L << 29) + 1;
        var head = TestSafeTensors.Build($"{{\"__metadata__\": {{\"format\": \"pt\"}}, \"w\": {{\"dtype\": \"F32\", \"shape\": [{elements}], \"data_offsets\": [0, {elements * 4}]}}}}", []);
        using (var fs = new FileStream(path, FileMode.CreateNew))
        {
            fs.Write(head);
            fs.SetLength(head.Length + (elements * 4));
        }

        using var file = SafeTensorsFile.Open(path);

        Assert.Equal("pt", file.Metadata["format"]);
        var info = file.Tensors["w"];
        Assert.Equal(head.Length, info.DataOffset);
        Assert.Equal(elements * 4, info.ByteCount);
        Assert.Equal(elements, info.ElementCount);
        Assert.Throws<NotSupportedException>(() => file.Bytes("w"));
        Assert.NotEqual(0, file.Address("w"));
    }

    [Fact]
    public void One_safetensors_parser_reports_a_checkpoint_shard_as_a_checkpoint_and_an_sae_file_as_an_sae()
    {
        // A file whose header promises more data than it holds: a valid one cut 4 bytes short.
        var path = _dir.File("params.safetensors");
        File.WriteAllBytes(path, TestSafeTensors.F32([("w_enc", [4, 4], new float[16])])[..^4]);

        var asCheckpoint = Assert.Throws<CheckpointFormatException>(() => SafeTensorsFile.Open(path));
        var asSae = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(path));

        foreach (GemmaScopeException e in new GemmaScopeException[] { asCheckpoint, asSae })
        {
            Assert.Equal(path, e.FilePath);
            Assert.Equal("w_enc", e.Field);
            Assert.Contains("past the end of the file", e.Problem, StringComparison.Ordinal);
            Assert.Equal("end <= 60", e.Expected);
            Assert.Equal("64", e.Actual);
            Assert.StartsWith($"{path}, tensor 'w_enc': ", e.Message, StringComparison.Ordinal);
        }
    }
}
