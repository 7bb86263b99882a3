using System.Globalization;
using System.Text.Json;
using GemmaScope.Formats;

namespace GemmaScope.Models;

/// <summary>How one decoder layer attends: its window (null = global), its RoPE base and its RoPE position scale.</summary>
/// <param name="SlidingWindow">Keys within this many positions of the query (itself included), or null for global attention.</param>
/// <param name="RopeTheta">RoPE base frequency of this layer.</param>
/// <param name="RopePositionScale">Positions are divided by this (linear <c>rope_scaling</c>: its factor; 1 otherwise).</param>
public sealed record LayerAttention(int? SlidingWindow, double RopeTheta, double RopePositionScale = 1.0);

/// <summary>
/// The shape of a Gemma 2 or Gemma 3 decoder, read from a Hugging Face <c>config.json</c>. Model engines read only this
/// record, never model-type literals: Gemma 3 (<c>gemma3_text</c>, or the text part of <c>gemma3</c>) differs from Gemma 2 only by
/// the flags and per-layer values <see cref="FromConfig"/> sets: QK-norm, per-layer window and RoPE base/scale
/// (local layers rope_local_base_freq, global ones rope_theta with linear rope_scaling), no soft-caps, and the
/// tensor-name prefix of image-text checkpoints. Immutable.
/// </summary>
public sealed record GemmaArchitecture
{
    /// <summary>The <c>model_type</c> values this version builds.</summary>
    internal static readonly string[] Supported = ["gemma2", "gemma3_text", "gemma3"];

    // Gemma3TextConfig's defaults (transformers), which apply to fields a Gemma 3 config.json omits: the image-text
    // checkpoints (model_type gemma3) write only the text_config fields that differ from them. (RoPE and layer-type
    // defaults live in ReadRope and ReadLayerTypes.)
    private static readonly Dictionary<string, double> Gemma3Defaults = new(StringComparer.Ordinal)
    {
        ["vocab_size"] = 262_208,
        ["hidden_size"] = 2304,
        ["intermediate_size"] = 9216,
        ["num_hidden_layers"] = 26,
        ["num_attention_heads"] = 8,
        ["num_key_value_heads"] = 4,
        ["head_dim"] = 256,
        ["query_pre_attn_scalar"] = 256,
        ["rms_norm_eps"] = 1e-6,
        ["sliding_window"] = 4096,
    };

    /// <summary>
    /// Prefixes under which an image-text (<c>gemma3</c>) checkpoint stores the text model's <c>model.*</c> tensors:
    /// <c>language_model.model.*</c>, or <c>model.language_model.*</c> as newer transformers versions save them. Empty
    /// for text-only checkpoints. Tensors under other prefixes (vision_tower, multi_modal_projector) are never read.
    /// </summary>
    public IReadOnlyList<string> TextWeightPrefixes { get; init; } = [];

    /// <summary>The name the forward reads a stored tensor by (<c>model.…</c>), or null when it is not a text-model tensor.</summary>
    public string? CanonicalTensorName(string stored)
    {
        if (TextWeightPrefixes.Count == 0)
        {
            return stored;
        }

        foreach (var prefix in TextWeightPrefixes)
        {
            if (stored.StartsWith(prefix, StringComparison.Ordinal))
            {
                return string.Concat("model.", stored.AsSpan(prefix.Length));
            }
        }

        return null;
    }

    /// <summary>The config's <c>model_type</c>: <c>gemma2</c>, <c>gemma3_text</c> or <c>gemma3</c> (image-text; its text model).</summary>
    public required string ModelType { get; init; }

    /// <summary>Vocabulary size (rows of the embedding and of the logits).</summary>
    public required int Vocab { get; init; }

    /// <summary>Residual stream width (<c>hidden_size</c>).</summary>
    public required int DModel { get; init; }

    /// <summary>MLP hidden width (<c>intermediate_size</c>).</summary>
    public required int DFf { get; init; }

    /// <summary>Number of decoder layers.</summary>
    public required int Layers { get; init; }

    /// <summary>Query heads.</summary>
    public required int Heads { get; init; }

