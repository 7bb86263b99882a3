using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using GemmaScope.Cli.Output;
using GemmaScope.Hf;

namespace GemmaScope.Cli.Commands;

/// <summary><c>gemmascope list</c>: the compiled-in Gemma Scope catalog, filtered, as a table or JSON.</summary>
internal static class ListCommand
{
    public static Command Create()
    {
        var release = new Option<string?>("--release", "-r") { Description = "Only this release, e.g. gemma-scope-2b-pt-res or gemma-scope-2b-pt-res-canonical." };
        var layer = new Option<int?>("--layer", "-l") { Description = "Only SAEs reading this layer." };
        var site = new Option<string?>("--site", "-s") { Description = "Only SAEs at this site." };
        site.AcceptOnlyFromAmong("res", "att", "mlp", "embedding", "transcoder");
        var width = new Option<string?>("--width", "-w") { Description = "Only this width: " + string.Join(", ", SaeWidths.Names) + "." };
        width.AcceptOnlyFromAmong([.. SaeWidths.Names]);
        width.HelpName = string.Join('|', SaeWidths.Names); // in increasing size (the parser's own list sorts them as strings)
        var json = new Option<bool>("--json") { Description = "Write JSON (an array of SAEs) instead of a table." };
        var command = new Command("list", "List the Gemma Scope SAEs of the compiled-in catalog (SAELens names, hook points, sizes, Neuronpedia ids).")
        {
            release, layer, site, width, json,
        };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => Task.FromResult(Run(
            p.GetValue(release), p.GetValue(layer), p.GetValue(site), p.GetValue(width), p.GetValue(json)))));
        return command;
    }

    private static int Run(string? releaseName, int? layer, string? site, string? width, bool json)
    {
        var releases = releaseName is null ? GemmaScopeCatalog.Releases : [GemmaScopeCatalog.GetRelease(releaseName)];
        var wanted = site switch
        {
            "res" => SaeSite.ResidualStream,
            "att" => SaeSite.AttentionOutput,
            "mlp" => SaeSite.MlpOutput,
            "embedding" => SaeSite.Embedding,
            "transcoder" => SaeSite.Transcoder,
            _ => (SaeSite?)null,
        };
        var saes = releases.SelectMany(r => r.Saes)
            .Where(s => (layer is null || s.Layer == layer) && (wanted is null || s.Site == wanted) && (width is null || s.Width == width))
            .ToList();
        if (json)
        {
            var rows = saes.Select(s => new Dictionary<string, object?>
            {
                ["release"] = s.Release.Name,
                ["id"] = s.Id,
                ["repoId"] = s.RepoId,
                ["file"] = s.FilePath,
                ["layer"] = s.Layer,
                ["site"] = SiteName(s.Site),
                ["hookName"] = s.HookName,
                ["outputHookName"] = s.OutputHookName,
                ["width"] = s.Width,
                ["inputSize"] = s.InputSize,
                ["featureCount"] = s.FeatureCount,
                ["averageL0"] = s.AverageL0,
                ["neuronpediaId"] = s.NeuronpediaId,
            });
            Console.Out.WriteLine(JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }

        if (saes.Count == 0)
        {
            Console.Error.WriteLine("gemmascope: no SAE in the catalog matches these filters.");
            return ExitCodes.Ok;
        }

        var table = new Table("RELEASE/ID", "HOOK", "D_IN", "D_SAE", "L0", "NEURONPEDIA");
        foreach (var s in saes)
        {
            table.Add($"{s.Release.Name}/{s.Id}", s.HookName, s.InputSize.ToString(CultureInfo.InvariantCulture),
                s.FeatureCount.ToString(CultureInfo.InvariantCulture), s.AverageL0.ToString(CultureInfo.InvariantCulture), s.NeuronpediaId ?? "-");
        }

        table.Write(Console.Out);
        Console.Error.WriteLine($"{saes.Count} SAEs (catalog from SAELens commit {GemmaScopeCatalog.SaeLensSourceCommit}).");
        return ExitCodes.Ok;
    }

    internal static string SiteName(SaeSite site) => site switch
    {
        SaeSite.ResidualStream => "res",
        SaeSite.AttentionOutput => "att",
        SaeSite.MlpOutput => "mlp",
        SaeSite.Transcoder => "transcoder",
        _ => "embedding",
    };
}
