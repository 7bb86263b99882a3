using System.Runtime.InteropServices;
using GemmaScope.Formats;
using GemmaScope.Kernels;
using GemmaScope.Models;

namespace GemmaScope.Engine.Weights;

/// <summary>One decoder block's weights: projections as views of the mapped checkpoint, norm gains as (1 + w) floats.</summary>
internal sealed class LayerWeights
{
    public required WeightMatrix Q { get; init; }
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required WeightMatrix O { get; init; }
    public required WeightMatrix Gate { get; init; }
    public required WeightMatrix Up { get; init; }
    public required WeightMatrix Down { get; init; }

    /// <summary>(1 + w) of input_layernorm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm.</summary>
    public required float[] InputNorm { get; init; }
    public required float[] PostAttentionNorm { get; init; }
    public required float[] PreFeedforwardNorm { get; init; }
    public required float[] PostFeedforwardNorm { get; init; }

    /// <summary>Gemma 3's per-head q/k norm gains (1 + w) over head_dim; null without QK-norm.</summary>
    public float[]? QNorm { get; init; }
    public float[]? KNorm { get; init; }
}

/// <summary>
/// The model's weights as the forward reads them. Matrices are <see cref="WeightMatrix"/> views straight into the
/// checkpoint's mapping, in the stored dtype: nothing is copied or widened, so resident anonymous memory stays at the
/// norm gains (a few floats per layer). With <see cref="GemmaEngineOptions.RoundWeightsToBFloat16"/>, float32 matrices
/// are rounded (nearest even) into owned native bf16 buffers once at open: half the fp32 bytes, anonymous, stated.
/// Norm gains are tiny and held as float32 (1 + w), computed in float32 as Hugging Face does.
/// </summary>
internal sealed unsafe class ModelWeights : IDisposable
{
    private readonly List<nint> _owned = [];

