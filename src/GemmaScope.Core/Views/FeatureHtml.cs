using System.Globalization;
using System.Net;
using System.Text;

namespace GemmaScope.Views;

/// <summary>
/// Plain, self-contained HTML views of SAE features (no scripts, no notebook dependency): paste into a page, write to a
/// file, or return from a notebook cell. All text is HTML-encoded.
/// </summary>
public static class FeatureHtml
{
    /// <summary>
    /// Tokens shaded by one feature's activation (white at 0, full orange at the largest value), each with a tooltip
    /// giving its value. Whitespace inside tokens is kept visible.
    /// </summary>
    /// <param name="tokens">Display strings of the tokens.</param>
    /// <param name="activations">The feature's activation per token (same length as <paramref name="tokens"/>).</param>
    /// <param name="title">Optional heading.</param>
    public static string TokenHeatmap(IReadOnlyList<string> tokens, ReadOnlySpan<float> activations, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count != activations.Length)
        {
            throw new ArgumentException($"{tokens.Count} tokens but {activations.Length} activations");
        }

        float max = 0;
        foreach (var a in activations)
        {
            max = Math.Max(max, a);
        }

        var sb = new StringBuilder("<div class=\"gemmascope-heatmap\" style=\"font-family:monospace;white-space:pre-wrap;line-height:1.8\">");
        if (title is not null)
        {
            sb.Append("<div style=\"font-weight:bold\">").Append(WebUtility.HtmlEncode(title)).Append("</div>");
        }

        for (int t = 0; t < tokens.Count; t++)
        {
            double alpha = max > 0 ? Math.Clamp(activations[t] / max, 0, 1) : 0;
            sb.Append(CultureInfo.InvariantCulture, $"<span title=\"{t}: {activations[t]:G4}\" style=\"background:rgba(255,140,0,{alpha:F3});border-radius:3px\">")
              .Append(WebUtility.HtmlEncode(tokens[t]))
              .Append("</span>");
        }

        return sb.Append("</div>").ToString();
    }

    /// <summary>
    /// A table with one row per token: the token, its L0 and its strongest features (value, and a link when
    /// <paramref name="featureUrl"/> is given, e.g. a Neuronpedia feature page).
    /// </summary>
    /// <param name="features">Sparse features of the tokens.</param>
    /// <param name="tokens">Display strings, or null to show positions only.</param>
    /// <param name="topK">Features shown per token.</param>
    /// <param name="featureUrl">Maps a feature index to a URL, or null for no links.</param>
    public static string TopFeaturesTable(SparseFeatureBatch features, IReadOnlyList<string>? tokens = null, int topK = 5, Func<int, string>? featureUrl = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (tokens is not null && tokens.Count != features.TokenCount)
        {
            throw new ArgumentException($"{tokens.Count} tokens but features for {features.TokenCount}");
        }

        var sb = new StringBuilder("<table class=\"gemmascope-features\" style=\"border-collapse:collapse;font-family:monospace\">");
        sb.Append("<tr><th>#</th><th>token</th><th>L0</th><th>top features</th></tr>");
        for (int t = 0; t < features.TokenCount; t++)
        {
            var f = features[t];
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td>{t}</td><td>")
              .Append(WebUtility.HtmlEncode(tokens?[t] ?? ""))
              .Append(CultureInfo.InvariantCulture, $"</td><td>{f.Count}</td><td>");
            foreach (var (feature, value) in f.TopK(topK))
            {
                var label = string.Create(CultureInfo.InvariantCulture, $"#{feature} {value:F2}");
                if (featureUrl is null)
                {
                    sb.Append("<span style=\"margin-right:1em\">").Append(label).Append("</span>");
                }
                else
                {
                    sb.Append("<a style=\"margin-right:1em\" href=\"").Append(WebUtility.HtmlEncode(featureUrl(feature))).Append("\">").Append(label).Append("</a>");
                }
            }

            sb.Append("</td></tr>");
        }

        return sb.Append("</table>").ToString();
    }
}
