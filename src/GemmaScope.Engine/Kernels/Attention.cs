using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Engine.Kernels;

/// <summary>The static shape and options of one attention layer.</summary>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (grouped-query attention: Heads is a multiple of it).</param>
/// <param name="HeadDim">head_dim.</param>
/// <param name="Scale">Score scale in float32: query_pre_attn_scalar^-0.5 (see <see cref="ScaleFor"/>).</param>
/// <param name="SoftCap">Attention-logit soft-cap c (Gemma 2: 50); 0 for none (Gemma 3).</param>
/// <param name="SlidingWindow">Window w of a sliding layer (a query at p sees keys &gt; p − w); 0 for full attention.</param>
internal readonly record struct AttentionShape(int Heads, int KvHeads, int HeadDim, float Scale, float SoftCap, int SlidingWindow)
{
    /// <summary>query_pre_attn_scalar^-0.5 in float64, rounded to float32 (PyTorch multiplies float32 scores by it).</summary>
    public static float ScaleFor(double queryPreAttnScalar) => (float)Math.Pow(queryPreAttnScalar, -0.5);
}

/// <summary>
/// Causal multi-head attention for one sequence, a chunk of queries continuing after a KV cache:
///   for query row t at position p = past.Length + t, head h, KV head g = h / (Heads / KvHeads), visible keys
///   j ∈ [lo, p] with lo = max(0, p − w + 1) for a sliding layer (w = window), 0 otherwise:
///     s_j = (q_t,h · k_j,g) · scale                       (float32 dot, fixed order over head_dim)
///     s_j = tanh(s_j / c) · c                             (if soft-capped; Gemma 2's c = 50)
///     a_j = exp(s_j − max s) / Σ exp(s − max s)           (float32, max-subtracted; the sum in a fixed order)
///     z_t,h = Σ_j a_j · v_j,g                             (j ascending, fused multiply-add)
/// Masked positions (j &lt; lo or j &gt; p) are −∞ in the optional scores output and 0 in the pattern, which are
/// [tokens, heads × (past.Length + tokens)] (TransformerLens's hook_attn_scores / hook_pattern per query row).
/// This is Hugging Face's eager Gemma attention (<c>q @ kᵀ * scaling</c>, soft-cap, mask, float32 softmax, <c>@ v</c>),
/// restricted to the visible keys.
/// Work is split over (query row, head) outputs; every output's arithmetic depends only on its own row, its position and
/// the keys it sees, so results are bit-identical whatever the thread count, the chunking (a whole prompt, or a prefix
/// then a chunk through the cache) and the ring buffer's rotation.
/// </summary>
internal static unsafe class Attention
{
    [ThreadStatic]
    private static float[]? _scratch;

