using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using GemmaScope.Hf;

namespace GemmaScope.Cli.Commands;

/// <summary><c>gemmascope explain RELEASE/ID FEATURE...</c>: Neuronpedia's descriptions of features.</summary>
internal static class ExplainCommand
{
    public static Command Create()
    {
        var sae = new Argument<string>("sae") { Description = "RELEASE/ID of the catalog (e.g. gemma-scope-2b-pt-res-canonical/layer_20/width_16k/canonical) or a Neuronpedia id (gemma-2-2b/20-gemmascope-res-16k)." };
        var features = new Argument<int[]>("feature") { Description = "Feature indices.", Arity = ArgumentArity.OneOrMore };
        var export = new Option<bool>("--export") { Description = "Download (or read from the cache) the SAE's whole explanation export, instead of one request per feature." };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of text." };
        var command = new Command(
            "explain",
            "Print Neuronpedia's descriptions of features (cached next to the hub cache; NEURONPEDIA_ENDPOINT, NEURONPEDIA_EXPORTS, NEURONPEDIA_OFFLINE apply).")
        {
            sae, features, export, json,
        };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => RunAsync(p.GetValue(sae)!, p.GetValue(features)!, p.GetValue(export), p.GetValue(json), ct)));
        return command;
    }

    private static async Task<int> RunAsync(string spec, int[] features, bool wholeExport, bool json, CancellationToken ct)
    {
        var (npId, featureCount) = await ResolveAsync(spec, ct).ConfigureAwait(false);
        foreach (var f in features)
        {
            if (f < 0 || (featureCount is int n && f >= n))
            {
                throw new UsageException($"Feature {f} is out of range: {spec} has features 0..{(featureCount ?? int.MaxValue) - 1}.");
            }
        }

        using var client = new NeuronpediaClient();
        var found = new List<(int Feature, IReadOnlyList<FeatureExplanation> Explanations)>();
        if (wholeExport)
        {
            var all = await client.GetExportAsync(npId, new Output.ProgressBar(), ct).ConfigureAwait(false);
            found.AddRange(features.Select(f => (f, (IReadOnlyList<FeatureExplanation>)all.Explanations.Where(e => e.Index == f).ToList())));
        }
        else
        {
            foreach (var f in features)
            {
                found.Add((f, await client.GetFeatureAsync(npId, f, ct).ConfigureAwait(false)));
            }
        }

        if (json)
        {
            var o = found.Select(x => new Dictionary<string, object?>
            {
                ["neuronpediaId"] = npId,
                ["feature"] = x.Feature,
                ["url"] = GemmaScopeCatalog.NeuronpediaFeatureUrl(npId, x.Feature).ToString(),
                ["explanations"] = x.Explanations.Select(e => new Dictionary<string, object?>
                {
                    ["description"] = e.Description,
                    ["typeName"] = e.TypeName,
                    ["explanationModelName"] = e.ExplanationModelName,
                }),
            });
            Console.Out.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }

        foreach (var (f, explanations) in found)
        {
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#{f}  {GemmaScopeCatalog.NeuronpediaFeatureUrl(npId, f)}"));
            if (explanations.Count == 0)
            {
                Console.Out.WriteLine("    (Neuronpedia has no explanation of this feature)");
            }

            foreach (var e in explanations)
            {
                var by = string.Join(", ", new[] { e.ExplanationModelName, e.TypeName }.OfType<string>());
                Console.Out.WriteLine($"    {e.Description}{(by.Length > 0 ? $"  ({by})" : string.Empty)}");
            }
        }

        return ExitCodes.Ok;
    }

    private static async Task<(string NeuronpediaId, int? FeatureCount)> ResolveAsync(string spec, CancellationToken ct)
    {
        if (SaeSpec.TrySplit(spec, out var release, out var id))
        {
            using var hub = new GemmaScopeHubClient();
            var sae = await hub.ResolveAsync(release!.Name, id, ct).ConfigureAwait(false);
            return (sae.NeuronpediaId ?? throw new ArgumentException(
                $"Neuronpedia has no dashboards for {sae} (SAELens lists no Neuronpedia id for it); the canonical SAE of {sae.Release.Name.Replace("-canonical", string.Empty, StringComparison.Ordinal)}-canonical/{sae.Id[..sae.Id.LastIndexOf('/')]}/canonical may have one."),
                sae.FeatureCount);
        }

        if (spec.Count(c => c == '/') == 1)
        {
            GemmaScopeCatalog.NeuronpediaFeatureUrl(spec, 0); // validates the form model/source
            return (spec, null);
        }

        var slash = spec.IndexOf('/', StringComparison.Ordinal);
        GemmaScopeCatalog.GetRelease(slash > 0 ? spec[..slash] : spec); // throws with "did you mean"
        throw new UsageException($"'{spec}' is neither RELEASE/ID nor a Neuronpedia id.");
    }
}
