using System.Globalization;
using System.Text.Json;
using GemmaScope.Formats;

namespace GemmaScope.Onnx.Building;

/// <summary>How one decoder layer attends: its window (null = global) and its RoPE base.</summary>
/// <param name="SlidingWindow">Keys within this many positions of the query (itself included), or null for global attention.</param>
/// <param name="RopeTheta">RoPE base frequency of this layer.</param>
internal sealed record LayerAttention(int? SlidingWindow, double RopeTheta);

/// <summary>
/// Everything the graph builder needs, read from a Hugging Face <c>config.json</c>. The builder reads only this record,
/// never model-type literals, so another family member (Gemma 3's QK-norm, 5 local : 1 global layers, two RoPE bases,
/// no soft-caps) is a new <see cref="FromConfig"/> branch plus the flags it sets. Immutable.
/// </summary>
internal sealed record GemmaArchitecture
{
    /// <summary>The <c>model_type</c> values this version builds.</summary>
    public static readonly string[] Supported = ["gemma2"];

    public required string ModelType { get; init; }

    public required int Vocab { get; init; }

    public required int DModel { get; init; }

    public required int DFf { get; init; }

    public required int Layers { get; init; }

    public required int Heads { get; init; }

    public required int KvHeads { get; init; }

    public required int HeadDim { get; init; }

    /// <summary>Scores are multiplied by <c>query_pre_attn_scalar^-1/2</c>.</summary>
    public required double QueryPreAttnScalar { get; init; }

    public required double RmsNormEps { get; init; }

    /// <summary><c>tanh(s / cap) · cap</c> on attention scores; null when the model has none (Gemma 3).</summary>
    public required double? AttnSoftcap { get; init; }

    /// <summary><c>tanh(l / cap) · cap</c> on logits; null when the model has none (Gemma 3).</summary>
    public required double? FinalSoftcap { get; init; }

    /// <summary>Per-head RMSNorm of q and k before RoPE (Gemma 3); false for Gemma 2.</summary>
    public bool QkNorm { get; init; }

    /// <summary>Per layer: window and RoPE base.</summary>
    public required LayerAttention[] LayerKinds { get; init; }

    /// <summary>The checkpoint's <c>torch_dtype</c> as written (informational; each tensor's own dtype is what is read).</summary>
    public string? TorchDType { get; init; }

    /// <summary>Token ids from the config (Gemma: pad 0, eos 1, bos 2).</summary>
    public int BosId { get; init; } = 2;

    public int PadId { get; init; }

    /// <summary>Reads and checks <c>config.json</c>.</summary>
    /// <exception cref="SaeFormatException">Unsupported model type, missing or non-numeric field, inconsistent sizes.</exception>
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
            throw new SaeFormatException(configPath, null, "config.json is not valid JSON", null, e.Message, e);
        }

        using (doc)
        {
            var c = doc.RootElement;
            if (c.ValueKind != JsonValueKind.Object)
            {
                throw new SaeFormatException(configPath, null, "config.json is not a JSON object");
            }

            string modelType = c.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : "(none)";
            if (!Supported.Contains(modelType))
            {
                throw new SaeFormatException(configPath, "model_type", "unsupported model type: GemmaModel.FromPretrained builds Gemma 2 graphs",
                    string.Join(" or ", Supported.Select(s => $"\"{s}\"")), $"\"{modelType}\"");
            }

            int Int(string name) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) && i > 0
                ? i
                : throw new SaeFormatException(configPath, name, "config.json field is missing or not a positive integer", "a positive integer", v.ValueKind == JsonValueKind.Undefined ? "missing" : v.GetRawText());
            double Num(string name, double? fallback = null)
            {
                if (c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number)
                {
                    return v.GetDouble();
                }

                return fallback ?? throw new SaeFormatException(configPath, name, "config.json field is missing or not a number", "a number", v.ValueKind == JsonValueKind.Undefined ? "missing" : v.GetRawText());
            }

            double? Cap(string name) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
            int OptInt(string name, int fallback) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : fallback;

            int layers = Int("num_hidden_layers");
            int heads = Int("num_attention_heads");
            int kv = Int("num_key_value_heads");
            if (heads % kv != 0)
            {
                throw new SaeFormatException(configPath, "num_key_value_heads", "query heads must be a multiple of key/value heads", $"a divisor of {heads}", kv.ToString(CultureInfo.InvariantCulture));
            }

            int headDim = Int("head_dim");
            if (headDim % 2 != 0)
            {
                throw new SaeFormatException(configPath, "head_dim", "RoPE needs an even head_dim", "even", headDim.ToString(CultureInfo.InvariantCulture));
            }

            if (c.TryGetProperty("hidden_activation", out var act) && act.ValueKind == JsonValueKind.String && act.GetString() != "gelu_pytorch_tanh")
            {
                throw new SaeFormatException(configPath, "hidden_activation", "unsupported activation", "\"gelu_pytorch_tanh\"", $"\"{act.GetString()}\"");
            }

            if (c.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.False)
            {
                throw new SaeFormatException(configPath, "tie_word_embeddings", "untied embeddings are not supported (Gemma ties the LM head to the embedding)", "true", "false");
            }

            int window = Int("sliding_window");
            double theta = Num("rope_theta", 10000.0);
            var kinds = new LayerAttention[layers];
            if (c.TryGetProperty("layer_types", out var lt) && lt.ValueKind == JsonValueKind.Array)
            {
                if (lt.GetArrayLength() != layers)
                {
                    throw new SaeFormatException(configPath, "layer_types", "layer_types must list every layer", $"{layers} entries", $"{lt.GetArrayLength()}");
                }

                int l = 0;
                foreach (var e in lt.EnumerateArray())
                {
                    kinds[l] = e.GetString() switch
                    {
                        "sliding_attention" => new LayerAttention(window, theta),
                        "full_attention" => new LayerAttention(null, theta),
                        var other => throw new SaeFormatException(configPath, $"layer_types[{l}]", "unknown layer type", "\"sliding_attention\" or \"full_attention\"", $"\"{other}\""),
                    };
                    l++;
                }
            }
            else
            {
                // Hugging Face Gemma 2: is_sliding = not layer_idx % 2 (even layers slide).
                for (int l = 0; l < layers; l++)
                {
                    kinds[l] = new LayerAttention(l % 2 == 0 ? window : null, theta);
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
                LayerKinds = kinds,
                TorchDType = c.TryGetProperty("torch_dtype", out var td) && td.ValueKind == JsonValueKind.String ? td.GetString() : null,
                BosId = OptInt("bos_token_id", 2),
                PadId = OptInt("pad_token_id", 0),
            };
        }
    }

    /// <summary>Every weight the forward reads, with the shape this configuration implies ([out, in] for projections).</summary>
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
