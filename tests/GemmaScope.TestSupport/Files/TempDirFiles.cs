namespace GemmaScope.TestSupport;

/// <summary>Writing into a <see cref="TempDir"/>.</summary>
public static class TempDirFiles
{
    /// <summary>Writes <paramref name="bytes"/> to the file <paramref name="name"/> in the folder; returns its path.</summary>
    public static string Write(this TempDir dir, string name, byte[] bytes)
    {
        var path = dir.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
