using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Writes a Gemma 2 2B-shaped checkpoint with random weights in Hugging Face's layout: <c>config.json</c>,
/// <c>generation_config.json</c>, <c>model-0000i-of-0000n.safetensors</c> shards (split inside layers, as real
/// shards are) and <c>model.safetensors.index.json</c>. Projections are [out, in] as Hugging Face stores them.
/// Weights are U(−a, a) with a = √3 / √fan_in (std 1/√fan_in), so activations stay O(1) through the layers;
/// norm weights w are U(−0.1, 0.1) (the norm multiplies by 1 + w). Deterministic for a given seed.
/// </summary>
internal static class CheckpointGenerator
{
    public const int DModel = 2304, DFf = 9216, Heads = 8, KvHeads = 4, HeadDim = 256, Vocab = 256000;

    /// <summary>The tensors of a checkpoint in the order Hugging Face's save_pretrained writes them.</summary>
    public static List<(string Name, long[] Shape, float Scale)> Tensors(int layers)
    {
        var list = new List<(string, long[], float)> { ("model.embed_tokens.weight", [Vocab, DModel], Uniform(DModel)) };
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            list.Add((p + "input_layernorm.weight", [DModel], 0.1f));
            list.Add((p + "mlp.down_proj.weight", [DModel, DFf], Uniform(DFf)));
            list.Add((p + "mlp.gate_proj.weight", [DFf, DModel], Uniform(DModel)));
            list.Add((p + "mlp.up_proj.weight", [DFf, DModel], Uniform(DModel)));
            list.Add((p + "post_attention_layernorm.weight", [DModel], 0.1f));
            list.Add((p + "post_feedforward_layernorm.weight", [DModel], 0.1f));
            list.Add((p + "pre_feedforward_layernorm.weight", [DModel], 0.1f));
            list.Add((p + "self_attn.k_proj.weight", [KvHeads * HeadDim, DModel], Uniform(DModel)));
            list.Add((p + "self_attn.o_proj.weight", [DModel, Heads * HeadDim], Uniform(Heads * HeadDim)));
            list.Add((p + "self_attn.q_proj.weight", [Heads * HeadDim, DModel], Uniform(DModel)));
            list.Add((p + "self_attn.v_proj.weight", [KvHeads * HeadDim, DModel], Uniform(DModel)));
        }