    /// <summary>Key/value heads (grouped-query attention: <see cref="Heads"/> is a multiple of it).</summary>
    public required int KvHeads { get; init; }

    /// <summary>Width of one attention head (even: RoPE rotates pairs).</summary>
    public required int HeadDim { get; init; }

    /// <summary>Scores are multiplied by <c>query_pre_attn_scalar^-1/2</c>.</summary>
    public required double QueryPreAttnScalar { get; init; }

    /// <summary>RMSNorm epsilon (<c>rms_norm_eps</c>).</summary>
    public required double RmsNormEps { get; init; }

    /// <summary><c>tanh(s / cap) · cap</c> on attention scores; null when the model has none (Gemma 3).</summary>
    public required double? AttnSoftcap { get; init; }

    /// <summary><c>tanh(l / cap) · cap</c> on logits; null when the model has none (Gemma 3).</summary>
    public required double? FinalSoftcap { get; init; }

    /// <summary>Per-head RMSNorm of q and k before RoPE (Gemma 3); false for Gemma 2.</summary>
    public bool QkNorm { get; init; }

    /// <summary>Per layer: window, RoPE base and RoPE position scale; <see cref="Layers"/> entries.</summary>
    public required IReadOnlyList<LayerAttention> LayerKinds { get; init; }

    /// <summary>The checkpoint's <c>torch_dtype</c> as written (informational; each tensor's own dtype is what is read).</summary>
    public string? TorchDType { get; init; }

    /// <summary>Beginning-of-sequence token id from the config (Gemma: pad 0, eos 1, bos 2).</summary>
    public int BosId { get; init; } = 2;

    /// <summary>Padding token id from the config (Gemma: 0).</summary>
    public int PadId { get; init; }

