using System.Diagnostics;

namespace GemmaScope.TestSupport;

/// <summary>What a child process did: its exit code and everything it wrote.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Exit code, stdout and stderr, for assertion messages.</summary>
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs a child process to the end with stdin closed, reading stdout and stderr together (so that neither pipe fills and blocks it).</summary>
public static class ProcessRunner
{
    /// <summary>Runs <paramref name="file"/> and returns what it did, whatever its exit code.</summary>
    /// <param name="file">The program.</param>
    /// <param name="args">Its arguments, passed as they are (no shell quoting).</param>
    /// <param name="env">Variables to set on top of this process's environment.</param>
    /// <param name="timeout">Killed (with its children) and a <see cref="TimeoutException"/> after this long; null waits for ever.</param>
    /// <param name="configure">Changes to the start info before it starts (e.g. removing inherited variables).</param>
    public static ProcessResult Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null,
        Action<ProcessStartInfo>? configure = null)
    {
        var psi = new ProcessStartInfo(file)
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

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        configure?.Invoke(psi);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (timeout is { } limit && !p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish in {limit.TotalMinutes:0.#} minutes.");
        }

        p.WaitForExit();
        return new ProcessResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs <paramref name="file"/> and returns its stdout; throws with both outputs if it exits with other than 0.</summary>
    public static string Check(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var r = Run(file, args, env);
        return r.ExitCode == 0
            ? r.Stdout
            : throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({r.ExitCode}):\n{r.Stdout}\n{r.Stderr}");
    }
}
