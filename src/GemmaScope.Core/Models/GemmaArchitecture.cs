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
    // checkpoints (model_type gemma3) write only the text_config fields that differ from them.
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
        ["rope_theta"] = 1_000_000.0,
        ["rope_local_base_freq"] = 10_000.0,
        ["sliding_window"] = 4096,
        ["sliding_window_pattern"] = 6,
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

            double? Cap(string name) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
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

            int window = Int("sliding_window");
            double theta = Num("rope_theta", gemma3 ? null : 10000.0);

            // Gemma 3: global layers use rope_theta with rope_scaling, local (sliding) layers rope_local_base_freq unscaled.
            // Gemma 2: one base for all layers.
            double localTheta = gemma3 ? Num("rope_local_base_freq") : theta;
            double scale = RopeScale(configPath, c);
            var local = new LayerAttention(window, localTheta, gemma3 ? 1.0 : scale);
            double globalScale = scale;
            var global = new LayerAttention(null, theta, globalScale);
            var kinds = new LayerAttention[layers];
            if (c.TryGetProperty("layer_types", out var lt) && lt.ValueKind == JsonValueKind.Array)
            {
                if (lt.GetArrayLength() != layers)
                {
                    throw new CheckpointFormatException(configPath, "layer_types", "layer_types must list every layer", $"{layers} entries", $"{lt.GetArrayLength()}");
                }

                int l = 0;
                foreach (var e in lt.EnumerateArray())
                {
                    kinds[l] = e.GetString() switch
                    {
                        "sliding_attention" => local,
                        "full_attention" => global,
                        var other => throw new CheckpointFormatException(configPath, $"layer_types[{l}]", "unknown layer type", "\"sliding_attention\" or \"full_attention\"", $"\"{other}\""),
                    };
                    l++;
                }
            }
            else if (gemma3)
            {
                // Hugging Face Gemma 3 without layer_types: layer i is global when (i + 1) % sliding_window_pattern == 0.
                int pattern = c.TryGetProperty("sliding_window_pattern", out _) ? Int("sliding_window_pattern")
                    : c.TryGetProperty("_sliding_window_pattern", out _) ? Int("_sliding_window_pattern")
                    : (int)Gemma3Defaults["sliding_window_pattern"];
                for (int l = 0; l < layers; l++)
                {
                    kinds[l] = (l + 1) % pattern == 0 ? global : local;
                }
            }
            else
            {
                // Hugging Face Gemma 2: is_sliding = not layer_idx % 2 (even layers slide).
                for (int l = 0; l < layers; l++)
                {
                    kinds[l] = l % 2 == 0 ? local : global;
                }
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
                AttnSoftcap = Cap("attn_logit_softcapping"),
                FinalSoftcap = Cap("final_logit_softcapping"),
                QkNorm = gemma3,
                LayerKinds = kinds,
                TextWeightPrefixes = textPrefixes,
                TorchDType = c.TryGetProperty("torch_dtype", out var td) && td.ValueKind == JsonValueKind.String ? td.GetString() : null,
                BosId = OptInt("bos_token_id", 2),
                PadId = OptInt("pad_token_id", 0),
            };
        }
    }

    // rope_scaling: null (or rope_type "default") → 1; "linear" → its factor (Hugging Face divides inv_freq by it, i.e. the
    // positions). Other types (dynamic, yarn, llama3, longrope) change the frequencies per band: refused, not approximated.
    private static double RopeScale(string configPath, JsonElement c)
    {
        if (!c.TryGetProperty("rope_scaling", out var rs) || rs.ValueKind == JsonValueKind.Null)
        {
            return 1.0;
        }

        if (rs.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointFormatException(configPath, "rope_scaling", "rope_scaling must be null or an object", "{\"rope_type\": \"linear\", \"factor\": …}", rs.GetRawText());
        }

        string type = rs.TryGetProperty("rope_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : rs.TryGetProperty("type", out var t2) && t2.ValueKind == JsonValueKind.String ? t2.GetString()! : "(none)";
        switch (type)
        {
            case "default":
                return 1.0;
            case "linear":
                if (rs.TryGetProperty("factor", out var f) && f.ValueKind == JsonValueKind.Number && f.GetDouble() > 0)
                {
                    return f.GetDouble();
                }

                throw new CheckpointFormatException(configPath, "rope_scaling.factor", "linear rope_scaling needs a positive factor", "a positive number",
                    f.ValueKind == JsonValueKind.Undefined ? "missing" : f.GetRawText());
            default:
                throw new CheckpointFormatException(configPath, "rope_scaling.rope_type", "unsupported RoPE scaling: GemmaModel.FromPretrained builds \"linear\" scaling (Gemma 3) or none",
                    "\"linear\", \"default\" or null", $"\"{type}\"");
        }
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
