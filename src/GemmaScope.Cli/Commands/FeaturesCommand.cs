using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using GemmaScope.Cli.Output;
using GemmaScope.Hf;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;
using GemmaScope.Views;

namespace GemmaScope.Cli.Commands;

/// <summary>
/// <c>gemmascope features --model M --sae S "text"</c>: runs the model, captures the SAE's hook point, encodes each token and
/// prints its top features (value, Neuronpedia description), L0 and relative reconstruction error.
/// </summary>
internal static class FeaturesCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = "A Gemma 2 ONNX export (model.onnx or its folder), a Hugging Face checkpoint folder (config.json + safetensors), or a hub repository id (google/gemma-2-2b).",
            Required = true,
        };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "For an ONNX export: tokenizer.json or tokenizer.model (default: found next to the model or one folder up)." };
        var sae = new Option<string>("--sae") { Description = "RELEASE/ID of the catalog (downloaded into the hub cache) or a local SAE or transcoder file/folder.", Required = true };
        var hook = new Option<string?>("--hook") { Description = "The hook point to read, e.g. blocks.20.hook_resid_post (default: the SAE's own)." };
        var top = new Option<int>("--top", "-k") { Description = "Features shown per token.", DefaultValueFactory = _ => 5 };
        var neuronpedia = new Option<string?>("--neuronpedia") { Description = "Neuronpedia id for descriptions (default: the SAE's), e.g. gemma-2-2b/20-gemmascope-res-16k." };
        var noDescriptions = new Option<bool>("--no-descriptions") { Description = "Do not look up feature descriptions." };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var html = new Option<string?>("--html") { Description = "Also write an HTML page of the features to this file." };
        var includeBos = new Option<bool>("--include-bos")
        {
            Description = "Encode the BOS token too and count it in L0 and the HTML scales (off by default: Gemma Scope SAEs were not trained on BOS).",
        };
        var text = new Argument<string>("text") { Description = "The text to analyse (a BOS token is prepended)." };
        var command = new Command("features", "Show each token's top SAE features, L0 and reconstruction error for a text.")
        {
            model, tokenizer, sae, hook, top, neuronpedia, noDescriptions, json, html, includeBos, text,
        };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => RunAsync(
            new Args(p.GetValue(model)!, p.GetValue(tokenizer), p.GetValue(sae)!, p.GetValue(hook), p.GetValue(top), p.GetValue(neuronpedia),
                p.GetValue(noDescriptions), p.GetValue(json), p.GetValue(html), p.GetValue(includeBos), p.GetValue(text)!),
            ct)));
        return command;
    }

    private sealed record Args(string Model, string? Tokenizer, string Sae, string? Hook, int Top, string? Neuronpedia, bool NoDescriptions, bool Json, string? Html, bool IncludeBos, string Text);

    private static async Task<int> RunAsync(Args a, CancellationToken ct)
    {
        if (a.Top < 1)
        {
            throw new UsageException($"--top must be at least 1, not {a.Top}.");
        }

        using var sae = await SaeSpec.LoadAsync(a.Sae, null, ct).ConfigureAwait(false);
        var hookName = a.Hook ?? sae.Config.HookName
            ?? throw new UsageException($"{a.Sae} does not record its hook point: pass --hook, e.g. --hook {HookPoint.ResidPost(Math.Max(0, sae.Config.HookLayer ?? 0)).Name}.");
        var site = UsageException.Hook(a.Hook is null ? $"{a.Sae}'s hook name" : "--hook", hookName);

        var (gemma, bosId) = await ModelSpec.LoadAsync(a.Model, a.Tokenizer, ct).ConfigureAwait(false);
        using var disposeModel = gemma;
        var width = gemma.Width(site);
        if (width != sae.InputSize)
        {
            throw new ArgumentException($"The {Kind(sae)} reads {sae.InputSize} values per token but {site.Name} of {a.Model} has {width}: wrong model, layer or site.");
        }

        // A transcoder's reconstruction is compared with the site it writes (hook_mlp_out), an SAE's with the one it reads.
        var transcoder = sae as JumpReLUTranscoder;
        var outSite = transcoder is null ? site : transcoder.Config.OutputSite
            ?? throw new ArgumentException($"{a.Sae} does not record the hook point it writes ('{transcoder.OutputHookName}'): its reconstruction error cannot be measured.");

        var run = gemma.Run(a.Text, capture: outSite == site ? [site] : [site, outSite]);
        var acts = run.Activations(site).ToArray();
        var target = outSite == site ? acts : run.Activations(outSite).ToArray();
        var features = sae.EncodeSparse(acts);
        var xhat = Reconstruct(sae, acts, features);
        int dOut = sae.OutputSize;
        var tokens = run.Tokens() ?? throw new InvalidOperationException("The model returned no tokens.");
        var ids = run.Ids().ToArray();

        var rows = new List<TokenRow>(tokens.Count);
        for (var t = 0; t < tokens.Count; t++)
        {
            // BOS is shown as <bos> and left out of L0, errors and scales unless --include-bos.
            var bos = ids[t] == bosId && !a.IncludeBos;
            var f = features[t];
            var x = target.AsSpan(t * dOut, dOut);
            var r = xhat.AsSpan(t * dOut, dOut);
            double err = 0, norm = 0;
            for (var i = 0; i < x.Length; i++)
            {
                err += (double)(x[i] - r[i]) * (x[i] - r[i]);
                norm += (double)x[i] * x[i];
            }

            rows.Add(new TokenRow(t, ids[t] == bosId ? "<bos>" : tokens[t], ids[t], bos, f.Count, norm > 0 ? Math.Sqrt(err / norm) : double.NaN, f.TopK(a.Top)));
        }

        var npId = a.Neuronpedia ?? sae.Config.NeuronpediaId;
        IReadOnlyDictionary<int, string> descriptions = new Dictionary<int, string>();
        if (!a.NoDescriptions && npId is not null)
        {
            try
            {
                using var np = new NeuronpediaClient();
                var wanted = rows.Where(r => !r.Bos).SelectMany(r => r.Top.Select(p => p.Feature)).Distinct().ToList();
                descriptions = await np.GetDescriptionsAsync(npId, wanted, ct).ConfigureAwait(false);
            }
            catch (NeuronpediaException e)
            {
                Console.Error.WriteLine($"gemmascope: warning: no feature descriptions: {e.Message}");
            }
        }

        var nonBos = rows.Where(r => !r.Bos).ToList();
        var meanL0 = nonBos.Count == 0 ? 0 : nonBos.Average(r => r.L0);
        if (a.Html is not null)
        {
            WriteHtml(a.Html, features, rows.Select(r => r.Token).ToList(), a.Top, npId, descriptions, a.IncludeBos);
        }

        if (a.Json)
        {
            WriteJson(a, site, sae, npId, rows, descriptions, meanL0);
            return ExitCodes.Ok;
        }

        Console.Out.WriteLine($"{site.Name}  {sae}");
        var table = new Table("#", "TOKEN", "L0", "REL.ERR", "FEATURE", "VALUE", "DESCRIPTION");
        foreach (var row in rows)
        {
            var head = new[] { row.Index.ToString(CultureInfo.InvariantCulture), row.Token == "<bos>" ? row.Token : Units.Token(row.Token) };
            if (row.Bos)
            {
                table.Add([.. head, "-", "-", "-", string.Empty, "(not encoded: Gemma Scope SAEs were not trained on BOS)"]);
                continue;
            }

            var first = true;
            foreach (var (feature, value) in row.Top)
            {
                table.Add(
                    first ? head[0] : string.Empty,
                    first ? head[1] : string.Empty,
                    first ? row.L0.ToString(CultureInfo.InvariantCulture) : string.Empty,
                    first ? row.RelativeError.ToString("F3", CultureInfo.InvariantCulture) : string.Empty,
                    "#" + feature.ToString(CultureInfo.InvariantCulture),
                    value.ToString("F3", CultureInfo.InvariantCulture),
                    descriptions.TryGetValue(feature, out var d) ? d : string.Empty);
                first = false;
            }

            if (first)
            {
                table.Add(head[0], head[1], "0", row.RelativeError.ToString("F3", CultureInfo.InvariantCulture), "(none)", string.Empty, string.Empty);
            }
        }

        table.Write(Console.Out);
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mean L0 ({(a.IncludeBos ? "with" : "without")} BOS) {meanL0:F2}; rel.err = ‖x − x̂‖ / ‖x‖ per token{(transcoder is not null ? $" (x: {outSite.Name}, x̂: the transcoder's output)" : string.Empty)}"));
        return ExitCodes.Ok;
    }

    private sealed record TokenRow(int Index, string Token, int Id, bool Bos, int L0, double RelativeError, (int Feature, float Value)[] Top);

    private static string Kind(JumpReLUSae sae) => sae is JumpReLUTranscoder ? "transcoder" : "sae";

    /// <summary>x̂ for each token: an SAE's decoding of the features it gave, or a transcoder's prediction of its output site (with x·W_skip).</summary>
    private static float[] Reconstruct(JumpReLUSae sae, float[] activations, SparseFeatureBatch features)
    {
        if (sae is JumpReLUTranscoder transcoder)
        {
            return transcoder.Reconstruct(activations);
        }

        var xhat = new float[activations.Length];
        sae.DecodeSparse(features, xhat);
        return xhat;
    }

    private static void WriteJson(Args a, HookPoint site, JumpReLUSae sae, string? npId, List<TokenRow> rows, IReadOnlyDictionary<int, string> descriptions, double meanL0)
    {
        var o = new Dictionary<string, object?>
        {
            ["text"] = a.Text,
            ["hookName"] = site.Name,
            ["outputHookName"] = sae is JumpReLUTranscoder t ? t.OutputHookName : site.Name,
            ["kind"] = Kind(sae),
            ["sae"] = a.Sae,
            ["inputSize"] = sae.InputSize,
            ["featureCount"] = sae.FeatureCount,
            ["neuronpediaId"] = npId,
            ["meanL0"] = meanL0,
            ["tokens"] = rows.Select(r => new Dictionary<string, object?>
            {
                ["index"] = r.Index,
                ["token"] = r.Token,
                ["id"] = r.Id,
                ["bos"] = r.Bos,
                ["encoded"] = !r.Bos,
                ["l0"] = r.Bos ? null : r.L0,
                ["relativeError"] = !r.Bos && double.IsFinite(r.RelativeError) ? r.RelativeError : null,
                ["features"] = r.Bos ? Array.Empty<object>() : r.Top.Select(p => new Dictionary<string, object?>
                {
                    ["feature"] = p.Feature,
                    ["value"] = p.Value,
                    ["description"] = descriptions.GetValueOrDefault(p.Feature),
                    ["url"] = npId is null ? null : GemmaScopeCatalog.NeuronpediaFeatureUrl(npId, p.Feature).ToString(),
                }).ToArray<object>(),
            }),
        };
        Console.Out.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
    }

    private static void WriteHtml(
        string path, SparseFeatureBatch features, IReadOnlyList<string> tokens, int top, string? npId, IReadOnlyDictionary<int, string> descriptions, bool includeBos)
    {
        // A complete document (doctype, UTF-8) with Neuronpedia links and the descriptions beside the features.
        var options = new FeatureHtmlOptions { NeuronpediaId = npId, Descriptions = descriptions, IncludeBos = includeBos };
        File.WriteAllText(path, FeatureHtml.TopFeaturesTable(features, tokens, top, options: options));
        Console.Error.WriteLine($"wrote {path}");
    }
}
