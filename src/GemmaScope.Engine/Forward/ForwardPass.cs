using GemmaScope.Engine.Weights;
using GemmaScope.Kernels;
using GemmaScope.Models;

namespace GemmaScope.Engine;

/// <summary>
/// One Forward call. Per call: embed (× √d_model, the scale rounded to float32 first, as Hugging Face does); per block:
/// input_layernorm → q/k/v projections → (Gemma 3: per-head q/k RMSNorm) → RoPE → attention (KV cache appended) → o_proj →
/// post_attention_layernorm → residual add; pre_feedforward_layernorm → gate/up → GeGLU → down → post_feedforward_layernorm
/// → residual add; then the final norm, the tied LM head (the embedding as [vocab, d]) and the final soft-cap. Each hook
/// point fires where TransformerLens has it, only when wanted; an edit to the span flows into everything after it.
/// </summary>
internal sealed unsafe class ForwardPass
{
    private readonly GemmaEngine _engine;
    private readonly ForwardRequest _request;
    private readonly Scratch _s;
    private readonly GemmaArchitecture _a;
    private readonly ModelWeights _w;
    private readonly IForwardHooks? _hooks;
    private readonly int _threads;
    private CallLayout _layout = null!;
    private bool[][] _wants = [];
    private int[] _ropeKind = [];

    public ForwardPass(GemmaEngine engine, ForwardRequest request, Scratch scratch)
    {
        _engine = engine;
        _request = request;
        _s = scratch;
        _a = engine.Architecture;
        _w = engine.Weights;
        _hooks = request.Hooks;
        _threads = engine.ThreadCount;
    }

    public ForwardResult Run()
    {
        var caches = Validate(out int last);
        int entered = 0;
        try
        {
            foreach (var c in caches)
            {
                c?.Enter();
                entered++;
            }

            var past = new int[_request.Sequences.Count];
            for (int i = 0; i < past.Length; i++)
            {
                past[i] = caches[i]?.Length ?? 0;
            }

            _layout = new CallLayout(_request.Sequences, past);
            AskHooks();
            var result = Compute(caches, last);
            for (int i = 0; i < caches.Length; i++)
            {
                if (caches[i] is { } c)
                {
                    c.Length += _layout.RowCount(i);
                }
            }

            return result;
        }
        finally
        {
            for (int i = 0; i < entered; i++)
            {
                caches[i]?.Exit();
            }
        }
    }

    private KvCache?[] Validate(out int last)
    {
        var seqs = _request.Sequences ?? throw new ArgumentException("ForwardRequest.Sequences is null.", nameof(_request.Sequences));
        if (seqs.Count == 0)
        {
            throw new ArgumentException("ForwardRequest.Sequences is empty: give at least one sequence.", "request");
        }

        long rows = 0;
        for (int s = 0; s < seqs.Count; s++)
        {
            var ids = seqs[s] ?? throw new ArgumentException($"Sequence {s} is null.", "request");
            if (ids.Length == 0)
            {
                throw new ArgumentException($"Sequence {s} is empty: every sequence needs at least one token (no padding).", "request");
            }

            foreach (int id in ids)
            {
                if ((uint)id >= (uint)_a.Vocab)
                {
                    throw new ArgumentException($"Sequence {s} holds token id {id}, outside the vocabulary [0, {_a.Vocab}).", "request");
                }
            }

            rows += ids.Length;
        }

        if (rows > int.MaxValue / Math.Max(_a.DFf, _a.Heads * _a.HeadDim))
        {
            throw new ArgumentException($"{rows} rows in one call are too many for one buffer: split the call.", "request");
        }

        var caches = new KvCache?[seqs.Count];
        if (_request.Caches is { } given)
        {
            if (given.Count != seqs.Count)
            {
                throw new ArgumentException($"ForwardRequest.Caches has {given.Count} entries for {seqs.Count} sequences: give one (or null) per sequence.", "request");
            }

            for (int s = 0; s < given.Count; s++)
            {
                if (given[s] is { } c && c.Owner != _engine)
                {
                    throw new ArgumentException($"Cache {s} was created by another GemmaEngine.", "request");
                }

                caches[s] = given[s];
            }
        }

        last = _a.Layers - 1;
        if (_request.StopAfterLayer is int stop)
        {
            if (stop < 0 || stop >= _a.Layers)
            {
                throw new ArgumentOutOfRangeException("request", stop, $"StopAfterLayer must be in [0, {_a.Layers - 1}].");
            }

            if (stop < _a.Layers - 1)
            {
                if (_request.Logits != LogitsMode.None)
                {
                    throw new ArgumentException($"StopAfterLayer {stop} skips the LM head: ask for LogitsMode.None.", "request");
                }

                if (Array.Exists(caches, c => c is not null))
                {
                    throw new ArgumentException($"StopAfterLayer {stop} with KV caches would leave layers after {stop} without the new tokens.", "request");
                }
            }

            last = stop;
        }

        return caches;
    }

