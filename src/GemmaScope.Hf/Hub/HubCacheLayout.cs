using System.Text;

namespace GemmaScope.Hf;

/// <summary>
/// Paths of one repository in the Python <c>huggingface_hub</c> cache, so that either side reuses the other's downloads:
/// <code>
/// {cache}/models--google--gemma-scope-2b-pt-res/
///     blobs/&lt;etag&gt;                              the file's bytes (LFS files: etag = sha256 of the bytes)
///     blobs/&lt;etag&gt;.incomplete                   a download in progress or interrupted (resumed with Range)
///     refs/main                                 the commit hash that 'main' pointed at, no newline
///     snapshots/&lt;commit&gt;/layer_20/…/params.npz  symlink to ../../(…)/blobs/&lt;etag&gt;, or a copy where links fail
///     .no_exist/&lt;commit&gt;/generation_config.json    empty: an optional file the hub does not have at that commit
/// {cache}/.locks/models--google--gemma-scope-2b-pt-res/&lt;etag&gt;.lock
/// </code>
/// Listings of the hub's tree API are kept beside them in <c>.gemmascope/trees/</c>, which <c>huggingface_hub</c> ignores.
/// </summary>
internal sealed class HubCacheLayout
{
    public HubCacheLayout(string cacheDirectory, string repoId)
    {
        ValidateRepoId(repoId);
        CacheDirectory = cacheDirectory;
        RepoId = repoId;
        FolderName = "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
        RepoFolder = Path.Combine(cacheDirectory, FolderName);
    }

    public string CacheDirectory { get; }

    public string RepoId { get; }

    public string FolderName { get; }

    public string RepoFolder { get; }

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string IncompletePath(string etag) => BlobPath(etag) + ".incomplete";

    public string LockPath(string etag) => Path.Combine(CacheDirectory, ".locks", FolderName, etag + ".lock");

    public string RefPath(string revision) => Path.Combine(RepoFolder, "refs", ToLocal(revision));

    public string SnapshotPath(string commit, string path) => Path.Combine(RepoFolder, "snapshots", commit, ToLocal(path));

    /// <summary>The snapshot folder of a commit: <c>snapshots/&lt;commit&gt;</c>.</summary>
    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    /// <summary>huggingface_hub's marker that a file does not exist at a commit: <c>.no_exist/&lt;commit&gt;/&lt;path&gt;</c>, empty.</summary>
    public string NoExistPath(string commit, string path) => Path.Combine(RepoFolder, ".no_exist", commit, ToLocal(path));

    public void MarkNoExist(string commit, string path)
    {
        var marker = NoExistPath(commit, path);
        Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
        File.WriteAllBytes(marker, []);
    }

    public string TreeListingPath(string revision, string folder) =>
        Path.Combine(RepoFolder, ".gemmascope", "trees", Uri.EscapeDataString(revision), ToLocal(folder) + ".json");

    /// <summary>The commit a branch or tag was last seen at, or null when <c>refs/{revision}</c> is absent.</summary>
    public string? ReadRef(string revision)
    {
        var path = RefPath(revision);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    public void WriteRef(string revision, string commit)
    {
        if (ReadRef(revision) == commit)
        {
            return;
        }

        WriteAllTextAtomic(RefPath(revision), commit);
    }

    /// <summary>
    /// The cached file for (revision, path) or null, and a description of what is missing (for offline errors).
    /// A commit revision is looked up directly; a branch or tag through <c>refs/</c>.
    /// </summary>
    public string? TryGetCached(string revision, string path, out string missing)
    {
        var commit = HubRevision.IsCommitHash(revision) ? revision : ReadRef(revision);
        if (commit is null)
        {
            missing = $"{RefPath(revision)} is missing (nothing of {RepoId} was downloaded at revision '{revision}')";
            return null;
        }

        var snapshot = SnapshotPath(commit, path);
        if (File.Exists(snapshot))
        {
            missing = string.Empty;
            return snapshot;
        }

        missing = $"{snapshot} is missing (revision '{revision}' is commit {commit}, but '{path}' was never downloaded at it)";
        return null;
    }

    /// <summary>Points <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> at the blob: a relative symlink like huggingface_hub's, a copy where links are refused.</summary>
    public string LinkSnapshot(string commit, string path, string etag)
    {
        var snapshot = SnapshotPath(commit, path);
        var blob = BlobPath(etag);
        Directory.CreateDirectory(Path.GetDirectoryName(snapshot)!);
        var temp = snapshot + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            try
            {
                File.CreateSymbolicLink(temp, Path.GetRelativePath(Path.GetDirectoryName(snapshot)!, blob));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                File.Copy(blob, temp, overwrite: true);
            }

            File.Move(temp, snapshot, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }

        return snapshot;
    }

    public static void WriteAllTextAtomic(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>A repository path, 'a/b/c', as a relative local path; refuses anything that could leave the cache.</summary>
    internal static string ToLocal(string repoPath)
    {
        ValidateRepoPath(repoPath, nameof(repoPath));
        return repoPath.Replace('/', Path.DirectorySeparatorChar);
    }

    internal static void ValidateRepoPath(string repoPath, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(repoPath, paramName);
        foreach (var segment in repoPath.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == ".." || segment.Contains('\\', StringComparison.Ordinal) || segment.Contains(':', StringComparison.Ordinal))
            {
                throw new ArgumentException(
                    $"Hub path '{repoPath}' must be relative, '/'-separated, without empty, '.', '..', '\\' or ':' segments.", paramName);
            }
        }
    }

    internal static void ValidateRepoId(string repoId)
    {
        ArgumentException.ThrowIfNullOrEmpty(repoId);
        var parts = repoId.Split('/');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0 || parts[0] is "." or ".." || parts[1] is "." or ".."
            || repoId.Contains('\\', StringComparison.Ordinal) || repoId.Contains("--", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Repository id '{repoId}' must look like 'owner/name', e.g. 'google/gemma-scope-2b-pt-res'.", nameof(repoId));
        }
    }
}

/// <summary>Revision helpers.</summary>
internal static class HubRevision
{
    /// <summary>True for a full 40-hex git commit hash, which names immutable content (huggingface_hub's REGEX_COMMIT_HASH).</summary>
    public static bool IsCommitHash(string revision)
    {
        if (revision.Length != 40)
        {
            return false;
        }

        foreach (var c in revision)
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True for a 64-hex string: an LFS ETag, which is the SHA-256 of the file.</summary>
    public static bool IsSha256(string etag)
    {
        if (etag.Length != 64)
        {
            return false;
        }

        foreach (var c in etag)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
