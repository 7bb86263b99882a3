using System.Globalization;
using System.Text.RegularExpressions;

namespace GemmaScope.Hf.Tests;

/// <summary>Issue 20, new-user finding 7: the catalog counts the READMEs state are the compiled-in catalog's.</summary>
public sealed partial class DocsCountTests
{
    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "GemmaScope.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("GemmaScope.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"([0-9][0-9,]*) SAEs and transcoders in ([0-9]+) releases \(([0-9][0-9,]*) of them transcoders\) and ([0-9][0-9,]*)\s+canonical aliases in ([0-9]+)")]
    private static partial Regex CountSentence();

    [Theory]
    [InlineData("README.md")]
    [InlineData("src/GemmaScope.Hf/README.md")]
    public void TheCatalogCountsInTheReadmeAreTheCatalogs(string readme)
    {
        var releases = GemmaScopeCatalog.Releases;
        var real = releases.Where(r => !r.IsCanonical).ToList();
        var canonical = releases.Where(r => r.IsCanonical).ToList();
        int saes = real.Sum(r => r.Saes.Count), transcoders = real.Sum(r => r.Saes.Count(s => s.IsTranscoder)), aliases = canonical.Sum(r => r.Saes.Count);
        string expected = string.Create(CultureInfo.InvariantCulture,
            $"{saes:N0} SAEs and transcoders in {real.Count} releases ({transcoders:N0} of them transcoders) and {aliases:N0} canonical aliases in {canonical.Count}");

        var text = File.ReadAllText(Path.Combine(RepoRoot(), readme)).ReplaceLineEndings(" ");
        var m = CountSentence().Match(text);
        Assert.True(m.Success, $"{readme} states no catalog count; expected the sentence \"{expected} …\"");
        var stated = Regex.Replace(m.Value, @"\s+", " ");
        Assert.True(stated == expected, $"{readme} says \"{stated}\"; the catalog gives \"{expected}\"");
    }
}