    // Wants() is asked once per point per call; the table costs no allocation beyond the arrays.
    private void AskHooks()
    {
        int kinds = (int)HookKind.LnFinalNormalized + 1;
        _wants = new bool[_a.Layers + 1][];
        for (int l = 0; l <= _a.Layers; l++)
        {
            _wants[l] = new bool[kinds];
        }

        if (_hooks is null)
        {
            return;
        }

        for (int l = 0; l < _a.Layers; l++)
        {
            foreach (var p in _engine.Points[l])
            {
                if (p is not null)
                {
                    _wants[l][(int)p.Kind] = _hooks.Wants(p);
                }
            }
        }

        // the last row holds hook_embed and the ln_final hooks
        _wants[_a.Layers][(int)HookKind.Embed] = _hooks.Wants(HookPoint.Embed);
        _wants[_a.Layers][(int)HookKind.LnFinalScale] = _hooks.Wants(HookPoint.LnFinalScale);
        _wants[_a.Layers][(int)HookKind.LnFinalNormalized] = _hooks.Wants(HookPoint.LnFinalNormalized);
    }

    private bool Wants(int layer, HookKind kind) => _wants[layer][(int)kind];

    private void Fire(HookPoint point, float[] buffer, int width, int keyPositions = 0) =>
        _hooks!.OnHook(point, new HookSite(_layout, width, keyPositions), buffer.AsSpan(0, _layout.TotalRows * width));

    private ForwardResult Compute(KvCache?[] caches, int last)
    {
        int rows = _layout.TotalRows, d = _a.DModel, hd = _a.HeadDim, qd = _a.Heads * hd, kvd = _a.KvHeads * hd, half = hd / 2;
        var ropeKinds = RopeKinds();
        int workers = Math.Max(1, Math.Min(_threads, _layout.SequenceCount * _a.Heads));
        _s.Prepare(rows, d, qd, kvd, _a.DFf, ropeKinds.Count, half, workers, _layout.MaxKeys);
        for (int k = 0; k < ropeKinds.Count; k++)
        {
            RopeTable(ropeKinds[k], _s.Cos[k], _s.Sin[k]);
        }

        Embed();
        int top = _a.Layers;
        if (Wants(top, HookKind.Embed))
        {
            Fire(HookPoint.Embed, _s.X, d);
        }

        for (int l = 0; l <= last; l++)
        {
            Block(l, caches, workers);
        }

        bool finalNeeded = last == _a.Layers - 1
            && (_request.Logits != LogitsMode.None || Wants(top, HookKind.LnFinalScale) || Wants(top, HookKind.LnFinalNormalized));
        if (!finalNeeded)
        {
            return new ForwardResult(_layout, last == _a.Layers - 1 ? _request.Logits : LogitsMode.None, _a.Vocab, null);
        }

        Norm(_s.X, _w.FinalNorm, _s.H, top, HookKind.LnFinalScale, HookKind.LnFinalNormalized, HookPoint.LnFinalScale, HookPoint.LnFinalNormalized);
        if (_request.Logits == LogitsMode.None)
        {
            return new ForwardResult(_layout, LogitsMode.None, _a.Vocab, null);
        }

        float[] logits;
        if (_request.Logits == LogitsMode.LastRow)
        {
            int n = _layout.SequenceCount;
            for (int s = 0; s < n; s++)
            {
                _s.H.AsSpan((_layout.Starts[s + 1] - 1) * d, d).CopyTo(_s.N.AsSpan(s * d, d));
            }

            logits = new float[(long)n * _a.Vocab];
            MatMul.Multiply(_s.N.AsSpan(0, n * d), n, _w.Embedding, logits, _threads);
        }
        else
        {
            logits = new float[(long)rows * _a.Vocab];
            MatMul.Multiply(_s.H.AsSpan(0, rows * d), rows, _w.Embedding, logits, _threads);
        }

        if (_a.FinalSoftcap is double cap)
        {
            StandInKernels.SoftCap(logits, (float)cap);
        }

        return new ForwardResult(_layout, _request.Logits, _a.Vocab, logits);
    }