    /// <summary>Runs attention for one sequence's chunk.</summary>
    /// <param name="shape">Heads, head_dim, scale, soft-cap and window.</param>
    /// <param name="q">Queries after RoPE, [tokens, Heads × HeadDim].</param>
    /// <param name="k">The chunk's keys after RoPE, [tokens, KvHeads × HeadDim].</param>
    /// <param name="v">The chunk's values, [tokens, KvHeads × HeadDim].</param>
    /// <param name="tokens">Rows in the chunk.</param>
    /// <param name="past">Keys and values before the chunk (default for none); the chunk starts at past.Length.</param>
    /// <param name="z">Output, [tokens, Heads × HeadDim] (the input of o_proj).</param>
    /// <param name="scores">Optional masked scores, [tokens, Heads × (past.Length + tokens)]; empty to skip.</param>
    /// <param name="pattern">Optional softmax pattern, same shape; empty to skip.</param>
    /// <param name="threads">Threads to use (0 = all processors). Does not change any result bit.</param>
    public static void Forward(
        in AttentionShape shape,
        ReadOnlySpan<float> q,
        ReadOnlySpan<float> k,
        ReadOnlySpan<float> v,
        int tokens,
        in KvLayerView past,
        Span<float> z,
        Span<float> scores = default,
        Span<float> pattern = default,
        int threads = 1)
    {
        Validate(shape, q, k, v, tokens, past, z, scores, pattern);
        if (tokens == 0)
        {
            return;
        }

        int keyPositions = past.Length + tokens;
        fixed (float* pq = q, pk = k, pv = v, pz = z, ps = scores, pp = pattern, ck = past.Keys, cv = past.Values)
        {
            var job = new Job
            {
                Q = pq,
                K = pk,
                V = pv,
                Z = pz,
                Scores = ps,
                Pattern = pp,
                PastK = ck,
                PastV = cv,
                Tokens = tokens,
                Heads = shape.Heads,
                Group = shape.Heads / shape.KvHeads,
                D = shape.HeadDim,
                KvWidth = shape.KvHeads * shape.HeadDim,
                Window = shape.SlidingWindow,
                PastLength = past.Length,
                PastCapacity = past.Capacity,
                KeyPositions = keyPositions,
                Scale = shape.Scale,
                Cap = shape.SoftCap,
            };

            int items = tokens * shape.Heads;
            int parts = Math.Min(threads <= 0 ? Environment.ProcessorCount : threads, items);
            if (parts <= 1)
            {
                RunPart(job, 0, 1);
            }
            else
            {
                Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p => RunPart(job, p, parts));
            }
        }
    }

    private static void Validate(
        in AttentionShape s,
        ReadOnlySpan<float> q,
        ReadOnlySpan<float> k,
        ReadOnlySpan<float> v,
        int tokens,
        in KvLayerView past,
        Span<float> z,
        Span<float> scores,
        Span<float> pattern)
    {
        if (s.Heads <= 0 || s.KvHeads <= 0 || s.Heads % s.KvHeads != 0 || s.HeadDim <= 0)
        {
            throw new ArgumentException($"Attention: {s.Heads} query heads must be a positive multiple of {s.KvHeads} KV heads, head_dim {s.HeadDim} positive.");
        }

        if (s.SoftCap < 0 || float.IsNaN(s.SoftCap) || float.IsInfinity(s.SoftCap) || s.SlidingWindow < 0 || !float.IsFinite(s.Scale))
        {
            throw new ArgumentException($"Attention: soft-cap {s.SoftCap} and window {s.SlidingWindow} must be ≥ 0 and finite, scale {s.Scale} finite.");
        }

        if (tokens < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "Attention: tokens must be ≥ 0.");
        }

        long qSize = (long)tokens * s.Heads * s.HeadDim;
        long kvSize = (long)tokens * s.KvHeads * s.HeadDim;
        Check(q.Length == qSize, "q", qSize, q.Length);
        Check(k.Length == kvSize, "k", kvSize, k.Length);
        Check(v.Length == kvSize, "v", kvSize, v.Length);
        Check(z.Length == qSize, "z", qSize, z.Length);
        long keyPositions = (long)past.Length + tokens;
        long pSize = (long)tokens * s.Heads * keyPositions;
        Check(scores.IsEmpty || scores.Length == pSize, "scores", pSize, scores.Length);
        Check(pattern.IsEmpty || pattern.Length == pSize, "pattern", pSize, pattern.Length);

        if (past.Length > 0)
        {
            if (past.Keys is null || past.KvWidth != s.KvHeads * s.HeadDim)
            {
                throw new ArgumentException($"Attention: the KV cache rows are {past.KvWidth} wide, expected {s.KvHeads} × {s.HeadDim}.");
            }

            // The first query (position past.Length) needs keys from lo; every later query needs later ones.
            int lo = s.SlidingWindow > 0 ? Math.Max(0, past.Length - s.SlidingWindow + 1) : 0;
            if (past.Start > lo)
            {
                throw new ArgumentException(
                    $"Attention: the KV cache holds positions [{past.Start}, {past.Length}) but the query at position {past.Length} needs keys from position {lo}" +
                    (s.SlidingWindow > 0 ? $" (window {s.SlidingWindow})." : " (full attention)."));
            }
        }
    }

    private static void Check(bool ok, string what, long expected, long actual)
    {
        if (!ok)
        {
            throw new ArgumentException($"Attention: {what} has {actual} values, expected {expected}.", what);
        }
    }

    private static void RunPart(in Job j, int part, int parts)
    {
        int maxKeys = j.Window > 0 ? Math.Min(j.Window, j.KeyPositions) : j.KeyPositions;

        // Padded to whole vectors: the exp pass reads up to 15 floats past the visible keys.
        int need = maxKeys + 16;
        var scratch = _scratch;
        if (scratch is null || scratch.Length < need)
        {
            _scratch = scratch = new float[Math.Max(need, 256)];
        }

        fixed (float* buf = scratch)
        {
            int items = j.Tokens * j.Heads;
            for (int i = part; i < items; i += parts)
            {
                Row(j, i / j.Heads, i % j.Heads, buf);
            }
        }
    }

    private static void Row(in Job j, int t, int h, float* buf)
    {
        int pos = j.PastLength + t;
        int lo = j.Window > 0 ? Math.Max(0, pos - j.Window + 1) : 0;
        int n = pos - lo + 1;
        int kvOffset = h / j.Group * j.D;
        long row = ((long)t * j.Heads) + h;
        float* q = j.Q + (row * j.D);

        for (int i = 0; i < n; i++)
        {
            buf[i] = Dot(q, KeyOrValue(j, j.K, j.PastK, lo + i) + kvOffset, j.D) * j.Scale;
        }

        if (j.Cap > 0)
        {
            SoftCap.Apply(buf, n, j.Cap);
        }

        if (j.Scores != null)
        {
            WriteMasked(j.Scores + (row * j.KeyPositions), j.KeyPositions, lo, n, buf, float.NegativeInfinity);
        }

        Softmax(buf, n);

        if (j.Pattern != null)
        {
            WriteMasked(j.Pattern + (row * j.KeyPositions), j.KeyPositions, lo, n, buf, 0f);
        }

        float* z = j.Z + (row * j.D);
        new Span<float>(z, j.D).Clear();
        for (int i = 0; i < n; i++)
        {
            Axpy(z, buf[i], KeyOrValue(j, j.V, j.PastV, lo + i) + kvOffset, j.D);
        }
    }

    // The row of absolute position p: from the chunk if p ≥ past.Length, else from the cache slot p mod capacity.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* KeyOrValue(in Job j, float* chunk, float* cache, int p) =>
        p >= j.PastLength
            ? chunk + ((long)(p - j.PastLength) * j.KvWidth)
            : cache + ((long)(p % j.PastCapacity) * j.KvWidth);

    private static void WriteMasked(float* dst, int keyPositions, int lo, int n, float* values, float masked)
    {
        new Span<float>(dst, lo).Fill(masked);
        new ReadOnlySpan<float>(values, n).CopyTo(new Span<float>(dst + lo, n));
        new Span<float>(dst + lo + n, keyPositions - lo - n).Fill(masked);
    }

    // Σ q_i k_i over d in float32: whole vectors (two accumulators), then an 8-wide block, then scalars; fixed by d.
    private static float Dot(float* q, float* k, int d)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && d >= 16)
        {
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            for (; i + 32 <= d; i += 32)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i), Vector512.Load(k + i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i + 16), Vector512.Load(k + i + 16), a1);
            }

            if (i + 16 <= d)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q + i), Vector512.Load(k + i), a0);
                i += 16;
            }

            sum = Vector512.Sum(a0 + a1);
        }

        if (Vector256.IsHardwareAccelerated && i + 8 <= d)
        {
            var a = Vector256<float>.Zero;
            for (; i + 8 <= d; i += 8)
            {
                a = Vector256.FusedMultiplyAdd(Vector256.Load(q + i), Vector256.Load(k + i), a);
            }

            sum += Vector256.Sum(a);
        }

        for (; i < d; i++)
        {
            sum = MathF.FusedMultiplyAdd(q[i], k[i], sum);
        }

        return sum;
    }

    // z += a · v, element-wise fused multiply-add (vector and scalar give the same bits).
    private static void Axpy(float* z, float a, float* v, int d)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i + 16 <= d; i += 16)
            {
                Vector512.FusedMultiplyAdd(va, Vector512.Load(v + i), Vector512.Load(z + i)).Store(z + i);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; i + 8 <= d; i += 8)
            {
                Vector256.FusedMultiplyAdd(va, Vector256.Load(v + i), Vector256.Load(z + i)).Store(z + i);
            }
        }

        for (; i < d; i++)
        {
            z[i] = MathF.FusedMultiplyAdd(a, v[i], z[i]);
        }
    }

    // In place over x[0..n): exp(x − max) / Σ. The buffer has 16 spare floats: the last partial vector is padded with −∞
    // (exp gives 0), so every element goes through the same vector exp whatever n is.
    private static void Softmax(float* x, int n)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            max = MathF.Max(max, x[i]);
        }

        if (float.IsNegativeInfinity(max))
        {
            // Cannot happen for finite inputs (a query always sees itself); keep NaN-free, as softmax of all −∞ is undefined.
            max = 0;
        }

        float sum;
        if (Vector512.IsHardwareAccelerated)
        {
            int padded = (n + 15) & ~15;
            new Span<float>(x + n, padded - n).Fill(float.NegativeInfinity);
            var vm = Vector512.Create(max);
            var acc = Vector512<float>.Zero;
            for (int i = 0; i < padded; i += 16)
            {
                var e = Vector512.Exp(Vector512.Load(x + i) - vm);
                e.Store(x + i);
                acc += e;
            }

            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            int padded = (n + 7) & ~7;
            new Span<float>(x + n, padded - n).Fill(float.NegativeInfinity);
            var vm = Vector256.Create(max);
            var acc = Vector256<float>.Zero;
            for (int i = 0; i < padded; i += 8)
            {
                var e = Vector256.Exp(Vector256.Load(x + i) - vm);
                e.Store(x + i);
                acc += e;
            }

            sum = Vector256.Sum(acc);
        }
        else
        {
            sum = 0;
            for (int i = 0; i < n; i++)
            {
                x[i] = MathF.Exp(x[i] - max);
                sum += x[i];
            }
        }

        float inv = 1f / sum;
        for (int i = 0; i < n; i++)
        {
            x[i] *= inv;
        }
    }

    private struct Job
    {
        public float* Q;
        public float* K;
        public float* V;
        public float* Z;
        public float* Scores;
        public float* Pattern;
        public float* PastK;
        public float* PastV;
        public int Tokens;
        public int Heads;
        public int Group;
        public int D;
        public int KvWidth;
        public int Window;
        public int PastLength;
        public int PastCapacity;
        public int KeyPositions;
        public float Scale;
        public float Cap;
    }
}
