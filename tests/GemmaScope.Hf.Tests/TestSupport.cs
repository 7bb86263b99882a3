namespace GemmaScope.Hf.Tests;

internal static class TestSupport
{
    public const string Repo = "google/gemma-scope-2b-pt-res";
    public const string Release = "gemma-scope-2b-pt-res";
    public const string SaeId = "layer_20/width_16k/average_l0_71";
    public const string SaeFile = SaeId + "/params.npz";

    /// <summary>
    /// Options aimed at the fake hub and a temp cache, reading an explicit environment (HF_HOME inside the temp folder, so that a
    /// token file or HF_* variables of the machine running the tests never leak in).
    /// </summary>
    public static GemmaScopeHubOptions Options(FakeHub hub, TempDir dir, Dictionary<string, string>? env = null)
    {
        var vars = new Dictionary<string, string>(env ?? [], StringComparer.Ordinal) { ["HF_HOME"] = dir.Path };
        if (env?.ContainsKey("HF_HOME") == true)
        {
            vars["HF_HOME"] = env["HF_HOME"];
        }

        return new GemmaScopeHubOptions
        {
            Endpoint = hub.Endpoint,
            CacheDirectory = dir.Cache,
            EnvironmentReader = name => vars.GetValueOrDefault(name),
        };
    }

    /// <summary>Deterministic bytes with no runs of one value (so that a byte in the wrong place shows).</summary>
    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static string RepoFolder(TempDir dir, string repoId = Repo) =>
        Path.Combine(dir.Cache, "models--" + repoId.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>Every file under blobs/ and snapshots/ (links included), relative to the repo folder.</summary>
    public static List<string> CachedFiles(TempDir dir, string repoId = Repo)
    {
        var root = RepoFolder(dir, repoId);
        var files = new List<string>();
        foreach (var sub in new[] { "blobs", "snapshots" })
        {
            var folder = Path.Combine(root, sub);
            if (Directory.Exists(folder))
            {
                files.AddRange(Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories)
                    .Where(p => !Directory.Exists(p) || new FileInfo(p).LinkTarget is not null)
                    .Select(p => Path.GetRelativePath(root, p)));
            }
        }

        files.Sort(StringComparer.Ordinal);
        return files;
    }
}