    // Distinct (θ, scale) pairs among the layers (Gemma 2: one; Gemma 3: local and global) and each layer's index.
    private List<LayerAttention> RopeKinds()
    {
        var kinds = new List<LayerAttention>();
        _ropeKind = new int[_a.Layers];
        for (int l = 0; l < _a.Layers; l++)
        {
            var k = _a.LayerKinds[l];
            int i = kinds.FindIndex(x => x.RopeTheta == k.RopeTheta && x.RopePositionScale == k.RopePositionScale);
            if (i < 0)
            {
                i = kinds.Count;
                kinds.Add(k);
            }

            _ropeKind[l] = i;
        }

        return kinds;
    }

    // angle(row, j) = (position / scale) · θ^(−2j / head_dim), in float64, then cos and sin rounded to float32.
    private void RopeTable(LayerAttention kind, float[] cos, float[] sin)
    {
        int half = _a.HeadDim / 2;
        for (int r = 0; r < _layout.TotalRows; r++)
        {
            double pos = _layout.Positions[r] / kind.RopePositionScale;
            for (int j = 0; j < half; j++)
            {
                double angle = pos / Math.Pow(kind.RopeTheta, 2.0 * j / _a.HeadDim);
                cos[(r * half) + j] = (float)Math.Cos(angle);
                sin[(r * half) + j] = (float)Math.Sin(angle);
            }
        }
    }

    // x[r] = E[token r] · (float)√d_model, E read in its stored dtype.
    private void Embed()
    {
        int d = _a.DModel;
        float scale = (float)Math.Sqrt(d);
        var e = _w.EmbeddingAddress;
        for (int r = 0; r < _layout.TotalRows; r++)
        {
            long at = (long)_layout.Tokens[r] * d;
            var x = _s.X.AsSpan(r * d, d);
            switch (_w.Embedding.DType)
            {
                case Formats.TensorDType.Float32:
                    for (int i = 0; i < d; i++)
                    {
                        x[i] = ((float*)e)[at + i] * scale;
                    }

                    break;
                case Formats.TensorDType.BFloat16:
                    for (int i = 0; i < d; i++)
                    {
                        x[i] = BitConverter.Int32BitsToSingle(((ushort*)e)[at + i] << 16) * scale;
                    }

                    break;
                default:
                    for (int i = 0; i < d; i++)
                    {
                        x[i] = (float)((Half*)e)[at + i] * scale;
                    }

                    break;
            }
        }
    }

    // RMSNorm of x into y with its (1 + w) gain, firing hook_scale / hook_normalized when wanted. The same float
    // operations run whether or not they fire: y = (x · (1 / scale)) · gain.
    private void Norm(float[] x, float[] gain, float[] y, int layer, HookKind scaleKind, HookKind normalizedKind, HookPoint scalePoint, HookPoint normalizedPoint)
    {
        int rows = _layout.TotalRows, d = _a.DModel;
        StandInKernels.RmsScale(x, rows, d, (float)_a.RmsNormEps, _s.Scale);
        if (Wants(layer, scaleKind))
        {
            Fire(scalePoint, _s.Scale, 1);
        }

        if (Wants(layer, normalizedKind))
        {
            StandInKernels.Normalize(x, rows, d, _s.Scale, null, _s.N);
            Fire(normalizedPoint, _s.N, d);
            StandInKernels.Gain(_s.N, rows, d, gain, y);
        }
        else
        {
            StandInKernels.Normalize(x, rows, d, _s.Scale, gain, y);
        }
    }

