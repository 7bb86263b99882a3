using GemmaScope.Formats;

namespace GemmaScope.Onnx.Building;

/// <summary>
/// Where ONNX Runtime resolves a checkpoint's external data. In a huggingface_hub cache the shards are symlinks into
/// <c>blobs/</c>, and ONNX Runtime refuses external data whose resolved path leaves its folder, so the root is the deepest
/// folder holding both the checkpoint folder and every shard's real file, and locations are relative to it.
/// </summary>
internal static class ExternalData
{
    /// <summary>The deepest folder holding the checkpoint folder and every file's real path (symlinks resolved).</summary>
    public static string Root(ModelCheckpoint checkpoint)
    {
        string root = RealPath(checkpoint.Folder);
        foreach (var f in checkpoint.Files)
        {
            string dir = Path.GetDirectoryName(RealPath(f))!;
            while (!IsUnder(dir, root))
            {
                root = Path.GetDirectoryName(root) ?? root;
                if (root == Path.GetPathRoot(root))
                {
                    break;
                }
            }
        }

        return root;
    }

    /// <summary>A file's path relative to <paramref name="root"/>, symlinks resolved.</summary>
    public static string Location(string root, string file) => Path.GetRelativePath(root, RealPath(file));

    private static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    // Resolves symbolic links in every component of a path (as ONNX Runtime's path check does).
    private static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        string current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            for (int hops = 0; hops < 40; hops++)
            {
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.LinkTarget is not { } target)
                {
                    break;
                }

                next = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target));
            }

            current = next;
        }

        return current;
    }
}
