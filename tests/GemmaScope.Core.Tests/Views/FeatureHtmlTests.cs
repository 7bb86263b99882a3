using GemmaScope.Views;

namespace GemmaScope.Core.Tests.Views;

public class FeatureHtmlTests
{
    [Fact]
    public void HeatmapEncodesTextAndScalesToTheMaximum()
    {
        var html = FeatureHtml.TokenHeatmap(["<b>", " Paris", "&"], [0f, 4f, 2f], "feature 7");
        Assert.Contains("&lt;b&gt;", html);
        Assert.DoesNotContain("<b>", html);
        Assert.Contains("&amp;", html);
        Assert.Contains("rgba(255,140,0,1.000)", html);   // 4 of 4
        Assert.Contains("rgba(255,140,0,0.500)", html);   // 2 of 4
        Assert.Contains("rgba(255,140,0,0.000)", html);
        Assert.Contains("feature 7", html);
        Assert.Throws<ArgumentException>(() => FeatureHtml.TokenHeatmap(["a"], [1f, 2f]));
    }

    [Fact]
    public void TableListsStrongestFeaturesWithLinks()
    {
        var batch = new SparseFeatureBatch(100, [0, 3, 3], [4, 50, 99], [1f, 9f, 3f]);
        var html = FeatureHtml.TopFeaturesTable(batch, ["he\"llo", "x"], topK: 2, featureUrl: f => $"https://example.test/f/{f}?a=1&b=2");
        Assert.Contains("#50 9.00", html);
        Assert.Contains("#99 3.00", html);
        Assert.DoesNotContain("#4 1.00", html);
        Assert.Contains("href=\"https://example.test/f/50?a=1&amp;b=2\"", html);
        Assert.Contains("he&quot;llo", html);
        Assert.True(html.IndexOf("#50", StringComparison.Ordinal) < html.IndexOf("#99", StringComparison.Ordinal));
    }

    [Fact]
    public void ViewsAreCompleteDocumentsWhoseBodyIsTheEmbeddableFragment()
    {
        var batch = new SparseFeatureBatch(100, [0, 1, 2], [4, 50], [1f, 9f]);
        string[] tokens = ["a", "b"];
        foreach (var (document, fragment) in new[]
        {
            (FeatureHtml.TokenHeatmap(tokens, [1f, 2f], "t"), FeatureHtml.TokenHeatmap(tokens, [1f, 2f], "t", new FeatureHtmlOptions { Fragment = true })),
            (FeatureHtml.TopFeaturesTable(batch, tokens), FeatureHtml.TopFeaturesTable(batch, tokens, options: new FeatureHtmlOptions { Fragment = true })),
            (FeatureHtml.FeatureHeatmap(tokens, batch, 50), FeatureHtml.FeatureHeatmap(tokens, batch, 50, new FeatureHtmlOptions { Fragment = true })),
        })
        {
            Assert.StartsWith("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", document, StringComparison.Ordinal);
            Assert.EndsWith("</body>\n</html>\n", document, StringComparison.Ordinal);
            Assert.Contains("<body>\n" + fragment + "\n</body>", document, StringComparison.Ordinal);
            Assert.StartsWith("<div class=\"gemmascope-", fragment, StringComparison.Ordinal);
            Assert.EndsWith("</div>", fragment, StringComparison.Ordinal);
            Assert.DoesNotContain("<html", fragment, StringComparison.Ordinal);
            Assert.DoesNotContain("<style", fragment, StringComparison.Ordinal); // inline styles only: the fragment needs nothing from a head
            Assert.Equal(Count(fragment, "<div"), Count(fragment, "</div>"));
            Assert.Equal(Count(fragment, "<span"), Count(fragment, "</span>"));
        }
    }

