using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using GemmaScope.Formats;
using GemmaScope.Kernels;

namespace GemmaScope;

public unsafe partial class JumpReLUSae
{
    /// <summary>Encodes a batch: <paramref name="features"/>[t, :] = JumpReLU(x[t, :]·W_enc + b_enc).</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    /// <param name="features">tokens × FeatureCount floats, overwritten.</param>
    public void Encode(ReadOnlySpan<float> activations, Span<float> features)
    {
        var w = Weights;
        int tokens = Tokens(activations, nameof(activations));
        if (features.Length != (long)tokens * FeatureCount)
        {
            // Only here: the interpolated message would otherwise allocate on every call.
            CheckLength(features.Length, (long)tokens * FeatureCount, nameof(features), $"{tokens} tokens × {FeatureCount} features");
        }

        fixed (float* x = activations)
        fixed (float* f = features)
        {
            if (!TryEncodeScreened(x, tokens, f))
            {
                JumpReLUEncodeKernel.Encode(w, x, tokens, f, MaxDegreeOfParallelism);
            }
        }

        // The kernels read raw pointers; keep this SAE (and so its buffers' finalizers) alive until they are done.
        GC.KeepAlive(this);
    }

    /// <summary>Encodes a batch into a new array of tokens × FeatureCount floats.</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    public float[] Encode(ReadOnlySpan<float> activations)
    {
        var f = GC.AllocateUninitializedArray<float>(ArrayLength((long)Tokens(activations, nameof(activations)) * FeatureCount));
        Encode(activations, f);
        return f;
    }

    /// <summary>
    /// Decodes a batch: <paramref name="reconstruction"/>[t, :] = f[t, :]·W_dec + b_dec. For an affine transcoder this is
    /// the decoder alone, without x·W_skip (the features do not determine it); <see cref="Reconstruct(ReadOnlySpan{float}, Span{float})"/> adds it.
    /// </summary>
    /// <param name="features">tokens × FeatureCount floats.</param>
    /// <param name="reconstruction">tokens × OutputSize floats, overwritten.</param>
    public void Decode(ReadOnlySpan<float> features, Span<float> reconstruction)
    {
        var w = DecoderWeights;
        if (features.Length % FeatureCount != 0)
        {
            throw new ArgumentException($"{nameof(features)} has {features.Length} floats, not a multiple of FeatureCount {FeatureCount}", nameof(features));
        }

        int tokens = features.Length / FeatureCount;
        if (reconstruction.Length != (long)tokens * OutputSize)
        {
            CheckLength(reconstruction.Length, (long)tokens * OutputSize, nameof(reconstruction), $"{tokens} tokens × {OutputSize} outputs");
        }

        fixed (float* f = features)
        fixed (float* xhat = reconstruction)
        {
            DenseDecodeKernel.Decode(w, f, tokens, xhat, MaxDegreeOfParallelism);
        }

        GC.KeepAlive(this);
    }

    /// <summary>Decodes a batch into a new array of tokens × OutputSize floats.</summary>
    /// <param name="features">tokens × FeatureCount floats.</param>
    public float[] Decode(ReadOnlySpan<float> features)
    {
        var xhat = GC.AllocateUninitializedArray<float>(ArrayLength((long)(features.Length / FeatureCount) * OutputSize));
        Decode(features, xhat);
        return xhat;
    }

