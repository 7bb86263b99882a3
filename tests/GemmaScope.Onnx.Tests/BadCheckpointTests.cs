using GemmaScope.Formats;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>Broken checkpoints fail at load with an exception naming the file, the tensor, expected and actual.</summary>
public class BadCheckpointTests
{
    [Fact]
    public void TheUnchangedCopyLoads()
    {
        using var copy = new TempCheckpoint(TinyModels.Gemma2Checkpoint("sharded"));
        using var model = GemmaModel.FromPretrained(copy.Path);
        Assert.Equal(4, model.LayerCount);
    }

    [Fact]
    public void AMissingTensorIsNamed()
    {
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("single"));
        // the header and data rebuilt by the test-side writer, independent of the library's
        TestSafeTensors.Rewrite(dir.File("model.safetensors"), t => t.Name == "model.layers.2.mlp.up_proj.weight" ? null : t);
        var e = dir.Refused();
        Assert.Equal("model.layers.2.mlp.up_proj.weight", e.Field);
        Assert.Contains("model.safetensors", e.Message, StringComparison.Ordinal);
        Assert.Contains("missing tensor", e.Message, StringComparison.Ordinal);
        Assert.Contains("[96, 48]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AShapeThatDisagreesWithConfigJsonIsNamedWithBothShapes()
    {
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("single"));
        dir.EditConfig(c => c["intermediate_size"] = 80);
        var e = dir.Refused();
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
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("single"));
        dir.EditConfig(c => c["model_type"] = type);
        var e = dir.Refused();
        Assert.EndsWith("config.json", e.FilePath, StringComparison.Ordinal);
        Assert.Equal($"\"{type}\"", e.Actual);
        Assert.Contains("\"gemma2\"", e.Message, StringComparison.Ordinal);
        Assert.Contains("\"gemma3_text\"", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnIndexNamingAMissingShardNamesTheShardAndATensorInIt()
    {
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("sharded"));
        File.Delete(dir.File("model-00002-of-00003.safetensors"));
        var e = dir.Refused();
        Assert.EndsWith("model.safetensors.index.json", e.FilePath, StringComparison.Ordinal);
        Assert.Contains("model-00002-of-00003.safetensors", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("model.layers.", e.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void ATruncatedShardNamesTheFileAndTheTensorThatRunsPastItsEnd()
    {
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("sharded"));
        var shard = dir.File("model-00003-of-00003.safetensors");
        using (var fs = new FileStream(shard, FileMode.Open))
        {
            fs.SetLength(fs.Length - 100);
        }

        var e = dir.Refused();
        Assert.Equal(shard, e.FilePath);
        Assert.Equal("model.norm.weight", e.Field); // the last tensor of the last shard
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AShardCutInsideItsHeaderIsRefused()
    {
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("sharded"));
        var shard = dir.File("model-00001-of-00003.safetensors");
        using (var fs = new FileStream(shard, FileMode.Open))
        {
            fs.SetLength(200);
        }

        var e = dir.Refused();
        Assert.Equal(shard, e.FilePath);
    }

    [Fact]
    public void AFolderWithoutWeightsOrConfigSaysWhatIsMissing()
    {
        using var dir = new TempCheckpoint(TinyModels.Gemma2Checkpoint("single"));
        File.Delete(dir.File("model.safetensors"));
        var e = Assert.Throws<FileNotFoundException>(() => GemmaModel.FromPretrained(dir.Path));
        Assert.Contains("model.safetensors.index.json", e.Message, StringComparison.Ordinal);
        File.Delete(dir.File("config.json"));
        Assert.Throws<FileNotFoundException>(() => GemmaModel.FromPretrained(dir.Path));
        Assert.Throws<DirectoryNotFoundException>(() => GemmaModel.FromPretrained(dir.File("nope")));
    }
}
