namespace GemmaScope.Scan.Tests;

/// <summary>A fact skipped, with the reason, only when one of the named programs is not on PATH (or in /usr/sbin).</summary>
public sealed class RequiresFactAttribute : FactAttribute
{
    public RequiresFactAttribute(params string[] programs)
    {
        var missing = programs.Where(p => Find(p) is null).ToArray();
        if (missing.Length > 0)
        {
            Skip = $"needs {string.Join(", ", missing)} (not installed; CI installs them: apt-get install -y slurm-wlm munge chromium)";
        }
    }

    public static string? Find(string program)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/usr/sbin", "/sbin", "/usr/bin"]);
        return dirs.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }
}