    public ModelWeights(ModelCheckpoint checkpoint, bool roundToBFloat16)
    {
        var a = checkpoint.Architecture;
        RoundToBFloat16 = roundToBFloat16;
        try
        {
            Embedding = Matrix(checkpoint, "model.embed_tokens.weight", a.Vocab, a.DModel, out var embeddingAddress);
            EmbeddingAddress = embeddingAddress;
            FinalNorm = Gain(checkpoint, "model.norm.weight", a.DModel);
            Layers = new LayerWeights[a.Layers];
            int q = a.Heads * a.HeadDim, kv = a.KvHeads * a.HeadDim;
            for (int l = 0; l < a.Layers; l++)
            {
                string p = $"model.layers.{l}.";
                Layers[l] = new LayerWeights
                {
                    Q = Matrix(checkpoint, p + "self_attn.q_proj.weight", q, a.DModel),
                    K = Matrix(checkpoint, p + "self_attn.k_proj.weight", kv, a.DModel),
                    V = Matrix(checkpoint, p + "self_attn.v_proj.weight", kv, a.DModel),
                    O = Matrix(checkpoint, p + "self_attn.o_proj.weight", a.DModel, q),
                    Gate = Matrix(checkpoint, p + "mlp.gate_proj.weight", a.DFf, a.DModel),
                    Up = Matrix(checkpoint, p + "mlp.up_proj.weight", a.DFf, a.DModel),
                    Down = Matrix(checkpoint, p + "mlp.down_proj.weight", a.DModel, a.DFf),
                    InputNorm = Gain(checkpoint, p + "input_layernorm.weight", a.DModel),
                    PostAttentionNorm = Gain(checkpoint, p + "post_attention_layernorm.weight", a.DModel),
                    PreFeedforwardNorm = Gain(checkpoint, p + "pre_feedforward_layernorm.weight", a.DModel),
                    PostFeedforwardNorm = Gain(checkpoint, p + "post_feedforward_layernorm.weight", a.DModel),
                    QNorm = a.QkNorm ? Gain(checkpoint, p + "self_attn.q_norm.weight", a.HeadDim) : null,
                    KNorm = a.QkNorm ? Gain(checkpoint, p + "self_attn.k_norm.weight", a.HeadDim) : null,
                };
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool RoundToBFloat16 { get; }

    /// <summary>The token embedding [vocab, d_model], also the tied LM head.</summary>
    public WeightMatrix Embedding { get; }

    /// <summary>Where the embedding's [vocab, d_model] values are, in <see cref="Embedding"/>'s dtype (rows are gathered from it).</summary>
    public nint EmbeddingAddress { get; }

    /// <summary>(1 + w) of the final norm.</summary>
    public float[] FinalNorm { get; } = [];

    public LayerWeights[] Layers { get; } = [];

    /// <summary>Bytes of owned (anonymous) weight copies: 0 unless rounding to bf16.</summary>
    public long OwnedBytes { get; private set; }

    private WeightMatrix Matrix(ModelCheckpoint c, string name, int rows, int cols) => Matrix(c, name, rows, cols, out _);

    private WeightMatrix Matrix(ModelCheckpoint c, string name, int rows, int cols, out nint data)
    {
        var info = c.Info(name);
        CheckShape(info, [rows, cols]);
        if (info.DType is not (TensorDType.Float32 or TensorDType.BFloat16 or TensorDType.Float16))
        {
            throw new CheckpointFormatException(info.File, name, "the engine computes from F32, BF16 or F16 weights", "F32, BF16 or F16", info.DType.ToString());
        }

        nint address = c.Address(name);
        data = address;
        if (!RoundToBFloat16 || info.DType != TensorDType.Float32)
        {
            return WeightMatrix.Create(address, rows, cols, info.DType);
        }

        long count = (long)rows * cols;
        var dst = (ushort*)NativeMemory.Alloc((nuint)count, sizeof(ushort));
        _owned.Add((nint)dst);
        OwnedBytes += count * sizeof(ushort);
        var src = (uint*)address;
        for (long i = 0; i < count; i++)
        {
            dst[i] = RoundBf16(src[i]);
        }

        data = (nint)dst;
        return WeightMatrix.Create((nint)dst, rows, cols, TensorDType.BFloat16);
    }

    // (1 + w) in float32, w read in its stored dtype (rounded to bf16 first when asked, like every other weight).
    private float[] Gain(ModelCheckpoint c, string name, int length)
    {
        var info = c.Info(name);
        CheckShape(info, [length]);
        nint p = c.Address(name);
        var g = new float[length];
        for (int i = 0; i < length; i++)
        {
            float w = info.DType switch
            {
                TensorDType.Float32 => ((float*)p)[i],
                TensorDType.BFloat16 => BitConverter.Int32BitsToSingle(((ushort*)p)[i] << 16),
                TensorDType.Float16 => (float)((Half*)p)[i],
                TensorDType.Float64 => (float)((double*)p)[i],
                _ => throw new CheckpointFormatException(info.File, name, "unsupported dtype", "F32, BF16, F16 or F64", info.DType.ToString()),
            };
            if (RoundToBFloat16 && info.DType == TensorDType.Float32)
            {
                w = BitConverter.Int32BitsToSingle(RoundBf16(BitConverter.SingleToUInt32Bits(w)) << 16);
            }

            g[i] = 1f + w;
        }

        return g;
    }

    private static void CheckShape(SafeTensorInfo info, long[] expected)
    {
        if (!info.Shape.SequenceEqual(expected))
        {
            throw new CheckpointFormatException(info.File, info.Name, "tensor shape does not match config.json",
                "[" + string.Join(", ", expected) + "]", "[" + string.Join(", ", info.Shape) + "]");
        }
    }

    // float32 bits → bfloat16 bits, round to nearest even (NaN kept NaN).
    private static ushort RoundBf16(uint u)
    {
        if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        {
            return (ushort)((u >> 16) | 0x40);
        }

        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    public void Dispose()
    {
        foreach (var p in _owned)
        {
            NativeMemory.Free((void*)p);
        }

        _owned.Clear();
    }
}
