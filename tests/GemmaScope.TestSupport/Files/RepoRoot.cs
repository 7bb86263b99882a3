namespace GemmaScope.TestSupport;

/// <summary>The repository's root folder (the one holding GemmaScope.sln), found above the test's output folder.</summary>
public static class RepoRoot
{
    /// <summary>The root folder; throws if the tests run outside a checkout.</summary>
    public static string Path
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "GemmaScope.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("GemmaScope.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>A path below the root.</summary>
    public static string File(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);
}
