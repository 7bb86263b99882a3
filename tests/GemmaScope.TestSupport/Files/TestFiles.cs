using System.Text.Json.Nodes;

namespace GemmaScope.TestSupport;

/// <summary>Fixture folders copied for a test to break, and JSON files edited in place.</summary>
public static class TestFiles
{
    /// <summary>Copies the files of <paramref name="source"/> (not its subfolders) into <paramref name="destination"/>, made if absent; returns <paramref name="destination"/>.</summary>
    public static string CopyFolder(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var f in Directory.GetFiles(source))
        {
            File.Copy(f, Path.Combine(destination, Path.GetFileName(f)));
        }

        return destination;
    }

    /// <summary>Rewrites the JSON object in <paramref name="path"/> after <paramref name="edit"/> has changed it.</summary>
    public static void EditJson(string path, Action<JsonObject> edit)
    {
        var o = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(o);
        File.WriteAllText(path, o.ToJsonString());
    }
}
