using System.Text;
using GemmaScope.Onnx.Graph;

namespace GemmaScope.Onnx.Runtime.Engines.Ort;

/// <summary>
/// How one run executes: the edited graphs (segments, cut at callback sites) and how to feed/fetch them. Built from the
/// structural part of the request only (sites, SAE shapes, flags), so one plan and its sessions serve any SAE of the
/// same shape, any steering vector and any clamp values. Immutable once built.
/// </summary>
internal sealed class RunPlan
{
    public sealed record SpliceSpec(HookPoint Site, string Tensor, string Prefix, int DIn, int DSae, bool Clamp, bool ErrorTerm, bool Features, bool ExcludeBos);

    public sealed record SteerSpec(HookPoint Site, string Tensor, string Prefix, int Width);

    public sealed record HookSpec(HookPoint Site, string Tensor, string CutInput);

    public required string Key { get; init; }

    public required ResolvedHook[] Captures { get; init; }

    public required HookPoint[] CaptureSites { get; init; }

    public required SpliceSpec[] Splices { get; init; }

    public required SteerSpec[] Steers { get; init; }

    /// <summary>Callback sites in graph order; segment k computes the (edited) tensor of hook k.</summary>
    public required HookSpec[] Hooks { get; init; }

    /// <summary>False: the last segment has no logits output, so pruning drops the LM head and every layer after the last one needed.</summary>
    public bool WantLogits { get; init; } = true;

    /// <summary>Output name per feature-capturing splice.</summary>
    public Dictionary<string, string> FeatureOutputs { get; } = new(StringComparer.Ordinal);

    public Dictionary<HookPoint, string> CaptureOutputs { get; } = [];

    /// <summary>Per captured site with interventions at it: the output holding its value after them.</summary>
    public Dictionary<HookPoint, string> EditedOutputs { get; } = [];

    /// <summary>Per hook: the tensor that holds the callback's input (the value after every earlier edit).</summary>
    public Dictionary<HookPoint, string> HookOutputs { get; } = [];

