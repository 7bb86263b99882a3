using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Nodes;
using GemmaScope.Formats;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>Broken checkpoints fail at load with an exception naming the file, the tensor, expected and actual.</summary>
public sealed class BadCheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "gemmascope-badckpt-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private string Copy(string layout)
    {
        var src = TestData.CheckpointDir(layout);
        Directory.CreateDirectory(_dir);
        foreach (var f in Directory.GetFiles(src))
        {
            File.Copy(f, Path.Combine(_dir, Path.GetFileName(f)));
        }

        return _dir;
    }

    private static void EditConfig(string dir, Action<JsonObject> edit)
    {
        var path = Path.Combine(dir, "config.json");
        var node = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(node);
        File.WriteAllText(path, node.ToJsonString());
    }

    [Fact]
    public void TheUnchangedCopyLoads()
    {
        using var model = GemmaModel.FromPretrained(Copy("sharded"));
        Assert.Equal(4, model.LayerCount);
    }

    [Fact]
    public void AMissingTensorIsNamed()
    {
        var dir = Copy("single");
        var file = Path.Combine(dir, "model.safetensors");
        RewriteWithout(file, "model.layers.2.mlp.up_proj.weight");
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir));
        Assert.Equal("model.layers.2.mlp.up_proj.weight", e.Field);
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains("missing tensor", e.Message, StringComparison.Ordinal);
        Assert.Contains("[96, 48]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AShapeThatDisagreesWithConfigJsonIsNamedWithBothShapes()
    {
        var dir = Copy("single");
        EditConfig(dir, c => c["intermediate_size"] = 80);
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir));
        Assert.Equal("model.layers.0.mlp.gate_proj.weight", e.Field);
        Assert.Equal("[80, 48]", e.Expected);
        Assert.Equal("[96, 48]", e.Actual);
        Assert.EndsWith("model.safetensors", e.FilePath, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gemma")]
    public void AnUnsupportedModelTypeNamesWhatIsSupported(string type)
    {
        var dir = Copy("single");
        EditConfig(dir, c => c["model_type"] = type);
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir));
        Assert.EndsWith("config.json", e.FilePath, StringComparison.Ordinal);
        Assert.Equal($"\"{type}\"", e.Actual);
        Assert.Contains("\"gemma2\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("\"gemma3_text\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnIndexNamingAMissingShardNamesTheShardAndATensorInIt()
    {
        var dir = Copy("sharded");
        File.Delete(Path.Combine(dir, "model-00002-of-00003.safetensors"));
        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir));
        Assert.EndsWith("model.safetensors.index.json", e.FilePath, StringComparison.Ordinal);
        Assert.Contains("model-00002-of-00003.safetensors", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("model.layers.", e.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedShardNamesTheFileAndTheTensorThatRunsPastItsEnd()
    {
        var dir = Copy("sharded");
        var shard = Path.Combine(dir, "model-00003-of-00003.safetensors");
        using (var fs = new FileStream(shard, FileMode.Open))
        {
            fs.SetLength(fs.Length - 100);
        }

        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir));
        Assert.Equal(shard, e.FilePath);
        Assert.Equal("model.norm.weight", e.Field); // the last tensor of the last shard
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AShardCutInsideItsHeaderIsRefused()
    {
        var dir = Copy("sharded");
        var shard = Path.Combine(dir, "model-00001-of-00003.safetensors");
        using (var fs = new FileStream(shard, FileMode.Open))
        {
            fs.SetLength(200);
        }

        var e = Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(dir));
        Assert.Equal(shard, e.FilePath);
    }

    [Fact]
    public void AFolderWithoutWeightsOrConfigSaysWhatIsMissing()
    {
        var dir = Copy("single");
        File.Delete(Path.Combine(dir, "model.safetensors"));
        var e = Assert.Throws<FileNotFoundException>(() => GemmaModel.FromPretrained(dir));
        Assert.Contains("model.safetensors.index.json", e.Message, StringComparison.Ordinal);
        File.Delete(Path.Combine(dir, "config.json"));
        Assert.Throws<FileNotFoundException>(() => GemmaModel.FromPretrained(dir));
        Assert.Throws<DirectoryNotFoundException>(() => GemmaModel.FromPretrained(Path.Combine(dir, "nope")));
    }

    // Rewrites a safetensors file without one tensor (header and data rebuilt by hand, independent of the library's reader).
    private static void RewriteWithout(string path, string drop)
    {
        var bytes = File.ReadAllBytes(path);
        int n = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, n));
        var tensors = new List<SafeTensors.TensorToWrite>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__" || p.Name == drop)
            {
                continue;
            }

            var off = p.Value.GetProperty("data_offsets");
            long begin = off[0].GetInt64(), end = off[1].GetInt64();
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            tensors.Add(new(p.Name, TensorDType.Float32, shape, bytes.AsMemory(8 + n + (int)begin, (int)(end - begin))));
        }

        SafeTensors.Write(path, tensors);
    }
}
