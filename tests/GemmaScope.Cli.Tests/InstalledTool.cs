namespace GemmaScope.Cli.Tests;

/// <summary>
/// The gemmascope tool as a user gets it: packed into a local feed and installed with <c>dotnet tool install --tool-path</c>.
/// CI packs and installs once and passes the folder in <c>GEMMASCOPE_TOOL_DIR</c>; otherwise this fixture runs
/// <c>tools/pack-local-feed.sh</c> and installs into a temporary folder (about two minutes).
/// </summary>
public sealed class InstalledTool : IDisposable
{
    private readonly string? _ownDir;

    public InstalledTool()
    {
        RepoRoot = GemmaScope.TestSupport.RepoRoot.Path;
        var given = Environment.GetEnvironmentVariable("GEMMASCOPE_TOOL_DIR");
        if (!string.IsNullOrEmpty(given))
        {
            ToolDir = given;
        }
        else
        {
            _ownDir = Path.Combine(Path.GetTempPath(), "gemmascope-cli-tests", Guid.NewGuid().ToString("N"));
            var feed = Path.Combine(_ownDir, "feed");
            ToolDir = Path.Combine(_ownDir, "tools");
            ProcessRunner.Check("bash", [Path.Combine(RepoRoot, "tools", "pack-local-feed.sh"), feed]);
            var version = File.ReadAllText(Path.Combine(feed, "VERSION")).Trim(); // the local packs' own version
            ProcessRunner.Check("dotnet", ["tool", "install", "GemmaScope.Cli", "--tool-path", ToolDir, "--add-source", feed, "--version", version]);
        }

        Executable = Path.Combine(ToolDir, OperatingSystem.IsWindows() ? "gemmascope.exe" : "gemmascope");
        if (!File.Exists(Executable))
        {
            throw new InvalidOperationException($"The installed tool is missing: {Executable}");
        }
    }

    public string RepoRoot { get; }

    public string ToolDir { get; }

    public string Executable { get; }

    public string TinyModel => Path.Combine(RepoRoot, "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2", "torch", "model.onnx");

    public string TinyTokenizer => Path.Combine(RepoRoot, "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2", "tokenizer.model");

    public string TinySae => Path.Combine(RepoRoot, "samples", "data", "tiny-gemma2-sae", "params.npz");

    /// <summary>Runs the tool with a clean environment: HF_HOME in <paramref name="home"/>, no HF_/NEURONPEDIA_ variables but those given.</summary>
    public ProcessResult Run(string home, IReadOnlyDictionary<string, string>? env, params string[] args) =>
        ProcessRunner.Run(Executable, args, timeout: TimeSpan.FromMinutes(2), configure: psi =>
        {
            foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("HF_", StringComparison.Ordinal) || k.StartsWith("NEURONPEDIA", StringComparison.Ordinal)).ToList())
            {
                psi.Environment.Remove(key);
            }

            psi.Environment["HF_HOME"] = home;
            foreach (var (k, v) in env ?? new Dictionary<string, string>())
            {
                psi.Environment[k] = v;
            }
        });

    public void Dispose()
    {
        if (_ownDir is not null)
        {
            try
            {
                Directory.Delete(_ownDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}

/// <summary>What every failure of the tool looks like.</summary>
public static class ToolAssert
{
    /// <summary>
    /// Asserts that the tool exited with <paramref name="exitCode"/>, wrote each of <paramref name="inStderr"/> to stderr,
    /// and wrote no stack trace (a failure is a message, not a crash).
    /// </summary>
    public static void Fails(ProcessResult result, int exitCode, params string[] inStderr)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}, got {result}");
        foreach (var text in inStderr)
        {
            Assert.Contains(text, result.Stderr, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("Unhandled exception", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }
}

[CollectionDefinition("tool")]
public sealed class ToolCollection : ICollectionFixture<InstalledTool>;