    /// <summary>
    /// Encodes then decodes: the SAE's reconstruction x̂ of each token; for a transcoder, its prediction of the output
    /// site, f(x)·W_dec + b_dec (+ x·W_skip).
    /// </summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    /// <param name="reconstruction">tokens × OutputSize floats, overwritten.</param>
    public void Reconstruct(ReadOnlySpan<float> activations, Span<float> reconstruction)
    {
        int tokens = Tokens(activations, nameof(activations));
        CheckLength(reconstruction.Length, (long)tokens * OutputSize, nameof(reconstruction), $"{tokens} tokens × {OutputSize} outputs");
        const int block = 16;
        var scratch = ArrayPool<float>.Shared.Rent(Math.Min(block, Math.Max(tokens, 1)) * FeatureCount);
        try
        {
            for (int t0 = 0; t0 < tokens; t0 += block)
            {
                int n = Math.Min(block, tokens - t0);
                var f = scratch.AsSpan(0, n * FeatureCount);
                var x = activations.Slice(t0 * InputSize, n * InputSize);
                var y = reconstruction.Slice(t0 * OutputSize, n * OutputSize);
                Encode(x, f);
                Decode(f, y);
                if (Skip != null)
                {
                    AddSkip(x, y, n);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    /// <summary>Encodes then decodes into a new array of tokens × OutputSize floats (see <see cref="Reconstruct(ReadOnlySpan{float}, Span{float})"/>).</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    public float[] Reconstruct(ReadOnlySpan<float> activations)
    {
        var y = GC.AllocateUninitializedArray<float>(ArrayLength((long)Tokens(activations, nameof(activations)) * OutputSize));
        Reconstruct(activations, y);
        return y;
    }

    // y[t, :] += Σ_i x[t, i]·W_skip[i, :]; each W_skip row is used for the whole token block while it is in cache.
    private void AddSkip(ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        int dIn = InputSize, dOut = OutputSize;
        for (int i = 0; i < dIn; i++)
        {
            var row = new ReadOnlySpan<float>(Skip + ((long)i * dOut), dOut);
            for (int t = 0; t < tokens; t++)
            {
                var yt = y.Slice(t * dOut, dOut);
                TensorPrimitives.MultiplyAdd(row, x[(t * dIn) + i], yt, yt);
            }
        }
    }

    /// <summary>The error term x − x̂ (what splicing with an error term adds back so the model's output is unchanged).</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    /// <param name="error">tokens × InputSize floats, overwritten.</param>
    /// <exception cref="InvalidOperationException">A transcoder: its input and output are different sites, so x − y means nothing.</exception>
    public void ReconstructionError(ReadOnlySpan<float> activations, Span<float> error)
    {
        if (this is JumpReLUTranscoder)
        {
            throw new InvalidOperationException($"{this} reads one site and writes another; its error term is the real output minus Reconstruct(x), not x minus it.");
        }

        if (activations.Overlaps(error))
        {
            throw new ArgumentException("error must not overlap activations (the reconstruction is written there first)", nameof(error));
        }

        Reconstruct(activations, error);
        TensorPrimitives.Subtract(activations, error, error);
    }

    /// <summary>Encodes a batch straight to sparse form (active features only, by increasing index).</summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    public SparseFeatureBatch EncodeSparse(ReadOnlySpan<float> activations)
    {
        var w = Weights;
        int tokens = Tokens(activations, nameof(activations));
        SparseFeatureBatch batch;
        fixed (float* x = activations)
        {
            // Fused: active features are collected in the kernel's tile epilogue; no dense row is materialised.
            batch = TryEncodeSparseScreened(x, tokens) ?? JumpReLUEncodeKernel.EncodeSparse(w, x, tokens, MaxDegreeOfParallelism);
        }

        GC.KeepAlive(this);
        return batch;
    }

    /// <summary>
    /// Encodes a batch to sparse form into a reusable buffer, overwriting it: no allocation once the buffer has grown to
    /// the batch's size (for encoding many SAEs per forward pass). The buffer must not be shared between concurrent calls.
    /// </summary>
    /// <param name="activations">tokens × InputSize floats.</param>
    /// <param name="destination">Receives the active features of each token, by increasing index.</param>
    public void EncodeSparse(ReadOnlySpan<float> activations, SparseFeatureBuffer destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var w = Weights;
        int tokens = Tokens(activations, nameof(activations));
        fixed (float* x = activations)
        {
            JumpReLUEncodeKernel.EncodeSparse(w, x, tokens, MaxDegreeOfParallelism, destination);
        }

        GC.KeepAlive(this);
    }

    /// <summary>
    /// Encodes one token to sparse form without allocating; returns L0. The destinations must hold every active feature:
    /// FeatureCount entries always suffice; if they are too short an <see cref="ArgumentException"/> states the L0 needed.
    /// </summary>
    /// <param name="activation">InputSize floats.</param>
    /// <param name="indices">Receives active feature indices, increasing.</param>
    /// <param name="values">Receives their values.</param>
    public int EncodeSparse(ReadOnlySpan<float> activation, Span<int> indices, Span<float> values)
    {
        var w = Weights;
        CheckLength(activation.Length, InputSize, nameof(activation), "one token");
        int n;
        fixed (float* x = activation)
        {
            n = TryEncodeSparseTokenScreened(x, indices, values);
            if (n == int.MinValue)
            {
                n = JumpReLUEncodeKernel.EncodeSparseToken(w, x, indices, values, MaxDegreeOfParallelism);
            }
        }

        GC.KeepAlive(this);
        if (n < 0)
        {
            throw new ArgumentException($"destinations hold {Math.Min(indices.Length, values.Length)} entries but this token has {-n} active features");
        }

        return n;
    }

    /// <summary>Decodes sparse features of a batch; costs L0 × OutputSize per token, not FeatureCount × OutputSize.</summary>
    /// <param name="features">Sparse features from this SAE (same FeatureCount).</param>
    /// <param name="reconstruction">features.TokenCount × OutputSize floats, overwritten.</param>
    public void DecodeSparse(SparseFeatureBatch features, Span<float> reconstruction)
    {
        ArgumentNullException.ThrowIfNull(features);
        var w = DecoderWeights;
        if (features.FeatureCount != FeatureCount)
        {
            throw new ArgumentException($"features come from an SAE of width {features.FeatureCount}; this one has {FeatureCount}", nameof(features));
        }

        CheckLength(reconstruction.Length, (long)features.TokenCount * OutputSize, nameof(reconstruction), $"{features.TokenCount} tokens × {OutputSize} outputs");
        for (int t = 0; t < features.TokenCount; t++)
        {
            var ft = features[t];
            SparseDecodeKernel.DecodeToken(w, ft.Indices, ft.Values, reconstruction.Slice(t * OutputSize, OutputSize));
        }

        GC.KeepAlive(this);
    }

    /// <summary>Decodes one token's sparse features: x̂ = b_dec + Σ values[k]·W_dec[indices[k], :].</summary>
    /// <param name="indices">Feature indices (any order, each in [0, FeatureCount)).</param>
    /// <param name="values">Their values.</param>
    /// <param name="reconstruction">OutputSize floats, overwritten.</param>
    public void DecodeSparse(ReadOnlySpan<int> indices, ReadOnlySpan<float> values, Span<float> reconstruction)
    {
        var w = DecoderWeights;
        if (indices.Length != values.Length)
        {
            throw new ArgumentException($"indices ({indices.Length}) and values ({values.Length}) differ in length");
        }

        foreach (var j in indices)
        {
            if ((uint)j >= (uint)FeatureCount)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), j, $"feature index must be in [0, {FeatureCount})");
            }
        }

        CheckLength(reconstruction.Length, OutputSize, nameof(reconstruction), "one token");
        SparseDecodeKernel.DecodeToken(w, indices, values, reconstruction);
        GC.KeepAlive(this);
    }

    /// <summary>Copies feature <paramref name="feature"/>'s decoder direction W_dec[feature, :] (what steering at the output site adds).</summary>
    /// <param name="feature">Feature index.</param>
    /// <param name="destination">OutputSize floats.</param>
    public void GetDecoderDirection(int feature, Span<float> destination)
    {
        var w = DecoderWeights;
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)feature, (uint)FeatureCount, nameof(feature));
        CheckLength(destination.Length, OutputSize, nameof(destination), "one decoder row");
        destination.Clear();
        SparseDecodeKernel.AddRow(w, feature, 1f, destination);
        GC.KeepAlive(this);
    }

    /// <summary>Feature <paramref name="feature"/>'s decoder direction as a new array.</summary>
    /// <param name="feature">Feature index.</param>
    public float[] GetDecoderDirection(int feature)
    {
        var d = new float[OutputSize];
        GetDecoderDirection(feature, d);
        return d;
    }

    /// <summary>Encodes a [tokens, InputSize] (or [InputSize]) tensor into a [tokens, FeatureCount] (or [FeatureCount]) tensor.</summary>
    /// <param name="activations">Dense tensor whose last dimension is InputSize.</param>
    public Tensor<float> Encode(Tensor<float> activations)
    {
        ArgumentNullException.ThrowIfNull(activations);
        var x = Flat(activations, InputSize, nameof(activations));
        var f = Encode(x);
        return Tensor.Create(f, OutShape(activations, FeatureCount));
    }

    /// <summary>Decodes a [tokens, FeatureCount] (or [FeatureCount]) tensor into a [tokens, OutputSize] (or [OutputSize]) tensor.</summary>
    /// <param name="features">Dense tensor whose last dimension is FeatureCount.</param>
    public Tensor<float> Decode(Tensor<float> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        var f = Flat(features, FeatureCount, nameof(features));
        return Tensor.Create(Decode(f), OutShape(features, OutputSize));
    }

    private static ReadOnlySpan<float> Flat(Tensor<float> t, int last, string name)
    {
        var lengths = t.Lengths;
        if (lengths.Length is < 1 or > 2 || lengths[^1] != last)
        {
            throw new ArgumentException($"{name} has shape [{string.Join(", ", lengths.ToArray())}]; expected [tokens, {last}] or [{last}]", name);
        }

        if (!t.IsDense)
        {
            throw new ArgumentException($"{name} must be dense (contiguous)", name);
        }

        return MemoryMarshal.CreateReadOnlySpan(ref t.GetPinnableReference(), checked((int)t.FlattenedLength));
    }

    private static nint[] OutShape(Tensor<float> t, int last) => t.Lengths.Length == 1 ? [last] : [t.Lengths[0], last];

    /// <summary>
    /// Writes the SAE in SAELens's layout. A path ending in <c>.safetensors</c> writes that file (configuration in its
    /// <c>__metadata__</c> under "cfg"); any other path is a folder that receives <c>sae_weights.safetensors</c> and <c>cfg.json</c>.
    /// Weights are written in the SAE's working precision (F32, or BF16 matrices for a bfloat16 SAE).
    /// </summary>
    /// <param name="path">Destination file or folder.</param>
    /// <exception cref="NotSupportedException">A transcoder (SAELens's SAE layout has no output site or skip term).</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (this is JumpReLUTranscoder)
        {
            throw new NotSupportedException($"{this}: saving transcoders is not supported (SAELens's SAE layout has no output site or W_skip).");
        }

        var w = Weights;
        bool bf16 = w.IsBFloat16;
        long enc = (long)InputSize * FeatureCount;
        ReadOnlyMemory<byte> Bytes(void* p, long count) => count <= int.MaxValue
            ? new OwnedMemory<byte>(this, (byte*)p, (int)count).Memory : throw new NotSupportedException("tensor over 2 GiB");
        var mdt = bf16 ? TensorDType.BFloat16 : TensorDType.Float32;
        int es = bf16 ? 2 : 4;
        var tensors = new List<SafeTensors.TensorToWrite>
        {
            new("W_enc", mdt, [InputSize, FeatureCount], Bytes(bf16 ? w.WEncBf16 : w.WEnc, enc * es)),
            new("W_dec", mdt, [FeatureCount, InputSize], Bytes(bf16 ? w.WDecBf16 : w.WDec, enc * es)),
            new("b_enc", TensorDType.Float32, [FeatureCount], Bytes(w.BEnc, FeatureCount * 4L)),
            new("b_dec", TensorDType.Float32, [InputSize], Bytes(w.BDec, InputSize * 4L)),
            new("threshold", TensorDType.Float32, [FeatureCount], Bytes(w.Threshold, FeatureCount * 4L)),
        };
        var cfg = Config.ToJson(bf16 ? "bfloat16" : "float32");
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["cfg"] = cfg, ["format"] = "pt" });
            GC.KeepAlive(this);
            return;
        }

        Directory.CreateDirectory(path);
        SafeTensors.Write(Path.Combine(path, "sae_weights.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(Path.Combine(path, "cfg.json"), cfg);
        GC.KeepAlive(this);
    }

    /// <summary>Copies W_enc [InputSize, FeatureCount] as float32 (widening bfloat16), row-major.</summary>
    /// <param name="destination">InputSize × FeatureCount floats.</param>
    public void CopyEncoderWeights(Span<float> destination) => CopyMatrix(true, destination);

    /// <summary>Copies W_dec [FeatureCount, OutputSize] as float32 (widening bfloat16), row-major.</summary>
    /// <param name="destination">FeatureCount × OutputSize floats.</param>
    public void CopyDecoderWeights(Span<float> destination) => CopyMatrix(false, destination);

    private void CopyMatrix(bool encoder, Span<float> destination)
    {
        var w = Weights;
        long n = (long)(encoder ? InputSize : OutputSize) * FeatureCount;
        CheckLength(destination.Length, n, nameof(destination), encoder ? $"a W_enc of {InputSize} × {FeatureCount}" : $"a W_dec of {FeatureCount} × {OutputSize}");
        if (!w.IsBFloat16)
        {
            new ReadOnlySpan<float>(encoder ? w.WEnc : w.WDec, (int)n).CopyTo(destination);
            return;
        }

        ushort* src = encoder ? w.WEncBf16 : w.WDecBf16;
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = BFloat16.ToSingle(src[i]);
        }

        GC.KeepAlive(this);
    }

    /// <summary>
    /// A zero-copy, read-only view of one float32 tensor, for binding the SAE's own memory elsewhere (e.g. as ONNX Runtime
    /// inputs). Valid until the SAE is disposed: afterwards the memory throws <see cref="ObjectDisposedException"/> when used.
    /// </summary>
    /// <param name="tensor">Which tensor.</param>
    /// <exception cref="NotSupportedException">The matrices of a bfloat16 SAE, or a tensor of more than 2^31 − 1 elements.</exception>
    public ReadOnlyMemory<float> GetFloat32Memory(SaeTensor tensor)
    {
        var w = Weights;
        float* p = tensor switch
        {
            SaeTensor.EncoderWeights => w.WEnc,
            SaeTensor.DecoderWeights => w.WDec,
            SaeTensor.EncoderBias => w.BEnc,
            SaeTensor.Threshold => w.Threshold,
            SaeTensor.DecoderBias => w.BDec,
            _ => throw new ArgumentOutOfRangeException(nameof(tensor)),
        };
        long n = tensor switch
        {
            SaeTensor.EncoderWeights => (long)InputSize * FeatureCount,
            SaeTensor.DecoderWeights => (long)OutputSize * FeatureCount,
            SaeTensor.DecoderBias => OutputSize,
            _ => FeatureCount,
        };
        if (p == null)
        {
            throw new NotSupportedException($"{tensor} of this SAE is stored as bfloat16; load with SaePrecision.Float32 for a float32 view");
        }

        if (n > int.MaxValue)
        {
            throw new NotSupportedException($"{tensor} has {n} elements, more than one Memory<float> can address");
        }

        return new OwnedMemory<float>(this, p, (int)n).Memory;
    }

    /// <summary>Memory inside an SAE's buffers or map, without copying; refuses use after the SAE is disposed.</summary>
    private sealed class OwnedMemory<T>(JumpReLUSae owner, T* p, int length) : MemoryManager<T>
        where T : unmanaged
    {
        public override Span<T> GetSpan()
        {
            ObjectDisposedException.ThrowIf(owner._disposed, owner);
            return new Span<T>(p, length);
        }

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            ObjectDisposedException.ThrowIf(owner._disposed, owner);
            ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)length, nameof(elementIndex));
            return new MemoryHandle(p + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }

    private static int ArrayLength(long n) => n <= Array.MaxLength
        ? (int)n : throw new ArgumentException($"the result would need {n} floats, more than one array holds; use the span overload in smaller batches");
}
