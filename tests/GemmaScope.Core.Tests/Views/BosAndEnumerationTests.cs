using GemmaScope.Views;

namespace GemmaScope.Core.Tests.Views;

/// <summary>Issue 20, new-user findings 6 and 8: BOS (shown as &lt;bos&gt;) stays out of the HTML scales by default; a batch enumerates storable tokens.</summary>
public class BosAndEnumerationTests
{
    [Fact]
    public void BosDoesNotSetTheHeatmapScaleUnlessIncluded()
    {
        string[] tokens = ["<bos>", " Paris", " is"];
        var html = FeatureHtml.TokenHeatmap(tokens, [11.83f, 4f, 2f]);
        Assert.Contains("<span>4</span></div>", html);                 // the scale ends at the largest non-BOS value
        Assert.Contains("rgba(255,140,0,1.000)", html);               // " Paris" is the full colour, not 4/11.83
        Assert.Contains("rgba(255,140,0,0.500)", html);
        Assert.DoesNotContain("11.83", html);

        var with = FeatureHtml.TokenHeatmap(tokens, [11.83f, 4f, 2f], options: new FeatureHtmlOptions { IncludeBos = true });
        Assert.Contains("<span>11.83</span></div>", with);
    }

    [Fact]
    public void BosIsLeftOutOfTheTopFeaturesTableAndItsScaleUnlessIncluded()
    {
        var batch = new SparseFeatureBatch(100, [0, 1, 3], [7, 7, 50], [11.83f, 2f, 4f]);
        var html = FeatureHtml.TopFeaturesTable(batch, ["<bos>", " Paris"], topK: 3);
        Assert.DoesNotContain("#7 11.83", html);
        Assert.Contains("#50 4.00", html);
        Assert.Contains("<span>4</span></div>", html);
        Assert.Contains("not trained on BOS", html);

        var with = FeatureHtml.TopFeaturesTable(batch, ["<bos>", " Paris"], topK: 3, options: new FeatureHtmlOptions { IncludeBos = true });
        Assert.Contains("#7 11.83", with);
        Assert.Contains("<span>11.83</span></div>", with);
    }

    [Fact]
    public void ABatchEnumeratesStorableTokenFeatures()
    {
        var batch = new SparseFeatureBatch(100, [0, 2, 2, 3], [4, 50, 99], [1f, 9f, 3f]);
        var list = new List<TokenFeatures>();
        foreach (var f in batch)
        {
            list.Add(f); // what features[t] (a ref struct) cannot do
        }

        Assert.Equal(3, list.Count);
        Assert.Equal([4, 50], list[0].Indices.ToArray());
        Assert.Equal([9f], list[0].TopK(1).Select(p => p.Value));
        Assert.Empty(list[1].Indices.ToArray());
        Assert.Equal([99], list[2].Indices.ToArray());
        Assert.Equal([2, 0, 1], batch.Select(f => f.Count));
    }
}
