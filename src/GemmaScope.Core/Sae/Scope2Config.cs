using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using GemmaScope.Formats;

namespace GemmaScope;

/// <summary>
/// Gemma Scope 2's <c>config.json</c> (beside <c>params.safetensors</c>): width, model_name, architecture, l0,
/// affine_connection, type and the Hugging Face module paths the SAE or transcoder reads and writes, mapped to
/// <see cref="HookPoint"/>s.
/// </summary>
internal sealed partial record Scope2Config
{
    public required string File { get; init; }

    public required int Width { get; init; }

    public required string ModelName { get; init; }

    public required bool IsTranscoder { get; init; }

    public required bool AffineConnection { get; init; }

    public required HookPoint HookIn { get; init; }

    public required HookPoint HookOut { get; init; }

    public int Layer => HookIn.Layer;

    public double? L0 { get; init; }

    /// <summary>True when <paramref name="path"/> is a Gemma Scope 2 config.json (not SAELens's cfg.json).</summary>
    public static bool IsScope2ConfigPath(string path) => string.Equals(Path.GetFileName(path), "config.json", StringComparison.Ordinal);

    public static Scope2Config Read(string file)
    {
        JsonObject o;
        try
        {
            o = JsonNode.Parse(System.IO.File.ReadAllText(file)) as JsonObject
                ?? throw new SaeFormatException(file, null, "config.json is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new SaeFormatException(file, null, "config.json is not valid JSON", null, e.Message, e);
        }

        JsonNode Need(string key) => o[key] ?? throw new SaeFormatException(file, "config.json " + key, "required field is missing",
            key, "fields: " + string.Join(", ", o.Select(p => p.Key)));
        SaeFormatException Wrong(string key, string expected, JsonNode? actual) =>
            new(file, "config.json " + key, "value has the wrong type or is not supported", expected, actual?.ToJsonString() ?? "null");
        string Str(string key) => Need(key) is JsonValue v && v.TryGetValue(out string? s) ? s : throw Wrong(key, "a string", o[key]);

        var arch = Str("architecture");
        if (!string.Equals(arch, "jump_relu", StringComparison.Ordinal))
        {
            throw new SaeFormatException(file, "config.json architecture", "only JumpReLU SAEs are supported", "jump_relu", arch);
        }

        var widthNode = Need("width");
        int width = widthNode is JsonValue wv && wv.TryGetValue(out int w) && w > 0 ? w : throw Wrong("width", "a positive integer", widthNode);
        var affNode = Need("affine_connection");
        bool affine = affNode is JsonValue av && av.TryGetValue(out bool a) ? a : throw Wrong("affine_connection", "true or false", affNode);
        var type = Str("type");
        bool transcoder = type switch
        {
            "sae" => false,
            "transcoder" => true,
            _ => throw Wrong("type", "\"sae\" or \"transcoder\"", o["type"]),
        };
        var inPath = Str("hf_hook_point_in");
        var outPath = Str("hf_hook_point_out");
        var inHook = MapHook(file, "hf_hook_point_in", inPath, transcoder, isInput: true);
        var outHook = MapHook(file, "hf_hook_point_out", outPath, transcoder, isInput: false);
        if (inHook.Layer != outHook.Layer)
        {
            throw new SaeFormatException(file, "config.json hf_hook_point_out", "reads and writes different layers", $"layer {inHook.Layer}", outPath);
        }

        if (!transcoder && inHook != outHook)
        {
            throw new SaeFormatException(file, "config.json hf_hook_point_out", "an SAE must write the site it reads", inPath, outPath);
        }

        double? l0 = o["l0"] is JsonValue lv && lv.TryGetValue(out double d) ? d : null;
        return new Scope2Config
        {
            File = file,
            Width = width,
            ModelName = Str("model_name"),
            IsTranscoder = transcoder,
            AffineConnection = affine,
            HookIn = inHook,
            HookOut = outHook,
            L0 = l0,
        };
    }

    /// <summary>
    /// Maps a Hugging Face module path (<c>model.layers.{l}.{module}.{input|output}</c>) to a hook point. Which module
    /// output means what depends on whether a transcoder reads it: the pre-feedforward norm's output is the MLP's input
    /// (<see cref="HookKind.MlpIn"/>, with the norm's gain).
    /// </summary>
    internal static HookPoint MapHook(string file, string field, string hfPath, bool transcoder, bool isInput)
    {
        var m = HfPath().Match(hfPath);
        if (m.Success)
        {
            int layer = int.Parse(m.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture);
            HookKind? kind = m.Groups[2].Value switch
            {
                "" or ".output" => HookKind.ResidPost,
                ".post_feedforward_layernorm.output" => HookKind.MlpOut,
                ".self_attn.o_proj.input" => HookKind.AttnZ,
                ".pre_feedforward_layernorm.output" when transcoder && isInput => HookKind.MlpIn,
                _ => null,
            };
            if (kind is { } k)
            {
                return HookPoint.Create(layer, k);
            }
        }

        throw new SaeFormatException(file, "config.json " + field, "unknown Gemma Scope 2 hook point",
            "model.layers.{l}.output, .post_feedforward_layernorm.output, .self_attn.o_proj.input" + (transcoder && isInput ? ", .pre_feedforward_layernorm.output" : ""),
            hfPath);
    }

    /// <summary>The SAELens-style configuration this file implies.</summary>
    public SaeConfig ToSaeConfig() => new()
    {
        Site = HookIn,
        OutputSite = IsTranscoder ? HookOut : null,
        HookLayer = Layer,
        ModelName = ModelName,
    };

    [GeneratedRegex(@"^model\.layers\.([0-9]{1,4})((?:\.[A-Za-z_]+)*(?:\.input|\.output)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex HfPath();
}