        list.Add(("model.norm.weight", [DModel], 0.1f));
        return list;
    }

    /// <summary>Bytes of all weights stored as fp32 (the reference for the RSS ratio).</summary>
    public static long Fp32Bytes(int layers) => Tensors(layers).Sum(t => 4 * t.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>Writes the checkpoint unless <paramref name="folder"/> already holds a complete one (its index is written last).</summary>
    public static void EnsureWritten(string folder, int layers, bool bf16, long maxShardBytes = 1L << 30, ulong seed = 0x6E6D6D61)
    {
        if (File.Exists(Path.Combine(folder, "model.safetensors.index.json")))
        {
            return;
        }

        Directory.CreateDirectory(folder);
        int elem = bf16 ? 2 : 4;
        var tensors = Tensors(layers);

        // Greedy sharding by size, tensor order kept; a shard closes when the next tensor would overflow it.
        var shards = new List<List<int>> { new() };
        long used = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            long bytes = elem * tensors[i].Shape.Aggregate(1L, (a, b) => a * b);
            if (used > 0 && used + bytes > maxShardBytes)
            {
                shards.Add([]);
                used = 0;
            }

            shards[^1].Add(i);
            used += bytes;
        }

        var weightMap = new JsonObject();
        long total = 0;
        var buffer = new float[1 << 22];
        var bytesOut = new byte[buffer.Length * elem];
        for (int s = 0; s < shards.Count; s++)
        {
            string file = string.Create(CultureInfo.InvariantCulture, $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors");
            var header = new JsonObject();
            long offset = 0;
            foreach (int i in shards[s])
            {
                var (name, shape, _) = tensors[i];
                long bytes = elem * shape.Aggregate(1L, (a, b) => a * b);
                header[name] = new JsonObject
                {
                    ["dtype"] = bf16 ? "BF16" : "F32",
                    ["shape"] = new JsonArray([.. shape.Select(d => (JsonNode)d)]),
                    ["data_offsets"] = new JsonArray(offset, offset + bytes),
                };
                offset += bytes;
                weightMap[name] = file;
                total += bytes;
            }

            header["__metadata__"] = new JsonObject { ["format"] = "pt" };
            var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
            int padded = (headerBytes.Length + 7) / 8 * 8;
            string tmp = Path.Combine(folder, file + ".partial");
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var len = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
                fs.Write(len);
                fs.Write(headerBytes);
                for (int p = headerBytes.Length; p < padded; p++)
                {
                    fs.WriteByte((byte)' ');
                }

                foreach (int i in shards[s])
                {
                    var (_, shape, scale) = tensors[i];
                    long count = shape.Aggregate(1L, (a, b) => a * b);
                    for (long start = 0; start < count; start += buffer.Length)
                    {
                        int n = (int)Math.Min(buffer.Length, count - start);
                        Fill(buffer.AsSpan(0, n), scale, seed + (ulong)i * 0x9E3779B97F4A7C15UL, start);
                        int written = bf16 ? ToBf16(buffer.AsSpan(0, n), bytesOut) : ToBytes(buffer.AsSpan(0, n), bytesOut);
                        fs.Write(bytesOut, 0, written);
                    }
                }
            }

            File.Move(tmp, Path.Combine(folder, file), overwrite: true);
        }

        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma2ForCausalLM"),
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["attn_logit_softcapping"] = 50.0,
            ["bos_token_id"] = 2,
            ["cache_implementation"] = "hybrid",
            ["eos_token_id"] = 1,
            ["final_logit_softcapping"] = 30.0,
            ["head_dim"] = HeadDim,
            ["hidden_act"] = "gelu_pytorch_tanh",
            ["hidden_activation"] = "gelu_pytorch_tanh",
            ["hidden_size"] = DModel,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = DFf,
            ["max_position_embeddings"] = 8192,
            ["model_type"] = "gemma2",
            ["num_attention_heads"] = Heads,
            ["num_hidden_layers"] = layers,
            ["num_key_value_heads"] = KvHeads,
            ["pad_token_id"] = 0,
            ["query_pre_attn_scalar"] = 256,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["sliding_window"] = 4096,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = bf16 ? "bfloat16" : "float32",
            ["transformers_version"] = "4.42.4",
            ["use_cache"] = true,
            ["vocab_size"] = Vocab,
        };
        var indent = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(indent));
        File.WriteAllText(Path.Combine(folder, "generation_config.json"),
            new JsonObject { ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0, ["cache_implementation"] = "hybrid" }.ToJsonString(indent));
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), index.ToJsonString(indent));
    }

    private static float Uniform(int fanIn) => MathF.Sqrt(3f / fanIn);

    // Counter-based (splitmix64 of seed + element index): any chunk can be generated independently, in parallel.
    private static void Fill(Span<float> dst, float scale, ulong seed, long start)
    {
        const int Block = 1 << 16;
        int n = dst.Length;
        unsafe
        {
            fixed (float* p = dst)
            {
                nint ptr = (nint)p;
                Parallel.For(0, (n + Block - 1) / Block, b =>
                {
                    var d = new Span<float>((float*)ptr + (long)b * Block, Math.Min(Block, n - b * Block));
                    ulong ctr = seed + (ulong)(start + (long)b * Block);
                    for (int i = 0; i < d.Length; i++)
                    {
                        ulong z = (ctr + (ulong)i) * 0x9E3779B97F4A7C15UL;
                        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                        z ^= z >> 31;
                        d[i] = ((z >> 40) * (1f / (1 << 24)) * 2f - 1f) * scale;
                    }
                });
            }
        }
    }

    private static int ToBytes(ReadOnlySpan<float> src, byte[] dst)
    {
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(src).CopyTo(dst);
        return src.Length * 4;
    }

    // Round to nearest even, as torch's .to(torch.bfloat16) does (inputs are finite).
    private static int ToBf16(ReadOnlySpan<float> src, byte[] dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(src[i]);
            bits += 0x7FFF + ((bits >> 16) & 1);
            BinaryPrimitives.WriteUInt16LittleEndian(dst.AsSpan(2 * i), (ushort)(bits >> 16));
        }

        return src.Length * 2;
    }
}
