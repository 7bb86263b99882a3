using System.Numerics.Tensors;
using GemmaScope.Engine;

namespace GemmaScope.Onnx.Runtime.Engines.Native;

/// <summary>
/// One run's captures and interventions as the native engine's hook receiver. At a site, in TransformerLens order: the
/// capture of the value the site receives, then the SAE splice, the steering vector, the C# callback, then the capture
/// of the edited value; edits flow into every later site (including one on the same stream, e.g. resid_post(l) then
/// resid_pre(l + 1)). Per run: not shared between concurrent runs.
/// </summary>
internal sealed class RunHooks : IForwardHooks
{
    private readonly HashSet<HookPoint> _capture;
    private readonly Dictionary<HookPoint, SpliceHook> _splices = [];
    private readonly Dictionary<HookPoint, List<Steering>> _steers = [];
    private readonly Dictionary<HookPoint, ActivationHook> _callbacks = [];
    private readonly HashSet<HookPoint> _wanted;

    public RunHooks(IReadOnlyList<HookPoint> capture, Interventions iv, int bosId)
    {
        _capture = [.. capture];
        foreach (var s in iv.Splice)
        {
            _splices[s.Site] = new SpliceHook(s, bosId);
        }

        // Several steering vectors at one site are added one after the other, as the graph's chain of Add nodes does.
        foreach (var s in iv.Steer)
        {
            if (!_steers.TryGetValue(s.Site, out var list))
            {
                _steers[s.Site] = list = [];
            }

            list.Add(s);
        }

        foreach (var h in iv.Hooks)
        {
            _callbacks[h.Site] = h;
        }

        _wanted = [.. _capture, .. _splices.Keys, .. _steers.Keys, .. _callbacks.Keys];
    }

    public bool IsEmpty => _wanted.Count == 0;

    /// <summary>The value each captured site received, [rows, width] in the call's packed layout.</summary>
    public Dictionary<HookPoint, (float[] Data, int Width)> Captured { get; } = [];

    /// <summary>The value after the site's own interventions, for captured sites that have some.</summary>
    public Dictionary<HookPoint, (float[] Data, int Width)> Edited { get; } = [];

    /// <summary>Feature activations (before clamps) of splices that capture them, [rows, d_sae].</summary>
    public Dictionary<HookPoint, (float[] Data, int Width)> Features { get; } = [];

    /// <summary>The last block a run without logits must compute; null when the final norm's hooks are needed too.</summary>
    public int? LastBlock(int layers)
    {
        int last = 0;
        foreach (var p in _wanted)
        {
            if (p.IsFinal)
            {
                return null;
            }

            last = Math.Max(last, p.Layer);
        }

        return last >= layers - 1 ? null : last;
    }

    public bool Wants(HookPoint point) => _wanted.Contains(point);

    public void OnHook(HookPoint point, in HookSite site, Span<float> rows)
    {
        bool captured = _capture.Contains(point);
        if (captured)
        {
            Captured[point] = (rows.ToArray(), site.Width);
        }

        bool edited = false;
        if (_splices.TryGetValue(point, out var splice))
        {
            var features = splice.Apply(site, rows);
            if (features is not null)
            {
                Features[point] = (features, splice.FeatureCount);
            }

            edited = true;
        }

        if (_steers.TryGetValue(point, out var steers))
        {
            foreach (var steer in steers)
            {
                var v = steer.Vector.Span;
                for (int r = 0; r < site.TotalRows; r++)
                {
                    var row = rows.Slice(r * site.Width, site.Width);
                    TensorPrimitives.Add(row, v, row);
                }
            }

            edited = true;
        }

        if (_callbacks.TryGetValue(point, out var callback))
        {
            // The callback sees one sequence at a time, its real tokens only, as on ONNX Runtime.
            for (int s = 0; s < site.SequenceCount; s++)
            {
                int n = site.RowCount(s);
                callback.Edit(rows.Slice(site.RowStart(s) * site.Width, n * site.Width), n, site.Width);
            }

            edited = true;
        }

        if (captured && edited)
        {
            Edited[point] = (rows.ToArray(), site.Width);
        }
    }
}