    // A norm with no hooks of its own (post-attention, post-feedforward), in place.
    private void PostNorm(float[] x, float[] gain)
    {
        int rows = _layout.TotalRows, d = _a.DModel;
        StandInKernels.RmsScale(x, rows, d, (float)_a.RmsNormEps, _s.Scale);
        StandInKernels.Normalize(x, rows, d, _s.Scale, gain, x);
    }

    private void Block(int l, KvCache?[] caches, int workers)
    {
        var lw = _w.Layers[l];
        var pts = _engine.Points[l];
        int rows = _layout.TotalRows, d = _a.DModel, hd = _a.HeadDim, qd = _a.Heads * hd, kvd = _a.KvHeads * hd;
        var s = _s;

        if (Wants(l, HookKind.ResidPre))
        {
            Fire(pts[(int)HookKind.ResidPre], s.X, d);
        }

        Norm(s.X, lw.InputNorm, s.H, l, HookKind.Ln1Scale, HookKind.Ln1Normalized, pts[(int)HookKind.Ln1Scale], pts[(int)HookKind.Ln1Normalized]);

        MatMul.Multiply(s.H.AsSpan(0, rows * d), rows, lw.Q, s.Q.AsSpan(0, rows * qd), _threads);
        MatMul.Multiply(s.H.AsSpan(0, rows * d), rows, lw.K, s.K.AsSpan(0, rows * kvd), _threads);
        MatMul.Multiply(s.H.AsSpan(0, rows * d), rows, lw.V, s.V.AsSpan(0, rows * kvd), _threads);
        if (lw.QNorm is { } qn && lw.KNorm is { } kn)
        {
            HeadNorm(s.Q, rows * _a.Heads, qn);
            HeadNorm(s.K, rows * _a.KvHeads, kn);
        }

        FireIf(l, HookKind.AttnQ, s.Q, qd);
        FireIf(l, HookKind.AttnK, s.K, kvd);
        FireIf(l, HookKind.AttnV, s.V, kvd);

        int rk = _ropeKind[l];
        StandInKernels.Rope(s.Q, rows, _a.Heads, hd, s.Cos[rk], s.Sin[rk]);
        StandInKernels.Rope(s.K, rows, _a.KvHeads, hd, s.Cos[rk], s.Sin[rk]);
        FireIf(l, HookKind.AttnRotQ, s.Q, qd);
        FireIf(l, HookKind.AttnRotK, s.K, kvd);

        var plan = new Attention.Plan
        {
            Layout = _layout,
            Sources = KeySources(l, caches),
            Heads = _a.Heads,
            KvHeads = _a.KvHeads,
            HeadDim = hd,
            Window = _a.LayerKinds[l].SlidingWindow,
            Scaling = (float)(1 / Math.Sqrt(_a.QueryPreAttnScalar)),
            Cap = _a.AttnSoftcap is double c ? (float)c : null,
            MaxKeys = _layout.MaxKeys,
            Workers = workers,
        };
        bool wantScores = Wants(l, HookKind.AttnScores), wantPattern = Wants(l, HookKind.AttnPattern);
        if (wantScores || wantPattern)
        {
            long size = (long)rows * _a.Heads * _layout.MaxKeys;
            int width = _a.Heads * _layout.MaxKeys;
            Scratch.Ensure(ref s.Scores, size);
            Attention.Scores(plan, s.Q, s.Scores);
            if (wantScores)
            {
                Fire(pts[(int)HookKind.AttnScores], s.Scores, width, _layout.MaxKeys);
            }

            if (wantPattern)
            {
                Scratch.Ensure(ref s.Pattern, size);
                Attention.Softmax(plan, s.Scores, s.Pattern);
                Fire(pts[(int)HookKind.AttnPattern], s.Pattern, width, _layout.MaxKeys);
                Attention.Mix(plan, s.Pattern, s.Z);
            }
            else
            {
                Attention.Softmax(plan, s.Scores, s.Scores);
                Attention.Mix(plan, s.Scores, s.Z);
            }
        }
        else
        {
            Attention.Fused(plan, s.Q, s.Z, s.Rows);
        }

        FireIf(l, HookKind.AttnZ, s.Z, qd);

        MatMul.Multiply(s.Z.AsSpan(0, rows * qd), rows, lw.O, s.A.AsSpan(0, rows * d), _threads);
        PostNorm(s.A, lw.PostAttentionNorm);
        FireIf(l, HookKind.AttnOut, s.A, d);
        Add(s.X, s.A, rows * d);
        FireIf(l, HookKind.ResidMid, s.X, d);

        Norm(s.X, lw.PreFeedforwardNorm, s.H, l, HookKind.Ln2Scale, HookKind.Ln2Normalized, pts[(int)HookKind.Ln2Scale], pts[(int)HookKind.Ln2Normalized]);
        FireIf(l, HookKind.MlpIn, s.H, d);
        int ff = _a.DFf;
        MatMul.Multiply(s.H.AsSpan(0, rows * d), rows, lw.Gate, s.Gate.AsSpan(0, rows * ff), _threads);
        MatMul.Multiply(s.H.AsSpan(0, rows * d), rows, lw.Up, s.Up.AsSpan(0, rows * ff), _threads);
        StandInKernels.GeGlu(s.Gate.AsSpan(0, rows * ff), s.Up.AsSpan(0, rows * ff));
        MatMul.Multiply(s.Gate.AsSpan(0, rows * ff), rows, lw.Down, s.A.AsSpan(0, rows * d), _threads);
        PostNorm(s.A, lw.PostFeedforwardNorm);
        FireIf(l, HookKind.MlpOut, s.A, d);
        Add(s.X, s.A, rows * d);
        FireIf(l, HookKind.ResidPost, s.X, d);
    }

