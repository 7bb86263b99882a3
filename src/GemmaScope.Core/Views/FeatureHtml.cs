using System.Globalization;
using System.Net;
using System.Text;

namespace GemmaScope.Views;

/// <summary>How <see cref="FeatureHtml"/> renders: document or fragment, feature links and descriptions.</summary>
public sealed record FeatureHtmlOptions
{
    /// <summary>A complete document, no links, no descriptions.</summary>
    public static FeatureHtmlOptions Default { get; } = new();

    /// <summary>
    /// False (default): a complete HTML document (doctype, UTF-8 charset, title) to write to a file or serve. True: only its
    /// body, one <c>&lt;div&gt;</c> with inline styles, to embed in a page or a notebook output. The document's body is
    /// exactly that fragment.
    /// </summary>
    public bool Fragment { get; init; }

    /// <summary>
    /// The SAE's Neuronpedia id (<see cref="SaeConfig.NeuronpediaId"/>, e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>):
    /// each feature links to <c>https://www.neuronpedia.org/{id}/{feature}</c>. Null: no links (unless <see cref="FeatureUrl"/>).
    /// </summary>
    public string? NeuronpediaId { get; init; }

    /// <summary>Feature descriptions by feature index (e.g. Neuronpedia explanations); shown beside the features that have one.</summary>
    public IReadOnlyDictionary<int, string>? Descriptions { get; init; }

    /// <summary>Maps a feature index to a URL, overriding <see cref="NeuronpediaId"/>.</summary>
    public Func<int, string>? FeatureUrl { get; init; }

    /// <summary>
    /// False (default): a token shown as <see cref="FeatureHtml.BosToken"/> (<c>&lt;bos&gt;</c>, as <c>RunResult.Tokens()</c> and
    /// the tokenizer show BOS) is left out of the colour scales and its features are not listed: Gemma Scope's SAEs were not
    /// trained on BOS, whose activations are huge and meaningless. True: BOS is treated as any other token.
    /// </summary>
    public bool IncludeBos { get; init; }

    /// <summary>Options for an SAE's features: its Neuronpedia links, and descriptions if given.</summary>
    /// <param name="sae">The SAE (its <see cref="SaeConfig.NeuronpediaId"/> gives the links).</param>
    /// <param name="descriptions">Descriptions by feature index, or null.</param>
    public static FeatureHtmlOptions For(JumpReLUSae sae, IReadOnlyDictionary<int, string>? descriptions = null)
    {
        ArgumentNullException.ThrowIfNull(sae);
        return new FeatureHtmlOptions { NeuronpediaId = sae.Config.NeuronpediaId, Descriptions = descriptions };
    }

    internal string? UrlOf(int feature) => FeatureUrl?.Invoke(feature)
        ?? (NeuronpediaId is null ? null : string.Create(CultureInfo.InvariantCulture, $"https://www.neuronpedia.org/{NeuronpediaId.Trim('/')}/{feature}"));

    internal string? DescriptionOf(int feature) => Descriptions is not null && Descriptions.TryGetValue(feature, out var d) ? d : null;
}

/// <summary>
/// Plain, self-contained HTML views of SAE features (no scripts, no notebook dependency). Each returns a complete
/// document (doctype, UTF-8) by default, or the embeddable fragment with <see cref="FeatureHtmlOptions.Fragment"/>.
/// All text is HTML-encoded; whitespace inside tokens is shown as glyphs (␣ space, ↵ newline, ⇥ tab, ␍ carriage
/// return, ∅ an empty token), and a colour scale gives the values the shading stands for.
/// </summary>
public static class FeatureHtml
{
    /// <summary>How BOS is shown everywhere (<c>RunResult.Tokens()</c>, the tokenizer, the CLI, these views).</summary>
    public const string BosToken = "<bos>";

    private const string Orange = "255,140,0";
    private const string Faint = "color:#999";

    /// <summary>
    /// Tokens shaded by one feature's activation (transparent at 0, full orange at the largest value), each with a tooltip
    /// giving its position and value, above a colour scale.
    /// </summary>
    /// <param name="tokens">Display strings of the tokens.</param>
    /// <param name="activations">The feature's activation per token (same length as <paramref name="tokens"/>).</param>
    /// <param name="title">Optional heading.</param>
    /// <param name="options">Document or fragment, links and descriptions; null for <see cref="FeatureHtmlOptions.Default"/>.</param>
    public static string TokenHeatmap(IReadOnlyList<string> tokens, ReadOnlySpan<float> activations, string? title = null, FeatureHtmlOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count != activations.Length)
        {
            throw new ArgumentException($"{tokens.Count} tokens but {activations.Length} activations");
        }

        options ??= FeatureHtmlOptions.Default;
        var sb = new StringBuilder("<div class=\"gemmascope-heatmap\" style=\"font-family:monospace;line-height:1.8\">");
        if (title is not null)
        {
            sb.Append("<div style=\"font-weight:bold\">").Append(Encode(title)).Append("</div>");
        }

