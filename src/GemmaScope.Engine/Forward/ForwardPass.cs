using GemmaScope.Engine.Kernels;
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
internal sealed class ForwardPass
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
        var tables = _engine.RopeTables;
        _s.Prepare(rows, d, qd, kvd, _a.DFf, tables.Length, half);
        for (int k = 0; k < tables.Length; k++)
        {
            tables[k].Fill(_layout.Positions, _s.Cos[k].AsSpan(0, rows * half), _s.Sin[k].AsSpan(0, rows * half));
        }

        Embedding.Gather(_w.EmbeddingAddress, _w.Embedding.DType, _a.Vocab, d, _layout.Tokens, _s.X.AsSpan(0, rows * d));
        int top = _a.Layers;
        if (Wants(top, HookKind.Embed))
        {
            Fire(HookPoint.Embed, _s.X, d);
        }

        for (int l = 0; l <= last; l++)
        {
            Block(l, caches);
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
            SoftCap.Apply(logits, (float)cap);
        }

        return new ForwardResult(_layout, _request.Logits, _a.Vocab, logits);
    }

    // RMSNorm of x into y with its (1 + w) gain, firing hook_scale / hook_normalized when wanted. Unedited hooks leave
    // the kernel's outputs as they are (capture changes no bit); an edited scale gives normalized = x · (1 / scale) and
    // an edited normalized gives y = normalized · gain, the kernel's own float32 operations.
    private void Norm(float[] x, float[] gain, float[] y, int layer, HookKind scaleKind, HookKind normalizedKind, HookPoint scalePoint, HookPoint normalizedPoint)
    {
        int rows = _layout.TotalRows, d = _a.DModel;
        float eps = (float)_a.RmsNormEps;
        bool wantScale = Wants(layer, scaleKind), wantNormalized = Wants(layer, normalizedKind);
        if (!wantScale && !wantNormalized)
        {
            RmsNorm.Forward(x.AsSpan(0, rows * d), rows, d, gain, eps, y.AsSpan(0, rows * d));
            return;
        }

        RmsNorm.Forward(x.AsSpan(0, rows * d), rows, d, gain, eps, y.AsSpan(0, rows * d), _s.Scale.AsSpan(0, rows), _s.N.AsSpan(0, rows * d));
        bool edited = false;
        if (wantScale && FireEdited(scalePoint, _s.Scale, 1))
        {
            NormSteps.Normalize(x, rows, d, _s.Scale, _s.N);
            edited = true;
        }

        if (wantNormalized)
        {
            edited |= FireEdited(normalizedPoint, _s.N, d);
        }

        if (edited)
        {
            NormSteps.Gain(_s.N, rows, d, gain, y);
        }
    }

    // Fires a hook and tells whether it changed the rows (compared with a copy taken before).
    private bool FireEdited(HookPoint point, float[] buffer, int width, int keyPositions = 0)
    {
        int n = _layout.TotalRows * width;
        Scratch.Ensure(ref _s.Copy, n);
        buffer.AsSpan(0, n).CopyTo(_s.Copy);
        Fire(point, buffer, width, keyPositions);
        return !buffer.AsSpan(0, n).SequenceEqual(_s.Copy.AsSpan(0, n));
    }

    // A norm with no hooks of its own (post-attention, post-feedforward), in place.
    private void PostNorm(float[] x, float[] gain)
    {
        int n = _layout.TotalRows * _a.DModel;
        RmsNorm.Forward(x.AsSpan(0, n), _layout.TotalRows, _a.DModel, gain, (float)_a.RmsNormEps, x.AsSpan(0, n));
    }

    private void Block(int l, KvCache?[] caches)
    {
        var lw = _w.Layers[l];
        var pts = _engine.Points[l];
        int rows = _layout.TotalRows, d = _a.DModel, hd = _a.HeadDim, qd = _a.Heads * hd, kvd = _a.KvHeads * hd, ff = _a.DFf;
        float eps = (float)_a.RmsNormEps;
        var s = _s;

        FireIf(l, HookKind.ResidPre, s.X, d);
        Norm(s.X, lw.InputNorm, s.H, l, HookKind.Ln1Scale, HookKind.Ln1Normalized, pts[(int)HookKind.Ln1Scale], pts[(int)HookKind.Ln1Normalized]);

        var h = s.H.AsSpan(0, rows * d);
        var q = s.Q.AsSpan(0, rows * qd);
        var k = s.K.AsSpan(0, rows * kvd);
        var v = s.V.AsSpan(0, rows * kvd);
        MatMul.Multiply(h, rows, lw.Q, q, _threads);
        MatMul.Multiply(h, rows, lw.K, k, _threads);
        MatMul.Multiply(h, rows, lw.V, v, _threads);
        if (lw.QNorm is { } qn && lw.KNorm is { } kn)
        {
            QkNorm.Forward(q, rows, _a.Heads, hd, qn, eps, q);
            QkNorm.Forward(k, rows, _a.KvHeads, hd, kn, eps, k);
        }

        FireIf(l, HookKind.AttnQ, s.Q, qd);
        FireIf(l, HookKind.AttnK, s.K, kvd);
        FireIf(l, HookKind.AttnV, s.V, kvd);

        int rk = _engine.RopeKindOfLayer[l], half = hd / 2;
        var cos = s.Cos[rk].AsSpan(0, rows * half);
        var sin = s.Sin[rk].AsSpan(0, rows * half);
        Rope.Apply(q, rows, _a.Heads, hd, cos, sin, q);
        Rope.Apply(k, rows, _a.KvHeads, hd, cos, sin, k);
        FireIf(l, HookKind.AttnRotQ, s.Q, qd);
        FireIf(l, HookKind.AttnRotK, s.K, kvd);

        Attend(l, caches);
        FireIf(l, HookKind.AttnZ, s.Z, qd);

        MatMul.Multiply(s.Z.AsSpan(0, rows * qd), rows, lw.O, s.A.AsSpan(0, rows * d), _threads);
        PostNorm(s.A, lw.PostAttentionNorm);
        FireIf(l, HookKind.AttnOut, s.A, d);
        Add(s.X, s.A, rows * d);
        FireIf(l, HookKind.ResidMid, s.X, d);

        Norm(s.X, lw.PreFeedforwardNorm, s.H, l, HookKind.Ln2Scale, HookKind.Ln2Normalized, pts[(int)HookKind.Ln2Scale], pts[(int)HookKind.Ln2Normalized]);
        FireIf(l, HookKind.MlpIn, s.H, d);
        var gate = s.Gate.AsSpan(0, rows * ff);
        MatMul.Multiply(h, rows, lw.Gate, gate, _threads);
        MatMul.Multiply(h, rows, lw.Up, s.Up.AsSpan(0, rows * ff), _threads);
        GeGlu.Forward(gate, s.Up.AsSpan(0, rows * ff), gate);
        MatMul.Multiply(gate, rows, lw.Down, s.A.AsSpan(0, rows * d), _threads);
        PostNorm(s.A, lw.PostFeedforwardNorm);
        FireIf(l, HookKind.MlpOut, s.A, d);
        Add(s.X, s.A, rows * d);
        FireIf(l, HookKind.ResidPost, s.X, d);
    }

    // Attention of every sequence over its cached keys and its own rows, then the new keys/values appended to the caches.
    // When scores or patterns are wanted the kernel writes them per sequence; they are packed as
    // [rows, heads × MaxKeys] (−∞ / 0 past a shorter sequence's keys) for the hooks, and an edit recomputes what follows.
    private void Attend(int l, KvCache?[] caches)
    {
        var s = _s;
        int heads = _a.Heads, hd = _a.HeadDim, qd = heads * hd, kvd = _a.KvHeads * hd, maxKeys = _layout.MaxKeys;
        var kind = _a.LayerKinds[l];
        var shape = new AttentionShape(heads, _a.KvHeads, hd, AttentionShape.ScaleFor(_a.QueryPreAttnScalar),
            _a.AttnSoftcap is double c ? (float)c : 0f, kind.SlidingWindow ?? 0);
        var past = new KvLayerView[_layout.SequenceCount];
        for (int q = 0; q < past.Length; q++)
        {
            past[q] = caches[q] is { } cache ? cache.Layers[l].View : default;
        }

        var pts = _engine.Points[l];
        bool wantScores = Wants(l, HookKind.AttnScores), wantPattern = Wants(l, HookKind.AttnPattern);
        bool materialize = wantScores || wantPattern;
        if (materialize)
        {
            long size = (long)_layout.TotalRows * heads * maxKeys;
            Scratch.Ensure(ref s.Scores, size);
            Scratch.Ensure(ref s.Pattern, size);
        }

        for (int q = 0; q < past.Length; q++)
        {
            int start = _layout.Starts[q], n = _layout.RowCount(q), keys = _layout.PastLengths[q] + n;
            Span<float> seqScores = default, seqPattern = default;
            if (materialize)
            {
                long size = (long)n * heads * keys;
                Scratch.Ensure(ref s.SeqScores, size);
                Scratch.Ensure(ref s.SeqPattern, size);
                seqScores = s.SeqScores.AsSpan(0, (int)size);
                seqPattern = s.SeqPattern.AsSpan(0, (int)size);
            }

            Attention.Forward(shape, s.Q.AsSpan(start * qd, n * qd), s.K.AsSpan(start * kvd, n * kvd), s.V.AsSpan(start * kvd, n * kvd), n,
                past[q], s.Z.AsSpan(start * qd, n * qd), seqScores, seqPattern, _threads);
            if (materialize)
            {
                for (int i = 0; i < n * heads; i++)
                {
                    long at = ((long)(start * heads) + i) * maxKeys;
                    seqScores.Slice(i * keys, keys).CopyTo(s.Scores.AsSpan((int)at, keys));
                    s.Scores.AsSpan((int)at + keys, maxKeys - keys).Fill(float.NegativeInfinity);
                    seqPattern.Slice(i * keys, keys).CopyTo(s.Pattern.AsSpan((int)at, keys));
                    s.Pattern.AsSpan((int)at + keys, maxKeys - keys).Clear();
                }
            }
        }

        if (materialize)
        {
            int width = heads * maxKeys;
            bool edited = false;
            if (wantScores && FireEdited(pts[(int)HookKind.AttnScores], s.Scores, width, maxKeys))
            {
                AttentionEdits.Softmax(_layout, heads, kind.SlidingWindow, s.Scores, s.Pattern);
                edited = true;
            }

            if (wantPattern)
            {
                edited |= FireEdited(pts[(int)HookKind.AttnPattern], s.Pattern, width, maxKeys);
            }

            if (edited)
            {
                AttentionEdits.Mix(_layout, heads, _a.KvHeads, hd, kind.SlidingWindow, s.Pattern, s.V, past, s.Z);
            }
        }

        for (int q = 0; q < past.Length; q++)
        {
            if (caches[q] is { } cache)
            {
                int start = _layout.Starts[q], n = _layout.RowCount(q);
                var kv = cache.Layers[l];
                kv.Reserve(_layout.PastLengths[q], n);
                kv.Append(s.K.AsSpan(start * kvd, n * kvd), s.V.AsSpan(start * kvd, n * kvd), n);
            }
        }
    }

    private void FireIf(int layer, HookKind kind, float[] buffer, int width)
    {
        if (Wants(layer, kind))
        {
            Fire(_engine.Points[layer][(int)kind], buffer, width);
        }
    }

    private static void Add(float[] x, float[] a, int n)
    {
        for (int i = 0; i < n; i++)
        {
            x[i] += a[i];
        }
    }
}