    /// <summary>Reads and checks <c>config.json</c>.</summary>
    /// <param name="configPath">Path of the checkpoint's <c>config.json</c>.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">Unsupported model type, missing or non-numeric field, inconsistent sizes.</exception>
    public static GemmaArchitecture FromConfig(string configPath)
    {
        if (!File.Exists(configPath))
        {
            throw new FileNotFoundException($"'{configPath}' does not exist: a Hugging Face checkpoint folder needs config.json.", configPath);
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(configPath, null, "config.json is not valid JSON", null, e.Message, e);
        }

        using (doc)
        {
            var c = doc.RootElement;
            if (c.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(configPath, null, "config.json is not a JSON object");
            }

            string modelType = c.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : "(none)";
            if (!Supported.Contains(modelType))
            {
                throw new CheckpointFormatException(configPath, "model_type", "unsupported model type: GemmaModel.FromPretrained builds Gemma 2 and Gemma 3 (text) graphs",
                    string.Join(" or ", Supported.Select(s => $"\"{s}\"")), $"\"{modelType}\"");
            }

            string[] textPrefixes = [];
            if (modelType == "gemma3")
            {
                // Image-text checkpoint: the language model's config is text_config; its weights sit under a prefix.
                if (!c.TryGetProperty("text_config", out var tc) || tc.ValueKind != JsonValueKind.Object)
                {
                    throw new CheckpointFormatException(configPath, "text_config", "a gemma3 (image-text) config.json needs a text_config object", "{...}", "missing");
                }

                c = tc;
                textPrefixes = ["language_model.model.", "model.language_model."];
            }

            bool gemma3 = modelType is "gemma3" or "gemma3_text";
            double? Default(string name) => gemma3 && Gemma3Defaults.TryGetValue(name, out var d) ? d : null;

            int Int(string name)
            {
                if (c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i > 0)
                {
                    return i;
                }

                return v.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null && Default(name) is { } d
                    ? (int)d
                    : throw new CheckpointFormatException(configPath, name, "config.json field is missing or not a positive integer", "a positive integer", v.ValueKind == JsonValueKind.Undefined ? "missing" : v.GetRawText());
            }

            double Num(string name, double? fallback = null)
            {
                if (c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number)
                {
                    return v.GetDouble();
                }

                return fallback ?? Default(name) ?? throw new CheckpointFormatException(configPath, name, "config.json field is missing or not a number", "a number", v.ValueKind == JsonValueKind.Undefined ? "missing" : v.GetRawText());
            }

            // Missing: the config class's default (Gemma2Config 50 / 30, Gemma3TextConfig none); null: no cap.
            double? Cap(string name, double? missing)
            {
                if (!c.TryGetProperty(name, out var v))
                {
                    return missing;
                }

                return v.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.Number when v.GetDouble() > 0 => v.GetDouble(),
                    _ => throw new CheckpointFormatException(configPath, name, "a soft-cap must be a positive number or null", "a positive number or null", v.GetRawText()),
                };
            }
            int OptInt(string name, int fallback) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : fallback;

            int layers = Int("num_hidden_layers");
            int heads = Int("num_attention_heads");
            int kv = Int("num_key_value_heads");
            if (heads % kv != 0)
            {
                throw new CheckpointFormatException(configPath, "num_key_value_heads", "query heads must be a multiple of key/value heads", $"a divisor of {heads}", kv.ToString(CultureInfo.InvariantCulture));
            }

            int headDim = Int("head_dim");
            if (headDim % 2 != 0)
            {
                throw new CheckpointFormatException(configPath, "head_dim", "RoPE needs an even head_dim", "even", headDim.ToString(CultureInfo.InvariantCulture));
            }

            if (c.TryGetProperty("hidden_activation", out var act) && act.ValueKind == JsonValueKind.String && act.GetString() != "gelu_pytorch_tanh")
            {
                throw new CheckpointFormatException(configPath, "hidden_activation", "unsupported activation", "\"gelu_pytorch_tanh\"", $"\"{act.GetString()}\"");
            }

            // EmbeddingGemma (gemma3_text with bidirectional attention) and biased projections are other forwards: refused.
            foreach (var flag in new[] { "use_bidirectional_attention", "attention_bias" })
            {
                if (c.TryGetProperty(flag, out var f) && f.ValueKind == JsonValueKind.True)
                {
                    throw new CheckpointFormatException(configPath, flag, $"unsupported: GemmaModel.FromPretrained builds causal Gemma decoders without projection biases", "false", "true");
                }
            }

            if (c.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.False)
            {
                throw new CheckpointFormatException(configPath, "tie_word_embeddings", "untied embeddings are not supported (Gemma ties the LM head to the embedding)", "true", "false");
            }

            RefuseUnsupported(configPath, c);
            var (localRope, globalRope) = ReadRope(configPath, c, gemma3);
            var sliding = ReadLayerTypes(configPath, c, gemma3, layers);
            int? window = null;
            if (Array.IndexOf(sliding, true) >= 0)
            {
                // Gemma2Config allows sliding_window null; with sliding layers that is no forward we can build.
                window = Int("sliding_window");
            }

            var local = new LayerAttention(window, localRope.Theta, localRope.Scale);
            var global = new LayerAttention(null, globalRope.Theta, globalRope.Scale);
            var kinds = new LayerAttention[layers];
            for (int l = 0; l < layers; l++)
            {
                kinds[l] = sliding[l] ? local : global;
            }

            return new GemmaArchitecture
            {
                ModelType = modelType,
                Vocab = Int("vocab_size"),
                DModel = Int("hidden_size"),
                DFf = Int("intermediate_size"),
                Layers = layers,
                Heads = heads,
                KvHeads = kv,
                HeadDim = headDim,
                QueryPreAttnScalar = Num("query_pre_attn_scalar"),
                RmsNormEps = Num("rms_norm_eps", 1e-6),
                AttnSoftcap = Cap("attn_logit_softcapping", gemma3 ? null : 50.0),
                FinalSoftcap = Cap("final_logit_softcapping", gemma3 ? null : 30.0),
                QkNorm = gemma3,
                LayerKinds = kinds,
                TextWeightPrefixes = textPrefixes,
                TorchDType = ReadDType(configPath, c, doc.RootElement),
                BosId = OptInt("bos_token_id", 2),
                PadId = OptInt("pad_token_id", 0),
            };
        }
    }

    // Every field Gemma2Config / Gemma3TextConfig (transformers 4.x and 5.x) and PretrainedConfig write, and what FromConfig
    // does with it. "Ignored" means it cannot change the forward's activations or logits.
    //
    // | field                                   | 4.x | 5.x | handling                                                          |
    // |-----------------------------------------|-----|-----|-------------------------------------------------------------------|
    // | model_type, text_config (gemma3)        |  ✓  |  ✓  | read; other model types refused                                   |
    // | vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim | ✓ | ✓ | read (checked against the tensors) |
    // | query_pre_attn_scalar, rms_norm_eps     |  ✓  |  ✓  | read                                                              |
    // | attn_logit_softcapping, final_logit_softcapping | ✓ | ✓ | read; missing = the class default (Gemma 2: 50 / 30; Gemma 3: none), null = none |
    // | hidden_activation                       |  ✓  |  ✓  | read; anything but gelu_pytorch_tanh refused                      |
    // | hidden_act                              |  ✓  |     | ignored: Gemma2MLP/Gemma3MLP read hidden_activation only          |
    // | rope_theta                              |  ✓  |     | read (global layers; Gemma 2: all layers)                         |
    // | rope_local_base_freq (Gemma 3)          |  ✓  |     | read (sliding layers)                                             |
    // | rope_scaling (Gemma 3: global layers)   |  ✓  |     | read: default or linear; other rope_type refused                  |
    // | rope_parameters                         |     |  ✓  | read: Gemma 2 one dict, Gemma 3 one per layer type; default or linear, other rope_type or partial_rotary_factor ≠ 1 refused; disagreement with the 4.x fields refused |
    // | layer_types                             | 4.53+| ✓  | read                                                              |
    // | sliding_window_pattern, _sliding_window_pattern | ✓ | ✓ | read when layer_types is missing; must agree with layer_types and each other |
    // | sliding_window                          |  ✓  |  ✓  | read (may be null only when no layer slides)                      |
    // | use_bidirectional_attention             |     |  ✓  | null/false read; true (EmbeddingGemma) refused                    |
    // | attention_bias                          |  ✓  |  ✓  | false read; true refused                                          |
    // | tie_word_embeddings                     |  ✓  |  ✓  | true read; false refused                                          |
    // | torch_dtype / dtype                     |  ✓  |  ✓  | read (informational: each tensor's own dtype is what is read); disagreement refused |
    // | bos_token_id, pad_token_id              |  ✓  |  ✓  | read                                                              |
    // | quantization_config                     |  ✓  |  ✓  | refused (quantised weights are another forward)                   |
    // | pruned_heads (non-empty)                |  ✓  |  ✓  | refused                                                           |
    // | eos_token_id, max_position_embeddings, attention_dropout, initializer_range, use_cache, cache_implementation, architectures, transformers_version, attn_implementation, output_attentions, output_hidden_states, return_dict, torchscript, id2label, label2id, problem_type, task_specific_params, generation settings (max_length, temperature, …), vision_config and image-token fields of gemma3 | ✓ | ✓ | ignored: none changes the forward (dropout is off at inference; linear/default RoPE does not read max_position_embeddings) |

    // The RoPE of one kind of layer: base frequency and linear position scale (positions / Scale).
    private readonly record struct RopeKind(double Theta, double Scale);

    // transformers 5 keys rope_parameters by these for models with layer_types (Gemma 3).
    private static readonly string[] RopeLayerTypes = ["full_attention", "sliding_attention"];

    private static void RefuseUnsupported(string configPath, JsonElement c)
    {
        if (c.TryGetProperty("quantization_config", out var q) && q.ValueKind != JsonValueKind.Null)
        {
            throw new CheckpointFormatException(configPath, "quantization_config", "quantised checkpoints are not supported: GemmaModel.FromPretrained reads float32, bfloat16 or float16 weights",
                "absent or null", q.GetRawText());
        }

        if (c.TryGetProperty("pruned_heads", out var ph) && ph.ValueKind == JsonValueKind.Object && ph.EnumerateObject().Any())
        {
            throw new CheckpointFormatException(configPath, "pruned_heads", "checkpoints with pruned attention heads are not supported", "{}", ph.GetRawText());
        }
    }

    // The 4.x spelling (rope_theta, rope_local_base_freq, rope_scaling) and the 5.x one (rope_parameters) are both read;
    // where both give a value they must agree. Gemma 2: one RoPE for every layer. Gemma 3: global layers rope_theta with
    // rope_scaling, sliding layers rope_local_base_freq unscaled (4.x), or each layer type its own dict (5.x).
    private static (RopeKind Local, RopeKind Global) ReadRope(string configPath, JsonElement c, bool gemma3)
    {
        double? theta4 = OptionalNumber(configPath, c, "rope_theta");
        double? local4 = gemma3 ? OptionalNumber(configPath, c, "rope_local_base_freq") : null;
        double? scale4 = null;
        if (c.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind != JsonValueKind.Null)
        {
            scale4 = ParseRope(configPath, "rope_scaling", rs).Scale;
        }

        (double? Theta, double? Scale) full = (null, null), slide = (null, null);
        if (c.TryGetProperty("rope_parameters", out var rp) && rp.ValueKind != JsonValueKind.Null)
        {
            if (rp.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(configPath, "rope_parameters", "rope_parameters must be an object", "{\"rope_type\": …, \"rope_theta\": …}", rp.GetRawText());
            }

            bool perType = false;
            foreach (var p in rp.EnumerateObject())
            {
                perType |= p.Value.ValueKind == JsonValueKind.Object;
            }

            if (!gemma3 && perType)
            {
                throw new CheckpointFormatException(configPath, "rope_parameters", "Gemma 2 takes one RoPE dict for every layer, not one per layer type",
                    "{\"rope_type\": …, \"rope_theta\": …}", rp.GetRawText());
            }

            if (gemma3 && !perType)
            {
                throw new CheckpointFormatException(configPath, "rope_parameters", "Gemma 3 takes one RoPE dict per layer type (transformers 5)",
                    "{\"full_attention\": {…}, \"sliding_attention\": {…}}", rp.GetRawText());
            }

            if (!gemma3)
            {
                var (t, s) = ParseRope(configPath, "rope_parameters", rp);
                full = slide = (t, s);
            }
            else
            {
                foreach (var p in rp.EnumerateObject())
                {
                    if (Array.IndexOf(RopeLayerTypes, p.Name) < 0)
                    {
                        throw new CheckpointFormatException(configPath, $"rope_parameters.{p.Name}", "unknown layer type in rope_parameters",
                            "\"full_attention\" or \"sliding_attention\"", $"\"{p.Name}\"");
                    }

                    var (t, s) = ParseRope(configPath, $"rope_parameters.{p.Name}", p.Value);
                    if (p.Name == "full_attention")
                    {
                        full = (t, s);
                    }
                    else
                    {
                        slide = (t, s);
                    }
                }
            }
        }

        var global = new RopeKind(
            Agree(configPath, "rope_theta", theta4, gemma3 ? "rope_parameters.full_attention.rope_theta" : "rope_parameters.rope_theta", full.Theta) ?? (gemma3 ? 1_000_000.0 : 10_000.0),
            Agree(configPath, "rope_scaling", scale4, gemma3 ? "rope_parameters.full_attention" : "rope_parameters", full.Scale) ?? 1.0);
        if (!gemma3)
        {
            return (global, global);
        }

        var local = new RopeKind(
            Agree(configPath, "rope_local_base_freq", local4, "rope_parameters.sliding_attention.rope_theta", slide.Theta) ?? 10_000.0,
            slide.Scale ?? 1.0);
        return (local, global);
    }

    // One RoPE dict (4.x rope_scaling, or a 5.x rope_parameters entry): its base (null when it names none) and its linear
    // position scale. "default" → 1; "linear" → factor (Hugging Face divides inv_freq by it, i.e. the positions). Other
    // types (dynamic, yarn, llama3, longrope, …) change the frequencies per band: refused, never approximated or ignored.
    private static (double? Theta, double Scale) ParseRope(string configPath, string field, JsonElement rope)
    {
        if (rope.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointFormatException(configPath, field, $"{field} must be an object", "{\"rope_type\": \"default\" or \"linear\", …}", rope.GetRawText());
        }

        string? type = rope.TryGetProperty("rope_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()
            : rope.TryGetProperty("type", out var t2) && t2.ValueKind == JsonValueKind.String ? t2.GetString() : null;
        bool hasFactor = rope.TryGetProperty("factor", out var f) && f.ValueKind != JsonValueKind.Null;
        double? theta = OptionalNumber(configPath, rope, "rope_theta", field + ".");
        if (OptionalNumber(configPath, rope, "partial_rotary_factor", field + ".") is { } partial && partial != 1.0)
        {
            throw new CheckpointFormatException(configPath, field + ".partial_rotary_factor", "partial rotary embeddings are not supported: Gemma rotates every dimension of a head",
                "1 or absent", partial.ToString("R", CultureInfo.InvariantCulture));
        }

        switch (type)
        {
            case "default":
            case null when !hasFactor:
                return (theta, 1.0);
            case "linear":
                if (hasFactor && f.ValueKind == JsonValueKind.Number && f.GetDouble() > 0)
                {
                    return (theta, f.GetDouble());
                }

                throw new CheckpointFormatException(configPath, field + ".factor", "linear RoPE scaling needs a positive factor", "a positive number",
                    hasFactor ? f.GetRawText() : "missing");
            default:
                throw new CheckpointFormatException(configPath, field + ".rope_type", "unsupported RoPE type: GemmaModel.FromPretrained builds \"default\" and \"linear\" RoPE only (yarn, dynamic, llama3, longrope… change the frequencies per band)",
                    "\"default\" or \"linear\"", type is null ? "missing (with a factor)" : $"\"{type}\"");
        }
    }

    // A field both spellings can carry: when both do, they must agree (same value to a relative 1e-12).
    private static double? Agree(string configPath, string oldName, double? oldValue, string newName, double? newValue)
    {
        if (oldValue is { } a && newValue is { } b && Math.Abs(a - b) > 1e-12 * Math.Max(Math.Abs(a), Math.Abs(b)))
        {
            string A = a.ToString("R", CultureInfo.InvariantCulture), B = b.ToString("R", CultureInfo.InvariantCulture);
            throw new CheckpointFormatException(configPath, $"{oldName} / {newName}",
                $"the transformers 4 field {oldName} = {A} and the transformers 5 field {newName} = {B} disagree: which one the checkpoint was trained with is unknown; remove the wrong one",
                $"{oldName} = {B} or absent", A);
        }

        return newValue ?? oldValue;
    }

    private static double? OptionalNumber(string configPath, JsonElement obj, string name, string prefix = "")
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.Number && v.GetDouble() > 0 ? v.GetDouble()
            : throw new CheckpointFormatException(configPath, prefix + name, "must be a positive number", "a positive number", v.GetRawText());
    }

    // Which layers slide. layer_types (4.53+, always in 5.x) when present; else the pattern (layer l is global when
    // (l + 1) % pattern == 0: 6 for Gemma 3, 2 for Gemma 2, whose even layers slide). When several are given they must agree.
    private static bool[] ReadLayerTypes(string configPath, JsonElement c, bool gemma3, int layers)
    {
        int? pattern = null;
        string? patternField = null;
        foreach (var name in new[] { "sliding_window_pattern", "_sliding_window_pattern" })
        {
            if (!c.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int p) || p <= 0)
            {
                throw new CheckpointFormatException(configPath, name, "must be a positive integer", "a positive integer", v.GetRawText());
            }

            if (pattern is { } other && other != p)
            {
                throw new CheckpointFormatException(configPath, $"{patternField} / {name}", $"{patternField} = {other} and {name} = {p} disagree", $"{name} = {other}", p.ToString(CultureInfo.InvariantCulture));
            }

            pattern = p;
            patternField = name;
        }

        bool[]? fromTypes = null;
        if (c.TryGetProperty("layer_types", out var lt) && lt.ValueKind != JsonValueKind.Null)
        {
            if (lt.ValueKind != JsonValueKind.Array || lt.GetArrayLength() != layers)
            {
                throw new CheckpointFormatException(configPath, "layer_types", "layer_types must list every layer", $"{layers} entries",
                    lt.ValueKind == JsonValueKind.Array ? $"{lt.GetArrayLength()}" : lt.GetRawText());
            }

            fromTypes = new bool[layers];
            int l = 0;
            foreach (var e in lt.EnumerateArray())
            {
                fromTypes[l] = (e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText()) switch
                {
                    "sliding_attention" => true,
                    "full_attention" => false,
                    var other => throw new CheckpointFormatException(configPath, $"layer_types[{l}]", "unknown layer type", "\"sliding_attention\" or \"full_attention\"", $"\"{other}\""),
                };
                l++;
            }
        }

        var fromPattern = new bool[layers];
        int used = pattern ?? (gemma3 ? 6 : 2);
        for (int l = 0; l < layers; l++)
        {
            fromPattern[l] = (l + 1) % used != 0;
        }

        if (fromTypes is null)
        {
            return fromPattern;
        }

        if (pattern is not null)
        {
            for (int l = 0; l < layers; l++)
            {
                if (fromTypes[l] != fromPattern[l])
                {
                    throw new CheckpointFormatException(configPath, $"layer_types / {patternField}",
                        $"layer_types says layer {l} is {(fromTypes[l] ? "sliding" : "full")} attention, {patternField} = {pattern} says {(fromPattern[l] ? "sliding" : "full")}",
                        $"{patternField} consistent with layer_types, or absent", pattern.Value.ToString(CultureInfo.InvariantCulture));
                }
            }
        }

        return fromTypes;
    }

    // torch_dtype (4.x) or dtype (5.x); an image-text config may carry it outside text_config.
    private static string? ReadDType(string configPath, JsonElement c, JsonElement root)
    {
        string? Str(JsonElement o, string name) => o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        string? old = Str(c, "torch_dtype") ?? Str(root, "torch_dtype");
        string? now = Str(c, "dtype") ?? Str(root, "dtype");
        if (old is not null && now is not null && old != now)
        {
            throw new CheckpointFormatException(configPath, "torch_dtype / dtype", $"torch_dtype = \"{old}\" and dtype = \"{now}\" disagree", $"torch_dtype = \"{now}\" or absent", $"\"{old}\"");
        }

        return now ?? old;
    }

    /// <summary>
    /// Every weight the forward reads, by canonical (Gemma 2 style, <c>model.…</c>) name, with the shape this configuration
    /// implies ([out, in] for projections), in checkpoint order: embedding, layers, final norm.
    /// </summary>
    public IEnumerable<(string Name, long[] Shape)> ExpectedTensors()
    {
        long d = DModel, q = (long)Heads * HeadDim, kv = (long)KvHeads * HeadDim;
        yield return ("model.embed_tokens.weight", [Vocab, d]);
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return (p + "input_layernorm.weight", [d]);
            yield return (p + "post_attention_layernorm.weight", [d]);
            yield return (p + "pre_feedforward_layernorm.weight", [d]);
            yield return (p + "post_feedforward_layernorm.weight", [d]);
            yield return (p + "self_attn.q_proj.weight", [q, d]);
            yield return (p + "self_attn.k_proj.weight", [kv, d]);
            yield return (p + "self_attn.v_proj.weight", [kv, d]);
            yield return (p + "self_attn.o_proj.weight", [d, q]);
            if (QkNorm)
            {
                yield return (p + "self_attn.q_norm.weight", [HeadDim]);
                yield return (p + "self_attn.k_norm.weight", [HeadDim]);
            }

            yield return (p + "mlp.gate_proj.weight", [DFf, d]);
            yield return (p + "mlp.up_proj.weight", [DFf, d]);
            yield return (p + "mlp.down_proj.weight", [d, DFf]);
        }

        yield return ("model.norm.weight", [d]);
    }
}
