using System.Text.Json;
using System.Text.Json.Nodes;

namespace GemmaScope;

/// <summary>
/// What an SAE is for, in SAELens's <c>cfg.json</c> terms. Gemma Scope's params.npz carries only weights, so for npz files
/// the sizes come from the arrays and the rest from <see cref="SaeLoadOptions.Config"/> or the hub catalog.
/// </summary>
public sealed record SaeConfig
{
    /// <summary>Input width (d_in): d_model for residual and MLP SAEs, heads × head_dim for attention SAEs.</summary>
    public int InputSize { get; init; }

    /// <summary>Number of latents (d_sae).</summary>
    public int FeatureCount { get; init; }

    /// <summary>Always "jumprelu" for Gemma Scope.</summary>
    public string Architecture { get; init; } = "jumprelu";

    /// <summary>TransformerLens hook name the SAE reads, e.g. <c>blocks.20.hook_resid_post</c>, if known.</summary>
    public string? HookName { get; init; }

    /// <summary>TransformerLens hook name a transcoder writes (e.g. <c>blocks.20.hook_mlp_out</c>); null for SAEs.</summary>
    public string? OutputHookName { get; init; }

    /// <summary>
    /// <see cref="HookName"/> as a <see cref="HookPoint"/>: null when the name is unknown or not a Gemma hook point.
    /// Setting it sets <see cref="HookName"/> to the point's TransformerLens name.
    /// </summary>
    public HookPoint? Site
    {
        get => HookPoint.TryParse(HookName, out var p) ? p : null;
        init => HookName = value?.Name;
    }

    /// <summary><see cref="OutputHookName"/> as a <see cref="HookPoint"/> (null for SAEs); setting it sets <see cref="OutputHookName"/>.</summary>
    public HookPoint? OutputSite
    {
        get => HookPoint.TryParse(OutputHookName, out var p) ? p : null;
        init => OutputHookName = value?.Name;
    }

    /// <summary>Layer of <see cref="HookName"/>, if known.</summary>
    public int? HookLayer { get; init; }

    /// <summary>Model the SAE was trained on, e.g. <c>gemma-2-2b</c>, if known.</summary>
    public string? ModelName { get; init; }

    /// <summary>Neuronpedia id, e.g. <c>gemma-2-2b/20-gemmascope-res-16k</c>, if known.</summary>
    public string? NeuronpediaId { get; init; }

    /// <summary>Whether b_dec is subtracted from the input before encoding. False for Gemma Scope; true is refused on load.</summary>
    public bool ApplyBDecToInput { get; init; }

    /// <summary>Activation normalisation. "none" for Gemma Scope (the training normalisation is folded into the weights).</summary>
    public string NormalizeActivations { get; init; } = "none";

    /// <summary>Reads the fields SAELens writes to cfg.json; unknown fields are ignored.</summary>
    internal static SaeConfig FromJson(string json, string file)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new Formats.SaeFormatException(file, null, "cfg.json is not valid JSON", null, e.Message, e);
        }

        try
        {
            return Read(node, file);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new Formats.SaeFormatException(file, null, "cfg.json is malformed (duplicate keys?)", null, e.Message, e);
        }
    }

    private static SaeConfig Read(JsonNode? node, string file)
    {
        if (node is not JsonObject o)
        {
            throw new Formats.SaeFormatException(file, null, "cfg.json is not a JSON object");
        }

        // A key that is present with the wrong type is an error, not a silent default.
        string? Str(JsonObject o, string k) => o[k] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out string? s) => s,
            var other => throw WrongType(k, "a string", other),
        };
        int? Int(JsonObject o, string k) => o[k] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out int i) => i,
            var other => throw WrongType(k, "an integer", other),
        };
        bool? Bool(JsonObject o, string k) => o[k] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out bool b) => b,
            var other => throw WrongType(k, "true or false", other),
        };
        Formats.SaeFormatException WrongType(string key, string expected, JsonNode actual) =>
            new(file, "cfg.json " + key, "value has the wrong type", expected, actual.ToJsonString());
        var meta = o["metadata"] as JsonObject;
        return new SaeConfig
        {
            InputSize = Int(o, "d_in") ?? 0,
            FeatureCount = Int(o, "d_sae") ?? 0,
            Architecture = Str(o, "architecture") ?? "jumprelu",
            HookName = Str(o, "hook_name") ?? (meta is null ? null : Str(meta, "hook_name")),
            HookLayer = Int(o, "hook_layer") ?? (meta is null ? null : Int(meta, "hook_layer")),
            ModelName = Str(o, "model_name") ?? (meta is null ? null : Str(meta, "model_name")),
            NeuronpediaId = Str(o, "neuronpedia_id") ?? (meta is null ? null : Str(meta, "neuronpedia_id")),
            ApplyBDecToInput = Bool(o, "apply_b_dec_to_input") ?? false,
            NormalizeActivations = Str(o, "normalize_activations") ?? "none",
        };
    }

    /// <summary>SAELens-style cfg.json text.</summary>
    internal string ToJson(string dtype)
    {
        var o = new JsonObject
        {
            ["architecture"] = Architecture,
            ["d_in"] = InputSize,
            ["d_sae"] = FeatureCount,
            ["dtype"] = dtype,
            ["apply_b_dec_to_input"] = ApplyBDecToInput,
            ["normalize_activations"] = NormalizeActivations,
            ["hook_name"] = HookName,
            ["hook_layer"] = HookLayer,
            ["model_name"] = ModelName,
            ["neuronpedia_id"] = NeuronpediaId,
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Fields of <paramref name="fromFile"/> that are set win over this one's.</summary>
    internal SaeConfig MergedWith(SaeConfig? fromFile) => fromFile is null ? this : this with
    {
        HookName = fromFile.HookName ?? HookName,
        OutputHookName = fromFile.OutputHookName ?? OutputHookName,
        HookLayer = fromFile.HookLayer ?? HookLayer,
        ModelName = fromFile.ModelName ?? ModelName,
        NeuronpediaId = fromFile.NeuronpediaId ?? NeuronpediaId,
        Architecture = fromFile.Architecture,
        ApplyBDecToInput = fromFile.ApplyBDecToInput,
        NormalizeActivations = fromFile.NormalizeActivations,
    };
}
