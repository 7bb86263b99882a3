using GemmaScope.Engine;

namespace GemmaScope.Onnx.Runtime.Engines.Native;

/// <summary>
/// The native engine (<see cref="GemmaEngine"/>, GemmaScope.Engine) behind <see cref="GemmaModel"/>: every capture and
/// intervention of a run is one <see cref="IForwardHooks"/> (<see cref="RunHooks"/>) called in the forward loop; a batch is
/// packed without padding; <c>logits: false</c> stops after the last block needed; generation keeps a <see cref="KvCache"/>.
/// </summary>
internal sealed class NativeModelEngine : IModelEngine
{
    private readonly GemmaEngine _engine;
    private readonly GemmaModelOptions _options;

    public NativeModelEngine(GemmaEngine engine, string folder, GemmaModelOptions options)
    {
        _engine = engine;
        _options = options;
        ModelPath = folder;
    }

    public GemmaEngineKind Kind => GemmaEngineKind.Native;

    public string ModelPath { get; }

    public string? CheckpointFolder => ModelPath;

    public int LayerCount => _engine.Architecture.Layers;

    public int? HeadDim => _engine.Architecture.HeadDim;

    public bool HasKvCache => true;

    public bool Supports(HookPoint point, out string? why)
    {
        ArgumentNullException.ThrowIfNull(point);
        why = point.Layer < LayerCount ? null : OutOfRange(point);
        return why is null;
    }

    /// <summary>The hook's place in the forward loop, which is named by its TransformerLens name.</summary>
    public string Describe(HookPoint point)
    {
        Check(point);
        return point.Name;
    }

    public int Width(HookPoint point)
    {
        Check(point);
        return _engine.Width(point);
    }

    public EngineOutput Run(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint> capture, Interventions interventions, bool wantLogits)
    {
        foreach (var p in capture)
        {
            Check(p);
        }

        var hooks = new RunHooks(capture, interventions, _options.BosId);
        var result = _engine.Forward(new ForwardRequest
        {
            Sequences = sequences,
            Logits = wantLogits ? LogitsMode.AllRows : LogitsMode.None,
            Hooks = hooks.IsEmpty ? null : hooks,
            StopAfterLayer = wantLogits ? null : hooks.LastBlock(LayerCount),
        });
        var rowStart = new int[sequences.Count];
        for (int s = 0; s < rowStart.Length; s++)
        {
            rowStart[s] = result.RowStart(s);
        }

        return new EngineOutput
        {
            Activations = hooks.Captured,
            Edited = hooks.Edited,
            Features = hooks.Features,
            Logits = wantLogits ? result.Logits : null,
            Vocab = wantLogits ? result.Vocab : 0,
            RowStart = rowStart,
        };
    }

    public IDecoder Decode(Interventions interventions, bool useKvCache) => new Decoder(this, interventions, useKvCache);

    public void Dispose() => _engine.Dispose();

    private void Check(HookPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        if (point.Layer >= LayerCount)
        {
            throw new ArgumentOutOfRangeException(nameof(point), point.Name, OutOfRange(point));
        }
    }

    private string OutOfRange(HookPoint point) =>
        $"Hook point {point.Name}: layer {point.Layer} is out of range; the model '{ModelPath}' has {LayerCount} layers (0..{LayerCount - 1}).";

    // One sequence: the prompt, then one token per step, appended to the cache (or the whole sequence each step without one).
    private sealed class Decoder(NativeModelEngine owner, Interventions iv, bool kv) : IDecoder
    {
        private readonly KvCache? _cache = kv ? owner._engine.CreateCache() : null;
        private ForwardResult? _last;

        public bool UsesKvCache => kv;

        public ReadOnlySpan<float> Step(int[] ids)
        {
            var hooks = new RunHooks([], iv, owner._options.BosId);
            _last = owner._engine.Forward(new ForwardRequest
            {
                Sequences = [ids],
                Caches = _cache is null ? null : [_cache],
                Logits = LogitsMode.LastRow,
                Hooks = hooks.IsEmpty ? null : hooks,
            });
            return _last.LastLogits(0);
        }

        public void Dispose() => _cache?.Dispose();
    }
}
