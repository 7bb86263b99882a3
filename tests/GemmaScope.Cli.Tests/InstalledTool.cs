using System.Diagnostics;

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
        RepoRoot = FindRepoRoot();
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
            Exec("bash", [Path.Combine(RepoRoot, "tools", "pack-local-feed.sh"), feed]);
            var version = File.ReadAllText(Path.Combine(feed, "VERSION")).Trim(); // the local packs' own version
            Exec("dotnet", ["tool", "install", "GemmaScope.Cli", "--tool-path", ToolDir, "--add-source", feed, "--version", version]);
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
    public Result Run(string home, IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("HF_", StringComparison.Ordinal) || k.StartsWith("NEURONPEDIA", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["HF_HOME"] = home;
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"gemmascope {string.Join(' ', args)} did not finish in 2 minutes.");
        }

        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

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

    private static void Exec(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}):\n{o.Result}\n{e.Result}");
        }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "GemmaScope.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("GemmaScope.sln not found above " + AppContext.BaseDirectory);
    }
}

public sealed record Result(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

[CollectionDefinition("tool")]
public sealed class ToolCollection : ICollectionFixture<InstalledTool>;