    private void FireIf(int layer, HookKind kind, float[] buffer, int width)
    {
        if (Wants(layer, kind))
        {
            Fire(_engine.Points[layer][(int)kind], buffer, width);
        }
    }

    // Gemma 3 QK-norm: RMSNorm (1 + w) over each head_dim slice, in place (q_norm / k_norm).
    private void HeadNorm(float[] x, int slices, float[] gain)
    {
        Scratch.Ensure(ref _s.Up, slices);
        var scale = _s.Up.AsSpan(0, slices); // Up is free until the MLP
        StandInKernels.RmsScale(x, slices, _a.HeadDim, (float)_a.RmsNormEps, scale);
        StandInKernels.Normalize(x, slices, _a.HeadDim, scale, gain, x);
    }

    private static void Add(float[] x, float[] a, int n)
    {
        for (int i = 0; i < n; i++)
        {
            x[i] += a[i];
        }
    }

    // Sequences without a cache attend over the call's own rows; cached ones first append their new K/V rows to the cache.
    private KeySource[] KeySources(int l, KvCache?[] caches)
    {
        int kvd = _a.KvHeads * _a.HeadDim;
        var sources = new KeySource[_layout.SequenceCount];
        for (int q = 0; q < sources.Length; q++)
        {
            if (caches[q] is not { } cache)
            {
                sources[q] = new KeySource(_s.K, _s.V, _layout.Starts[q], 0, ring: false);
                continue;
            }

            var kv = cache.Layers[l];
            int past = _layout.PastLengths[q], n = _layout.RowCount(q);
            kv.Reserve(past, n);
            for (int i = 0; i < n; i++)
            {
                int row = kv.Row(past + i), from = (_layout.Starts[q] + i) * kvd;
                Array.Copy(_s.K, from, kv.K, (long)row * kvd, kvd);
                Array.Copy(_s.V, from, kv.V, (long)row * kvd, kvd);
            }

            sources[q] = new KeySource(kv.K, kv.V, 0, kv.Capacity, kv.Ring);
        }

        return sources;
    }
}