    /// <summary>The cache key: every site by name and tensor (two sites may share a tensor, e.g. resid_post(l) and resid_pre(l+1)).</summary>
    public static string MakeKey(IEnumerable<string> captureTensors, IEnumerable<SpliceSpec> splices, IEnumerable<SteerSpec> steers, IEnumerable<HookSpec> hooks, bool kv)
    {
        var sb = new StringBuilder();
        sb.Append("kv=").Append(kv).Append('\n');
        foreach (var c in captureTensors.Distinct().Order(StringComparer.Ordinal))
        {
            sb.Append("capture ").Append(c).Append('\n');
        }

        foreach (var s in splices)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"splice {s.Site.Name}={s.Tensor} {s.DIn}x{s.DSae} clamp={s.Clamp} err={s.ErrorTerm} f={s.Features} nobos={s.ExcludeBos}\n");
        }

        foreach (var s in steers)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"steer {s.Site.Name}={s.Tensor} {s.Width}\n");
        }

        foreach (var h in hooks)
        {
            sb.Append("hook ").Append(h.Site.Name).Append('=').Append(h.Tensor).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>Builds the segment graphs: one per callback hook, plus the final one that produces the logits.</summary>
    public List<OnnxGraph> BuildSegments(OnnxGraph original, IReadOnlyList<ResolvedHook> allResolved, bool keepPresent)
    {
        var g = original.Clone();
        foreach (var r in allResolved)
        {
            r.Materialize(g);
        }

        g.Reindex();
        var edited = new HashSet<string>(Splices.Select(s => s.Tensor).Concat(Steers.Select(s => s.Tensor)).Concat(Hooks.Select(h => h.Tensor)), StringComparer.Ordinal);
        foreach (var t in edited)
        {
            if (g.ElementType(t) != (int)global::Onnx.TensorProto.Types.DataType.Float)
            {
                throw new NotSupportedException($"Interventions need float32 activations; tensor '{t}' in '{original.Path}' is ONNX type {g.ElementType(t)}. Capture works on any float type.");
            }

            GraphEdits.Unfuse(g, t);
        }

        // Every site on an edited tensor, in forward order. Sites that share a tensor (resid_post(l) and resid_pre(l + 1))
        // form one chain, as in TransformerLens where they are two hook points in a row on the same stream: a later site
        // sees the earlier site's edits. At one site: splice, then steering, then the C# callback.
        var sites = Splices.Select(s => (s.Site, s.Tensor))
            .Concat(Steers.Select(s => (s.Site, s.Tensor)))
            .Concat(Hooks.Select(h => (h.Site, h.Tensor)))
            .Concat(CaptureSites.Select((s, i) => (Site: s, Captures[i].Tensor)))
            .Where(x => edited.Contains(x.Tensor))
            .Distinct()
            .OrderBy(x => x.Site.ForwardOrder)
            .ToList();
        var head = new Dictionary<string, string>(StringComparer.Ordinal);
        var input = new Dictionary<HookPoint, string>();
        var output = new Dictionary<HookPoint, string>();
        foreach (var (site, tensor) in sites)
        {
            string h = head.GetValueOrDefault(tensor, tensor);
            input[site] = h;
            foreach (var s in Splices.Where(s => s.Site == site))
            {
                (string features, h) = GraphEdits.InsertSae(g, h, s.Prefix, s.DIn, s.DSae, s.Clamp, s.ErrorTerm, s.ExcludeBos);
                if (s.Features)
                {
                    FeatureOutputs[s.Prefix] = features;
                }
            }

            foreach (var s in Steers.Where(s => s.Site == site))
            {
                h = GraphEdits.InsertSteer(g, h, s.Prefix, s.Width);
            }

            foreach (var k in Hooks.Where(k => k.Site == site))
            {
                // Two Identity nodes: "{cut}/input" is the callback's input (what segment k returns); "{cut}/output"
                // reads the callback's result once later segments cut "{cut}/input" (a graph input replaces it for its
                // only reader), so downstream edits and captures of the output are ordinary tensors of the graph.
                HookOutputs[site] = GraphEdits.InsertIdentity(g, h, k.CutInput + "/input");
                h = GraphEdits.InsertIdentity(g, HookOutputs[site], k.CutInput + "/output");
            }

            output[site] = h;
            head[tensor] = h;
        }

        for (int i = 0; i < Captures.Length; i++)
        {
            var site = CaptureSites[i];
            CaptureOutputs[site] = input.TryGetValue(site, out var before) ? before : g.FloatOutputName(Captures[i].Tensor);
            if (output.TryGetValue(site, out var after) && after != CaptureOutputs[site])
            {
                EditedOutputs[site] = after;
            }
        }

        var segments = new List<OnnxGraph>();
        for (int k = 0; k <= Hooks.Length; k++)
        {
            var seg = g.Clone();
            for (int j = 0; j < k; j++)
            {
                GraphEdits.Cut(seg, HookOutputs[Hooks[j].Site], Hooks[j].CutInput);
            }

            var outputs = new List<string>();
            if (k < Hooks.Length)
            {
                outputs.Add(HookOutputs[Hooks[k].Site]);
            }
            else
            {
                if (WantLogits)
                {
                    outputs.Add("logits");
                }

                if (keepPresent)
                {
                    outputs.AddRange(original.G.Output.Select(o => o.Name).Where(n => n.StartsWith("present", StringComparison.Ordinal)));
                }

                outputs.AddRange(CaptureOutputs.Values);
                outputs.AddRange(EditedOutputs.Values);
                outputs.AddRange(FeatureOutputs.Values);
            }

            GraphEdits.SetOutputs(seg, outputs);
            GraphEdits.Prune(seg);
            segments.Add(seg);
        }

        return segments;
    }
}