    [Fact]
    public void HeatmapShowsAColourScaleFromZeroToTheMaximum()
    {
        var html = FeatureHtml.TokenHeatmap(["x", "y"], [0.5f, 2.25f], options: new FeatureHtmlOptions { Fragment = true });
        var scale = html[html.IndexOf("gemmascope-scale", StringComparison.Ordinal)..];
        Assert.Contains("activation: 0", scale, StringComparison.Ordinal);
        Assert.Contains("linear-gradient(to right,rgba(255,140,0,0),rgba(255,140,0,1))", scale, StringComparison.Ordinal);
        Assert.Contains("<span>2.25</span>", scale, StringComparison.Ordinal);
        var table = FeatureHtml.TopFeaturesTable(new SparseFeatureBatch(10, [0, 2], [1, 2], [3f, 6f]));
        Assert.Contains("rgba(255,140,0,0.500)", table, StringComparison.Ordinal); // 3 of 6
        Assert.Contains("gemmascope-scale", table, StringComparison.Ordinal);
        Assert.Contains("<span>6</span>", table, StringComparison.Ordinal);
    }

    [Fact]
    public void WhitespaceAndNewlineTokensAreVisible()
    {
        string[] tokens = [" ", "\n", " the", "\t", "", "a\r\nb", "\u2581x"];
        var heat = FeatureHtml.TokenHeatmap(tokens, new float[tokens.Length], options: new FeatureHtmlOptions { Fragment = true });
        var table = FeatureHtml.TopFeaturesTable(new SparseFeatureBatch(4, new int[tokens.Length + 1], [], []), tokens, options: new FeatureHtmlOptions { Fragment = true });
        foreach (var html in new[] { heat, table })
        {
            Assert.Equal(3, Count(html, "␣"));   // " ", " the", "▁x"
            Assert.Equal(2, Count(html, "↵"));
            Assert.Equal(1, Count(html, "⇥"));
            Assert.Equal(1, Count(html, "␍"));
            Assert.Equal(1, Count(html, "∅"));
            Assert.Contains("␣</span>the", html, StringComparison.Ordinal);
            Assert.Contains("a<span style=\"color:#999\">␍</span><span style=\"color:#999\">↵</span>", html, StringComparison.Ordinal);
        }

        Assert.Contains("↵</span>\n", heat, StringComparison.Ordinal);       // the heatmap keeps the text's lines
        Assert.DoesNotContain("↵</span>\n", table, StringComparison.Ordinal);
    }

    [Fact]
    public void FeaturesLinkToNeuronpediaWithTheirDescriptions()
    {
        using var sae = JumpReLUSae.FromArrays(new float[200], new float[200], new float[100], new float[2], Enumerable.Repeat(1f, 100).ToArray(), 2,
            new SaeLoadOptions { Config = new SaeConfig { NeuronpediaId = "gemma-2-2b/20-gemmascope-res-16k" } });
        var descriptions = new Dictionary<int, string> { [50] = "Paris & <landmarks>" };
        var options = FeatureHtmlOptions.For(sae, descriptions);
        var batch = new SparseFeatureBatch(100, [0, 2, 3], [4, 50, 50], [1f, 9f, 2f]);

        var table = FeatureHtml.TopFeaturesTable(batch, ["a", "b"], options: options);
        Assert.Contains("<a href=\"https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/50\" title=\"Paris &amp; &lt;landmarks&gt;\">#50 9.00</a>", table, StringComparison.Ordinal);
        Assert.Contains("<a href=\"https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/4\">#4 1.00</a>", table, StringComparison.Ordinal);
        Assert.Equal(2, Count(table, ">Paris &amp; &lt;landmarks&gt;</span>"));   // shown beside both occurrences of feature 50
        Assert.DoesNotContain("<landmarks>", table, StringComparison.Ordinal);

        var heat = FeatureHtml.FeatureHeatmap(["a", "b"], batch, 50, options);
        Assert.Contains("<a href=\"https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/50\"", heat, StringComparison.Ordinal);
        Assert.Contains("Feature #50</a>", heat, StringComparison.Ordinal);
        Assert.Contains("rgba(255,140,0,1.000)", heat, StringComparison.Ordinal);  // 9 of 9
        Assert.Contains("rgba(255,140,0,0.222)", heat, StringComparison.Ordinal);  // 2 of 9

        var plain = FeatureHtml.TopFeaturesTable(batch, ["a", "b"]);
        Assert.DoesNotContain("<a ", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("neuronpedia", FeatureHtml.TopFeaturesTable(batch, ["a", "b"], options: FeatureHtmlOptions.For(
            JumpReLUSae.FromArrays(new float[200], new float[200], new float[100], new float[2], new float[100], 2))), StringComparison.Ordinal);
    }

    private static int Count(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }
}
