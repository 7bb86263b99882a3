using GemmaScope.Views;

namespace GemmaScope.Tests.Views;

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
}
