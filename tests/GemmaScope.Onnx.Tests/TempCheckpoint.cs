using System.Text.Json.Nodes;
using GemmaScope.Formats;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>A copy of a checkpoint folder in a <see cref="TempDir"/>, to edit and load; deleted on dispose.</summary>
internal sealed class TempCheckpoint : IDisposable
{
    private readonly TempDir _dir = new();

    /// <summary>Copies the files of <paramref name="source"/>.</summary>
    public TempCheckpoint(string source)
    {
        foreach (var f in Directory.GetFiles(source))
        {
            System.IO.File.Copy(f, _dir.File(System.IO.Path.GetFileName(f)));
        }
    }

    /// <summary>The copy's folder.</summary>
    public string Path => _dir.Path;

    /// <summary>A file of the copy.</summary>
    public string File(string name) => _dir.File(name);

    /// <summary>Edits the copy's config.json.</summary>
    public void EditConfig(Action<JsonObject> edit)
    {
        string p = File("config.json");
        var c = JsonNode.Parse(System.IO.File.ReadAllText(p))!.AsObject();
        edit(c);
        System.IO.File.WriteAllText(p, c.ToJsonString());
    }

    /// <summary>Asserts that loading the copy fails with a <see cref="CheckpointFormatException"/>, and returns it.</summary>
    public CheckpointFormatException Refused(GemmaModelOptions? options = null) =>
        Assert.Throws<CheckpointFormatException>(() => GemmaModel.FromPretrained(Path, options).Dispose());

    /// <inheritdoc />
    public void Dispose() => _dir.Dispose();
}
