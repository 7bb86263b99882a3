using System.Text.Json;
using GemmaScope.Formats;
using GemmaScope.Hf;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// GemmaModel.FromPretrained on the tiny Gemma 3 (tools/onnx-fixtures/make_tiny_gemma3.py): 7 layers, 5 sliding, 1 full,
/// 1 sliding, window 4, rope_scaling linear ×8, QK-norm. Two independent expectations: reference.npz from a float64
/// PyTorch forward, and the C# float64 reference (Reference/Gemma2Reference.cs) reading the same checkpoint.
/// </summary>
public class Gemma3Tests
{
    private const double Tol = 2e-5;

    internal static string Dir(string layout) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-gemma3", layout);

    private static readonly Lazy<Dictionary<string, (int[] Shape, double[] Data)>> PyTorch =
        new(() => TestNpz.ReadFloat64(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-gemma3", "reference.npz")));

    private static readonly Lazy<Gemma2Reference> CSharp = new(() => Gemma2Reference.FromCheckpoint(Dir("text")));

    internal static int[] Probe()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-gemma3", "probe.json")));
        return [.. doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];
    }

    [Theory]
    [OnEngines("text")]
    [OnEngines("multimodal")]
    public void EveryHookOfEveryLayerAndTheLogitsEqualThePyTorchReference(string layout, GemmaEngineKind engine)
    {
        var reference = PyTorch.Value;
        using var model = GemmaModel.FromPretrained(Dir(layout), EngineData.Options(engine));
        Assert.Equal(7, model.LayerCount);
        var sites = TestData.AllSites(model.LayerCount, withLn2: true).ToArray();
        Assert.Contains(HookPoint.MlpIn(5), sites);
        Assert.Contains(HookPoint.Embed, sites);
        var run = model.Run(Probe(), capture: sites);
        foreach (var site in sites)
        {
            Assert.Equal(site.Name, model.TensorName(site));
            TestData.AssertClose(run.Activations(site), reference[site.Name.Replace('.', '/')].Data, Tol, $"{layout} {site.Name}");
        }

        // every hook the PyTorch forward recorded was checked (plus ln_final, which is no hook point)
        Assert.Equal(reference.Count - 2, sites.Length);
        TestData.AssertClose(run.Logits(), reference["logits"].Data, Tol, $"{layout} logits");
    }

    [Theory]
    [InlineData("text")]
    [InlineData("multimodal")]
    public void TheCSharpFloat64ReferenceEqualsThePyTorchOne(string layout)
    {
        // the second independent path: its own config and safetensors reading, its own forward
        var reference = PyTorch.Value;
        var cs = Gemma2Reference.FromCheckpoint(Dir(layout));
        Assert.True(cs.QkNorm);
        Assert.Equal([true, true, true, true, true, false, true], cs.Sliding);
        var output = cs.Forward(Probe());
        foreach (var (name, (_, data)) in reference)
        {
            // reference.npz's "ln_final/hook_normalized" is the final norm's output with its gain (the reference's "ln_final.output")
            var mine = name == "logits" ? output.Logits : output.Hooks[name == "ln_final/hook_normalized" ? "ln_final.output" : name.Replace('/', '.')];
            Assert.Equal(data.Length, mine.Length);
            for (int i = 0; i < data.Length; i++)
            {
                Assert.True(Math.Abs(mine[i] - data[i]) <= 1e-9 * (1 + Math.Abs(data[i])), $"{name}[{i}]: {mine[i]} vs {data[i]}");
            }
        }
    }

    [Theory]
    [OnEngines(1)]
    [OnEngines(9)]
    [OnEngines(30)]
    public void LongInputsPastTheWindowMatchTheCSharpReferenceOnLocalAndGlobalLayers(int extra, GemmaEngineKind engine)
    {
        var reference = CSharp.Value;
        var ids = TestData.RandomIds(reference.Window + extra, seed: 300 + extra);
        using var model = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        var expected = reference.Forward(ids);
        HookPoint[] sites = [HookPoint.AttnZ(0), HookPoint.AttnZ(5), HookPoint.AttnZ(6), HookPoint.MlpIn(5), HookPoint.ResidPost(6)];
        var run = model.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], Tol, $"window + {extra}: {site.Name}");
        }

        TestData.AssertClose(run.Logits(), expected.Logits, Tol, $"window + {extra}: logits");
    }

    [Theory]
    [OnEngines]
    public void TheImageTextLayoutGivesTheSameOutputsAsTheTextOne(GemmaEngineKind engine)
    {
        using var text = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        using var mm = GemmaModel.FromPretrained(Dir("multimodal"), EngineData.Options(engine));
        var ids = TestData.RandomIds(12, seed: 5);
        var sites = TestData.AllSites(7, withLn2: true).ToArray();
        var a = text.Run(ids, capture: sites);
        var b = mm.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            Assert.Equal(a.Activations(site).ToArray(), b.Activations(site).ToArray());
        }

        Assert.Equal(a.Logits().ToArray(), b.Logits().ToArray());
    }

    [Theory]
    [OnEngines]
    public void TheNewerModelLanguageModelNamingGivesTheSameOutputs(GemmaEngineKind engine)
    {
        // transformers ≥ 4.52 saves Gemma3ForConditionalGeneration as model.language_model.* / model.vision_tower.*
        using var dir = new TempCheckpoint(Dir("multimodal"));
        string file = Path.Combine(dir.Path, "model.safetensors");
        RenameTensors(file, n => n.StartsWith("language_model.model.", StringComparison.Ordinal)
            ? "model.language_model." + n["language_model.model.".Length..]
            : "model." + n);
        using var text = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        using var renamed = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var ids = TestData.RandomIds(9, seed: 66);
        var sites = TestData.AllSites(7, withLn2: true).ToArray();
        var a = text.Run(ids, capture: sites);
        var b = renamed.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            Assert.Equal(a.Activations(site).ToArray(), b.Activations(site).ToArray());
        }

        Assert.Equal(a.Logits().ToArray(), b.Logits().ToArray());
    }

    [Theory]
    [OnEngines]
    public void ABf16CheckpointEqualsTheReferenceOnTheRoundedWeights(GemmaEngineKind engine)
    {
        // released Gemma 3 checkpoints are bf16: widened to float32 once, then the same forward
        using var dir = new TempCheckpoint(Dir("text"));
        ToBFloat16(Path.Combine(dir.Path, "model.safetensors"));
        var reference = Gemma2Reference.FromCheckpoint(dir.Path); // reads the BF16 values
        var ids = TestData.RandomIds(12, seed: 68);
        var expected = reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var sites = TestData.AllSites(7, withLn2: true).ToArray();
        var run = model.Run(ids, capture: sites);
        foreach (var site in sites)
        {
            TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], Tol, $"bf16 {site.Name}");
        }

        TestData.AssertClose(run.Logits(), expected.Logits, Tol, "bf16 logits");
        var f32 = CSharp.Value.Forward(ids).Logits;
        Assert.True(f32.Zip(expected.Logits).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "the rounding must matter");
    }

    // Rewrites an F32 safetensors file as BF16 (round to nearest even), tensor order and names kept.
    private static void ToBFloat16(string file)
    {
        var bytes = File.ReadAllBytes(file);
        long n = BitConverter.ToInt64(bytes, 0);
        var header = System.Text.Json.Nodes.JsonNode.Parse(bytes.AsSpan(8, (int)n))!.AsObject();
        var data = new List<byte>();
        foreach (var (name, value) in header.ToList())
        {
            if (name == "__metadata__")
            {
                continue;
            }

            var off = value!["data_offsets"]!.AsArray().Select(x => (long)x!).ToArray();
            long begin = data.Count;
            for (long i = off[0]; i < off[1]; i += 4)
            {
                uint u = BitConverter.ToUInt32(bytes, (int)(8 + n + i));
                u = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
                data.Add((byte)u);
                data.Add((byte)(u >> 8));
            }

            value["dtype"] = "BF16";
            value["data_offsets"] = new System.Text.Json.Nodes.JsonArray(begin, (long)data.Count);
        }

        var h = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = new byte[(h.Length + 7) / 8 * 8];
        Array.Fill(padded, (byte)' ');
        h.CopyTo(padded, 0);
        using var f = File.Create(file);
        f.Write(BitConverter.GetBytes((long)padded.Length));
        f.Write(padded);
        f.Write(data.ToArray());
    }

    // Rewrites a safetensors header with new tensor names; data offsets are relative to the data, so the data is kept.
    private static void RenameTensors(string file, Func<string, string> rename)
    {
        var bytes = File.ReadAllBytes(file);
        long n = BitConverter.ToInt64(bytes, 0);
        var header = System.Text.Json.Nodes.JsonNode.Parse(bytes.AsSpan(8, (int)n))!.AsObject();
        var renamed = new System.Text.Json.Nodes.JsonObject();
        foreach (var (name, value) in header.ToList())
        {
            header.Remove(name);
            renamed[name == "__metadata__" ? name : rename(name)] = value;
        }

        var h = System.Text.Encoding.UTF8.GetBytes(renamed.ToJsonString());
        var padded = new byte[(h.Length + 7) / 8 * 8];
        Array.Fill(padded, (byte)' ');
        h.CopyTo(padded, 0);
        using var f = File.Create(file);
        f.Write(BitConverter.GetBytes((long)padded.Length));
        f.Write(padded);
        f.Write(bytes.AsSpan(8 + (int)n));
    }

    [Theory]
    [OnEngines]
    public void GenerationWithTheKvCacheEqualsRecomputingThePrefix(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        var prompt = TestData.RandomIds(5, seed: 60);
        // 16 new tokens after 5: the cache crosses the window (4) on the sliding layers while layer 5 attends to all of it.
        // A high temperature makes equal sequences need equal logits at every step.
        var o = new GenerationOptions { MaxNewTokens = 16, EosId = null, Temperature = 8f, Seed = 11 };
        var site = HookPoint.MlpIn(5);
        var sae = InterventionTests.RandomSae(model.Width(site), 32, seed: 61);
        foreach (var iv in new[] { Interventions.None, new Interventions { Steer = [Steering.Feature(HookPoint.ResidPost(2), sae, 3, 10f)] } })
        {
            var cached = model.Generate(prompt, o, iv);
            var recomputed = model.Generate(prompt, o with { UseKvCache = false }, iv);
            Assert.True(cached.UsedKvCache);
            Assert.False(recomputed.UsedKvCache);
            Assert.True(cached.NewIds.Distinct().Count() > 3, "the sampled sequence must vary");
            Assert.Equal(recomputed.NewIds, cached.NewIds);
        }
    }

    [Theory]
    [OnEngines]
    public void GreedyGenerationWithTheCacheFollowsTheReferenceArgmax(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        var prompt = TestData.RandomIds(3, seed: 62);
        var result = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 10, EosId = null });
        Assert.True(result.UsedKvCache);
        var reference = CSharp.Value;
        var ids = prompt.ToList();
        for (int s = 0; s < 10; s++)
        {
            var logits = reference.Forward([.. ids]).Logits;
            int row = (ids.Count - 1) * reference.Vocab, best = 0;
            for (int v = 1; v < reference.Vocab; v++)
            {
                best = logits[row + v] > logits[row + best] ? v : best;
            }

            ids.Add(best);
        }

        Assert.Equal(ids.Skip(prompt.Length), result.NewIds);
    }

    [Fact]
    public void StopAtLayerEqualsTheFullRunAndSkipsLaterLayersAndTheLmHead()
    {
        using var model = GemmaModel.FromPretrained(Dir("multimodal"), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var ids = TestData.RandomIds(10, seed: 63);
        HookPoint[] sites = [HookPoint.MlpIn(2), HookPoint.Ln2Normalized(2), HookPoint.AttnZ(1), HookPoint.Embed];
        var full = model.Run(ids, capture: sites);
        var stopped = model.Run(ids, capture: sites, logits: false);
        foreach (var site in sites)
        {
            Assert.Equal(full.Activations(site).ToArray(), stopped.Activations(site).ToArray());
        }

        var nodes = model.CaptureGraphNodes(sites, logits: false);
        Assert.DoesNotContain(nodes, n => n.StartsWith("/lm_head/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/model/layers.3/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/model/layers.2/mlp/", StringComparison.Ordinal));
        Assert.Contains(nodes, n => n.StartsWith("/model/layers.2/", StringComparison.Ordinal));
    }

    [Theory]
    [OnEngines]
    public void SlidingWindowPatternWithoutLayerTypesGivesTheSameModel(GemmaEngineKind engine)
    {
        // older Gemma 3 configs have no layer_types: layer i is global when (i + 1) % sliding_window_pattern == 0
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => { c.Remove("layer_types"); c["sliding_window_pattern"] = 6; });
        using var a = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        using var b = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var ids = TestData.RandomIds(11, seed: 64);
        Assert.Equal(a.Run(ids).Logits().ToArray(), b.Run(ids).Logits().ToArray());

        dir.EditConfig(c => c["sliding_window_pattern"] = 2); // layers 1, 3, 5 global: a different model
        using var other = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        Assert.NotEqual(a.Run(ids).Logits().ToArray(), other.Run(ids).Logits().ToArray());
    }

    [Theory]
    [OnEngines("{\"rope_type\": \"yarn\", \"factor\": 8.0}", "rope_scaling.rope_type", "\"yarn\"")]
    [OnEngines("{\"type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling.rope_type", "\"dynamic\"")]
    [OnEngines("{\"rope_type\": \"linear\"}", "rope_scaling.factor", "missing")]
    public void UnsupportedRopeScalingIsRefusedNamingTheField(string scaling, string field, string actual, GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => c["rope_scaling"] = System.Text.Json.Nodes.JsonNode.Parse(scaling));
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine)));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
        Assert.Contains(actual, e.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void FieldsAGemma3ConfigOmitsTakeGemma3TextConfigsDefaults(GemmaEngineKind engine)
    {
        // image-text configs write only what differs from Gemma3TextConfig's defaults; the fixture's values equal these three
        using var dir = new TempCheckpoint(Dir("multimodal"));
        dir.EditConfig(c =>
        {
            var t = c["text_config"]!.AsObject();
            t.Remove("rope_theta");
            t.Remove("rope_local_base_freq");
            t.Remove("rms_norm_eps");
        });
        using var a = GemmaModel.FromPretrained(Dir("multimodal"), EngineData.Options(engine));
        using var b = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var ids = TestData.RandomIds(8, seed: 67);
        Assert.Equal(a.Run(ids).Logits().ToArray(), b.Run(ids).Logits().ToArray());

        dir.EditConfig(c => c["text_config"]!.AsObject().Remove("vocab_size")); // default 262,208: disagrees with the weights
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine)));
        Assert.Contains("model.embed_tokens.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("262208", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines("use_bidirectional_attention")] // EmbeddingGemma
    [OnEngines("attention_bias")]
    public void OtherGemma3ForwardsAreRefusedNamingTheField(string field, GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => c[field] = true);
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine)));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void AnImageTextConfigWithoutTextConfigIsRefused(GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("multimodal"));
        dir.EditConfig(c => c.Remove("text_config"));
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine)));
        Assert.Contains("text_config", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void AMissingQkNormTensorIsNamed(GemmaEngineKind engine)
    {
        // the text weights of the image-text layout are read under language_model.model.*; q_norm is required for Gemma 3
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => c["model_type"] = "gemma3_text");
        File.Copy(Path.Combine(TestData.CheckpointDir("single"), "model.safetensors"), Path.Combine(dir.Path, "model.safetensors"), overwrite: true);
        dir.EditConfig(c =>
        {
            // the tiny Gemma 2 weights with a Gemma 3 config of the same sizes: everything but q_norm/k_norm is present
            using var g2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.CheckpointDir("single"), "config.json")));
            foreach (var key in new[] { "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim" })
            {
                c[key] = g2.RootElement.GetProperty(key).GetInt32();
            }

            c.Remove("layer_types");
        });
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine)));
        Assert.Contains("model.layers.0.self_attn.q_norm.weight", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void Gemma3sTokenizerJsonBesideTheCheckpointIsPickedUp(GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("text"));
        File.Delete(Path.Combine(dir.Path, "tokenizer.model"));
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(AppContext.BaseDirectory, "Fixtures", "gemma3-tokenizer", "tokenizer.json.gz")), System.IO.Compression.CompressionMode.Decompress))
        using (var f = File.Create(Path.Combine(dir.Path, "tokenizer.json")))
        {
            gz.CopyTo(f);
        }

        File.WriteAllText(Path.Combine(dir.Path, "tokenizer_config.json"), "{\"add_bos_token\": false}");
        using var model = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var tokenizer = Assert.IsType<GemmaScope.Tokenizers.GemmaTokenizer>(model.Tokenizer);
        Assert.Contains("tokenizer.json", tokenizer.ToString(), StringComparison.Ordinal);
        Assert.False(tokenizer.IsSentencePieceModel);
        Assert.Equal(262_145, tokenizer.VocabularySize); // Gemma 3: 262,144 pieces + <image_soft_token>, not the tiny tokenizer.model
        Assert.False(tokenizer.AddsBeginningOfSentence); // tokenizer_config.json's add_bos_token: false applied
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("built")]
    public void HookEmbedIsTheFirstBlocksInputOnExportsAndBuiltGraphs(string kind)
    {
        using var model = kind == "torch" ? GemmaModel.Load(TestData.ModelPath("torch")) : GemmaModel.FromPretrained(Dir("text"), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var run = model.Run(TestData.RandomIds(6, seed: 65), capture: [HookPoint.Embed, HookPoint.ResidPre(0), HookPoint.ResidPre(1)]);
        Assert.Equal(run.Activations(HookPoint.ResidPre(0)).ToArray(), run.Activations(HookPoint.Embed).ToArray());
        Assert.NotEqual(run.Activations(HookPoint.ResidPre(1)).ToArray(), run.Activations(HookPoint.Embed).ToArray());
    }

    [Fact]
    public void EveryHookNameTheCatalogUsesParses()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int count = 0;
        foreach (var release in GemmaScopeCatalog.Releases)
        {
            foreach (var sae in release.Saes)
            {
                foreach (var name in new[] { sae.HookName, sae.OutputHookName })
                {
                    if (name is null)
                    {
                        continue;
                    }

                    var point = HookPoint.Parse(name);
                    Assert.Equal(name, point.Name);
                    Assert.Equal(sae.Layer ?? 0, point.Layer);
                    seen.Add(point.Kind.ToString());
                    count++;
                }
            }
        }

        Assert.True(count > 2000, $"{count} hook names");
        Assert.Superset(new HashSet<string> { "ResidPost", "MlpOut", "AttnZ", "Embed" }, seen);
    }
}

/// <summary>A copy of a checkpoint folder in a temporary directory, deleted on dispose.</summary>
internal sealed class TempCheckpoint : IDisposable
{
    public TempCheckpoint(string source)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gs-ckpt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        foreach (var f in Directory.GetFiles(source))
        {
            File.Copy(f, System.IO.Path.Combine(Path, System.IO.Path.GetFileName(f)));
        }
    }

    public string Path { get; }

    public void EditConfig(Action<System.Text.Json.Nodes.JsonObject> edit)
    {
        string p = System.IO.Path.Combine(Path, "config.json");
        var c = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(p))!.AsObject();
        edit(c);
        File.WriteAllText(p, c.ToJsonString());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
