using System.Globalization;
using System.Text.Json;

namespace GemmaScope.Scan;

/// <summary>
/// A JSON export shaped like Neuronpedia's bulk-import feature records: per SAE one <c>features.jsonl</c>, a line per
/// live feature with <c>modelId</c>, <c>layer</c> (the SAE id), <c>index</c>, <c>frac_nonzero</c>, the logit lens
/// (<c>pos_str</c>/<c>pos_values</c>, <c>neg_str</c>/<c>neg_values</c>), the histogram and <c>activations</c> (tokens,
/// values, maxValue, maxValueTokenIndex). Field names follow Neuronpedia's public feature JSON.
/// </summary>
internal static class NeuronpediaExport
{
    public static void Write(string dir, ScanManifest m, List<FeatureRecord> features, List<ExampleRecord> examples)
    {
        Directory.CreateDirectory(dir);
        var byFeature = examples.GroupBy(e => (e.Sae, e.Feature)).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var sae in m.Saes)
        {
            var (model, id) = sae.NeuronpediaId is { } np && np.Contains('/', StringComparison.Ordinal)
                ? (np[..np.IndexOf('/', StringComparison.Ordinal)], np[(np.IndexOf('/', StringComparison.Ordinal) + 1)..])
                : (Path.GetFileName(m.Model), sae.Name);
            var path = Path.Combine(dir, Safe(sae.Name) + ".jsonl");
            ScanOutput.WriteAtomic(path, p =>
            {
                using var w = new StreamWriter(p);
                foreach (var f in features.Where(f => f.Sae == sae.Name && f.FireCount > 0))
                {
                    byFeature.TryGetValue((f.Sae, f.Feature), out var ex);
                    var rec = new Dictionary<string, object?>
                    {
                        ["modelId"] = model,
                        ["layer"] = id,
                        ["index"] = f.Feature.ToString(CultureInfo.InvariantCulture),
                        ["frac_nonzero"] = f.Density,
                        ["maxActApprox"] = f.Max,
                        ["pos_str"] = f.TopLogitTokens,
                        ["pos_values"] = f.TopLogitValues,
                        ["neg_str"] = f.BottomLogitTokens,
                        ["neg_values"] = f.BottomLogitValues,
                        ["freq_hist_data_bar_heights"] = f.HistCounts,
                        ["freq_hist_data_bar_values"] = Enumerable.Range(0, f.HistCounts.Length).Select(i => f.Max * (i + 0.5) / f.HistCounts.Length).ToArray(),
                        ["activations"] = (ex ?? []).Select(e => new
                        {
                            tokens = e.Tokens,
                            values = e.Values,
                            maxValue = e.Value,
                            maxValueTokenIndex = e.Position - e.WindowStart,
                            binMin = e.Kind == "top" ? -1 : e.QuantileGroup,
                        }).ToArray(),
                    };
                    w.WriteLine(JsonSerializer.Serialize(rec));
                }
            });
        }
    }

    private static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
