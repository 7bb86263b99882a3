using System.Text.RegularExpressions;

namespace GemmaScope.Cli.Tests;

/// <summary>Issue 20, new-user finding 1: local packs never take the release version, and the docs never edit the user-wide NuGet config.</summary>
public sealed class LocalFeedVersionTests
{
    [Fact]
    public void Local_packs_are_versioned_release_local_commits_commit_never_the_release_version()
    {
        var root = RepoRoot.Path;
        var release = File.ReadAllText(Path.Combine(root, "Directory.Build.props")).Split("<Version>")[1].Split("</Version>")[0];
        var script = ProcessRunner.Run("bash", [Path.Combine(root, "tools", "local-version.sh")]);
        Assert.True(script.ExitCode == 0, script.Stderr);
        var version = script.Stdout.Trim();
        Assert.Matches(new Regex("^" + Regex.Escape(release) + @"-local\.[0-9]+\.g[0-9a-f]{7,}$"), version);
        Assert.NotEqual(release, version);
        Assert.Contains("local-version.sh", File.ReadAllText(Path.Combine(root, "tools", "pack-local-feed.sh")), StringComparison.Ordinal);
    }

    [Fact]
    public void The_docs_add_the_local_feed_to_a_projects_nuget_config_never_the_user_wide_one()
    {
        var root = RepoRoot.Path;
        var files = new[] { "README.md", "tools/pack-local-feed.sh", "samples/nuget.config" }
            .Concat(Directory.GetFiles(Path.Combine(root, "src"), "README.md", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)));
        foreach (var file in files)
        {
            foreach (var line in File.ReadAllLines(Path.Combine(root, file)))
            {
                if (line.Contains("nuget add source", StringComparison.Ordinal))
                {
                    Assert.True(line.Contains("--configfile", StringComparison.Ordinal), $"{file}: '{line.Trim()}' edits the user-wide NuGet config (add --configfile)");
                }
            }
        }

        var readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains("not on nuget.org yet", readme, StringComparison.Ordinal);
    }
}