        return Finish(options, title ?? "Token heatmap", AppendHeatmap(sb, tokens, activations, options).Append("</div>"));
    }

    /// <summary>
    /// One feature across the tokens of a batch (<see cref="SparseFeatureBatch.Feature"/>): a heatmap headed by the
    /// feature's index, linked to its page, and its description when one is known.
    /// </summary>
    /// <param name="tokens">Display strings of the tokens.</param>
    /// <param name="features">Sparse features of the same tokens.</param>
    /// <param name="feature">The feature to show.</param>
    /// <param name="options">Document or fragment, links and descriptions (e.g. <see cref="FeatureHtmlOptions.For"/>).</param>
    public static string FeatureHeatmap(IReadOnlyList<string> tokens, SparseFeatureBatch features, int feature, FeatureHtmlOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(features);
        options ??= FeatureHtmlOptions.Default;
        var values = features.Feature(feature);
        if (tokens.Count != values.Length)
        {
            throw new ArgumentException($"{tokens.Count} tokens but features for {values.Length}");
        }

        var sb = new StringBuilder("<div class=\"gemmascope-heatmap\" style=\"font-family:monospace;line-height:1.8\">");
        sb.Append("<div style=\"font-weight:bold\">");
        AppendFeatureLabel(sb, feature, string.Create(CultureInfo.InvariantCulture, $"Feature #{feature}"), options);
        sb.Append("</div>");
        return Finish(options, string.Create(CultureInfo.InvariantCulture, $"Feature {feature}"), AppendHeatmap(sb, tokens, values, options).Append("</div>"));
    }

    /// <summary>
    /// A table with one row per token: the token, its L0 and its strongest features, each shaded by its value (with a
    /// colour scale), linked to its page (<paramref name="featureUrl"/>, or the options' Neuronpedia id) and followed by its
    /// description when one is known.
    /// </summary>
    /// <param name="features">Sparse features of the tokens.</param>
    /// <param name="tokens">Display strings, or null to show positions only.</param>
    /// <param name="topK">Features shown per token.</param>
    /// <param name="featureUrl">Maps a feature index to a URL, or null (then <see cref="FeatureHtmlOptions.NeuronpediaId"/> decides).</param>
    /// <param name="options">Document or fragment, links and descriptions; null for <see cref="FeatureHtmlOptions.Default"/>.</param>
    public static string TopFeaturesTable(SparseFeatureBatch features, IReadOnlyList<string>? tokens = null, int topK = 5, Func<int, string>? featureUrl = null,
        FeatureHtmlOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentOutOfRangeException.ThrowIfNegative(topK);
        if (tokens is not null && tokens.Count != features.TokenCount)
        {
            throw new ArgumentException($"{tokens.Count} tokens but features for {features.TokenCount}");
        }

        options ??= FeatureHtmlOptions.Default;
        if (featureUrl is not null)
        {
            options = options with { FeatureUrl = featureUrl };
        }

        float max = 0;
        for (int t = 0; t < features.TokenCount; t++)
        {
            if (!Skipped(tokens?[t], options))
            {
                foreach (var v in features[t].Values)
                {
                    max = Math.Max(max, v);
                }
            }
        }

        var sb = new StringBuilder("<div class=\"gemmascope-features\" style=\"font-family:monospace\">");
        sb.Append("<table style=\"border-collapse:collapse\">");
        sb.Append("<tr><th style=\"text-align:right;padding:0 .5em\">#</th><th style=\"text-align:left;padding:0 .5em\">token</th><th style=\"text-align:right;padding:0 .5em\">L0</th><th style=\"text-align:left;padding:0 .5em\">top features</th></tr>");
        for (int t = 0; t < features.TokenCount; t++)
        {
            var f = features[t];
            sb.Append(CultureInfo.InvariantCulture, $"<tr><td style=\"text-align:right;padding:0 .5em\">{t}</td><td style=\"padding:0 .5em\">");
            if (tokens is not null)
            {
                AppendToken(sb, tokens[t], lineBreaks: false);
            }

            if (Skipped(tokens?[t], options))
            {
                sb.Append($"</td><td style=\"text-align:right;padding:0 .5em;{Faint}\">–</td><td style=\"padding:0 .5em;{Faint}\">not shown: Gemma Scope SAEs were not trained on BOS (IncludeBos shows it)</td></tr>");
                continue;
            }

            sb.Append(CultureInfo.InvariantCulture, $"</td><td style=\"text-align:right;padding:0 .5em\">{f.Count}</td><td style=\"padding:0 .5em\">");
            foreach (var (feature, value) in f.TopK(topK))
            {
                sb.Append(CultureInfo.InvariantCulture, $"<span style=\"margin-right:1em;padding:0 2px;border-radius:3px;background:{Shade(value, max)}\">");
                AppendFeatureLabel(sb, feature, string.Create(CultureInfo.InvariantCulture, $"#{feature} {value:F2}"), options);
                sb.Append("</span>");
            }

            sb.Append("</td></tr>");
        }

        sb.Append("</table>");
        AppendScale(sb, max, "feature value");
        return Finish(options, "Top features", sb.Append("</div>"));
    }

    private static StringBuilder AppendHeatmap(StringBuilder sb, IReadOnlyList<string> tokens, ReadOnlySpan<float> activations, FeatureHtmlOptions options)
    {
        float max = 0;
        for (int t = 0; t < activations.Length; t++)
        {
            if (!Skipped(tokens[t], options))
            {
                max = Math.Max(max, activations[t]);
            }
        }

        sb.Append("<div style=\"white-space:pre-wrap\">");
        for (int t = 0; t < tokens.Count; t++)
        {
            if (Skipped(tokens[t], options))
            {
                sb.Append(CultureInfo.InvariantCulture, $"<span title=\"{t}: BOS, left out of the scale\" style=\"{Faint}\">");
                AppendToken(sb, tokens[t], lineBreaks: true);
                sb.Append("</span>");
                continue;
            }

            sb.Append(CultureInfo.InvariantCulture, $"<span title=\"{t}: {activations[t]:G4}\" style=\"background:{Shade(activations[t], max)};border-radius:3px\">");
            AppendToken(sb, tokens[t], lineBreaks: true);
            sb.Append("</span>");
        }

        sb.Append("</div>");
        return AppendScale(sb, max, "activation");
    }

    // BOS is left out of scales and listings unless the options include it.
    private static bool Skipped(string? token, FeatureHtmlOptions options) => !options.IncludeBos && token == BosToken;

    // rgba(orange, value / max), clamped to [0, 1]; all white when nothing is positive.
    private static string Shade(float value, float max)
    {
        double alpha = max > 0 ? Math.Clamp(value / max, 0, 1) : 0;
        return string.Create(CultureInfo.InvariantCulture, $"rgba({Orange},{alpha:F3})");
    }

    private static StringBuilder AppendScale(StringBuilder sb, float max, string what) =>
        sb.Append("<div class=\"gemmascope-scale\" style=\"display:flex;align-items:center;gap:.5em;margin-top:.5em;font-size:smaller\">")
          .Append(CultureInfo.InvariantCulture, $"<span>{Encode(what)}: 0</span>")
          .Append(CultureInfo.InvariantCulture, $"<span style=\"display:inline-block;width:10em;height:.8em;border:1px solid #ccc;background:linear-gradient(to right,rgba({Orange},0),rgba({Orange},1))\"></span>")
          .Append(CultureInfo.InvariantCulture, $"<span>{max:G4}</span></div>");

    private static void AppendFeatureLabel(StringBuilder sb, int feature, string label, FeatureHtmlOptions options)
    {
        var url = options.UrlOf(feature);
        var description = options.DescriptionOf(feature);
        string tip = description is null ? "" : $" title=\"{Encode(description)}\"";
        if (url is null)
        {
            sb.Append("<span").Append(tip).Append('>').Append(Encode(label)).Append("</span>");
        }
        else
        {
            sb.Append("<a href=\"").Append(Encode(url)).Append('"').Append(tip).Append('>').Append(Encode(label)).Append("</a>");
        }

        if (description is not null)
        {
            sb.Append(" <span class=\"gemmascope-description\" style=\"color:#555\">").Append(Encode(description)).Append("</span>");
        }
    }

    // Whitespace stays visible: each whitespace character becomes a faint glyph (a newline also breaks the line in heatmaps).
    private static void AppendToken(StringBuilder sb, string token, bool lineBreaks)
    {
        if (token.Length == 0)
        {
            sb.Append("<span style=\"").Append(Faint).Append("\">∅</span>");
            return;
        }

        int start = 0;
        for (int i = 0; i < token.Length; i++)
        {
            string? glyph = token[i] switch
            {
                ' ' or '\u2581' => "␣",
                '\n' => "↵",
                '\t' => "⇥",
                '\r' => "␍",
                _ => null,
            };
            if (glyph is null)
            {
                continue;
            }

            sb.Append(Encode(token[start..i])).Append("<span style=\"").Append(Faint).Append("\">").Append(glyph).Append("</span>");
            if (token[i] == '\n' && lineBreaks)
            {
                sb.Append('\n');
            }

            start = i + 1;
        }

        sb.Append(Encode(token[start..]));
    }

    private static string Finish(FeatureHtmlOptions options, string title, StringBuilder fragment) => options.Fragment
        ? fragment.ToString()
        : new StringBuilder("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>")
            .Append(Encode(title)).Append("</title>\n</head>\n<body>\n").Append(fragment).Append("\n</body>\n</html>\n").ToString();

    private static string Encode(string s) => WebUtility.HtmlEncode(s);
}
