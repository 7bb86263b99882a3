namespace GemmaScope.Hf.Tests;

/// <summary>What the hub tests share: the Gemma Scope repository they download from, options aimed at a fake hub, the cache layout.</summary>
internal static class HubTestData
{
    public const string Repo = "google/gemma-scope-2b-pt-res";
    public const string Release = "gemma-scope-2b-pt-res";
    public const string SaeId = "layer_20/width_16k/average_l0_71";
    public const string SaeFile = SaeId + "/params.npz";

    /// <summary>Every call that could hang is bounded by this: a regression that hangs fails the test instead of hanging the run.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Options aimed at the fake hub and a temp cache, reading an explicit environment (HF_HOME inside the temp folder, so that a
    /// token file or HF_* variables of the machine running the tests never leak in).
    /// </summary>
    public static GemmaScopeHubOptions Options(FakeHub hub, TempDir dir, Dictionary<string, string>? env = null) => Options(hub.Endpoint, dir, env);

    /// <summary>The same, aimed at any endpoint (e.g. one that refuses connections).</summary>
    public static GemmaScopeHubOptions Options(string endpoint, TempDir dir, Dictionary<string, string>? env = null)
    {
        var vars = new Dictionary<string, string>(env ?? [], StringComparer.Ordinal) { ["HF_HOME"] = dir.Path };
        if (env?.ContainsKey("HF_HOME") == true)
        {
            vars["HF_HOME"] = env["HF_HOME"];
        }

        return new GemmaScopeHubOptions
        {
            Endpoint = endpoint,
            CacheDirectory = dir.Cache,
            EnvironmentReader = name => vars.GetValueOrDefault(name),
        };
    }

    /// <summary>
    /// Asserts how a timeout read from <paramref name="variable"/> resolves: 10 s by default like huggingface_hub, the variable
    /// in seconds, the option over the variable, and an error naming the variable for nonsense and for 0.
    /// </summary>
    public static void AssertTimeoutSetting(string variable, Func<HubSettings, TimeSpan> read, Func<GemmaScopeHubOptions, TimeSpan, GemmaScopeHubOptions> set)
    {
        GemmaScopeHubOptions With(string? value) => new() { EnvironmentReader = name => name == variable ? value : null, CacheDirectory = "/tmp/x" };

        Assert.Equal(TimeSpan.FromSeconds(10), read(HubSettings.Resolve(With(null))));
        Assert.Equal(TimeSpan.FromSeconds(2.5), read(HubSettings.Resolve(With("2.5"))));
        Assert.Equal(TimeSpan.FromSeconds(7), read(HubSettings.Resolve(set(With("2.5"), TimeSpan.FromSeconds(7)))));
        var e = Assert.Throws<ArgumentException>(() => HubSettings.Resolve(With("ten")));
        Assert.Contains(variable, e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => HubSettings.Resolve(With("0")));
    }

    /// <summary>
    /// Random weights (never zeros, thresholds positive; see <see cref="GemmaScope2Files.RandomParams"/>) for an SAE or, with
    /// <paramref name="dOut"/> or <paramref name="skip"/>, a transcoder; under Gemma Scope 2's safetensors names (<c>w_enc</c>),
    /// or Gemma Scope 1's npz names (<c>W_enc</c>) with <paramref name="npzNames"/>.
    /// </summary>
    public static List<(string Name, int[] Shape, float[] Data)> RandomWeights(int dIn, int dSae, int seed, int? dOut = null, bool skip = false, bool npzNames = false)
    {
        var weights = GemmaScope2Files.RandomParams(dIn, dOut ?? dIn, dSae, seed, skip, encScale: 0.4f, decScale: 0.4f);
        return npzNames ? [.. weights.Select(w => (w.Name.Replace("w_", "W_", StringComparison.Ordinal), w.Shape, w.Data))] : weights;
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
