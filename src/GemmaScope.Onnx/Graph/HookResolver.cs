using System.Text.RegularExpressions;
using Onnx;

namespace GemmaScope.Onnx.Graph;

/// <summary>Where a hook point lives in a graph: a tensor, possibly an output a fused node has to be asked to emit.</summary>
/// <param name="Tensor">The tensor name.</param>
/// <param name="Source">How it was found (exporter naming, structural walk, or override), for messages.</param>
/// <param name="MissingOutputNode">When the tensor is not yet in the graph: the node that must emit it.</param>
/// <param name="MissingOutputIndex">The output index of <paramref name="MissingOutputNode"/>.</param>
internal sealed record ResolvedHook(string Tensor, string Source, string? MissingOutputNode = null, int MissingOutputIndex = -1)
{
    /// <summary>Adds the missing node output if needed, so <see cref="Tensor"/> exists in <paramref name="graph"/>.</summary>
    public void Materialize(OnnxGraph graph)
    {
        if (MissingOutputNode is not null)
        {
            graph.EnsureNodeOutput(MissingOutputNode, MissingOutputIndex, Tensor);
        }
    }
}

/// <summary>
/// Maps Gemma 2 hook points to tensors of an ONNX graph. Tried in order: explicit tensor-name overrides; the naming of
/// onnxruntime-genai's model builder (<c>/model/layers.{l}/input_layernorm/SkipLayerNorm</c>, residual sum as output 3);
/// the naming of torch.onnx/Optimum exports of <c>Gemma2ForCausalLM</c> (module scopes <c>/model/layers.{l}/…</c>);
/// a structural walk of the residual chain (Add / SkipSimplifiedLayerNormalization from the embedding Gather).
/// Immutable after construction; safe to share.
/// </summary>
internal sealed partial class HookResolver
{
    private readonly Dictionary<HookPoint, ResolvedHook> _table = [];
    private readonly Dictionary<HookPoint, string> _failures = [];
    private readonly string _path;

    public HookResolver(OnnxGraph graph, IReadOnlyDictionary<string, string>? overrides)
    {
        _path = graph.Path;
        if (graph.HasTensor(HookPoint.ResidPre(0).Name))
        {
            // A graph built from a checkpoint names every hook tensor with its TransformerLens name: no heuristics.
            while (graph.HasTensor(HookPoint.ResidPost(LayerCount).Name))
            {
                LayerCount++;
            }

            foreach (var point in HookPoint.All(LayerCount))
            {
                string name = overrides is not null && overrides.TryGetValue(point.Name, out var o) ? o : point.Name;
                if (graph.HasTensor(name))
                {
                    _table[point] = new ResolvedHook(name, "TransformerLens tensor name");
                }
                else
                {
                    _failures[point] = $"the graph has no tensor named '{name}'";
                }
            }

            return;
        }

        var structural = WalkResidualChain(graph, out string? chainProblem);
        int namedLayers = CountNamedLayers(graph);
        LayerCount = Math.Max(namedLayers, structural?.Layers ?? 0);
        if (LayerCount == 0)
        {
            throw new OnnxGraphException(graph.Path, null,
                "does not look like a Gemma 2 decoder graph: no '/model/layers.{l}/' nodes and no residual chain " +
                $"from an embedding Gather of 'input_ids' ({chainProblem ?? "no chain"})");
        }

        if (namedLayers > 0 && !graph.G.Node.Any(n => n.Name.Contains("post_feedforward_layernorm", StringComparison.Ordinal)))
        {
            throw new OnnxGraphException(graph.Path, null,
                "has decoder layers but no post_feedforward_layernorm: it is not a Gemma 2 graph (Gemma 2 has pre- and post- norms around attention and MLP)");
        }

        foreach (var point in HookPoint.All(LayerCount))
        {
            var kind = point.Kind;
            {
                if (!ExportKinds.Contains(kind))
                {
                    _failures[point] = "exported graphs expose only the hook points an export names; attention internals and norm scales need a model from GemmaModel.FromPretrained";
                    continue;
                }

                if (overrides is not null && overrides.TryGetValue(point.Name, out var name))
                {
                    _table[point] = graph.HasTensor(name)
                        ? new ResolvedHook(name, "override")
                        : throw new ArgumentException($"Tensor-name override for {point.Name}: tensor '{name}' is not in '{graph.Path}'.");
                    continue;
                }

                string? problem = null;
                var lookup = kind == HookKind.Embed ? HookPoint.ResidPre(0) : point; // the same tensor in an export
                var hit = ByGenAiNames(graph, lookup, LayerCount, ref problem)
                          ?? ByTorchNames(graph, lookup, LayerCount, ref problem)
                          ?? ByStructure(structural, lookup);
                if (hit is not null)
                {
                    _table[point] = hit;
                }
                else
                {
                    _failures[point] = problem ?? chainProblem ?? "no exporter naming matched and the structural walk does not reach this site";
                }
            }
        }

        if (overrides is not null)
        {
            foreach (var key in overrides.Keys)
            {
                if (!HookPoint.TryParse(key, out var p) || p.Layer >= LayerCount)
                {
                    throw new ArgumentException($"Tensor-name override key '{key}' is not a hook point of this {LayerCount}-layer model.");
                }
            }
        }
    }

    // The sites an exporter's graph can be searched for; the rest exist only in graphs built from a checkpoint.
    private static readonly HashSet<HookKind> ExportKinds =
    [
        HookKind.ResidPre, HookKind.ResidMid, HookKind.ResidPost, HookKind.AttnOut, HookKind.MlpOut, HookKind.AttnZ,
        HookKind.Ln2Normalized, HookKind.MlpIn, HookKind.Embed,
    ];

    /// <summary>Decoder layers found in the graph.</summary>
    public int LayerCount { get; }

    public ResolvedHook Resolve(HookPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        if (point.Layer >= LayerCount)
        {
            throw new ArgumentOutOfRangeException(nameof(point), point.Name,
                $"Hook point {point.Name}: layer {point.Layer} is out of range; the model '{_path}' has {LayerCount} layers (0..{LayerCount - 1}).");
        }

        if (_table.TryGetValue(point, out var hit))
        {
            return hit;
        }

        var found = string.Join(", ", _table.Keys.Where(k => k.Layer == point.Layer).Select(k => k.Name));
        throw new InvalidOperationException(
            $"Hook point {point.Name} could not be located in '{_path}': {_failures.GetValueOrDefault(point)}. " +
            $"Sites found for layer {point.Layer}: [{found}]. Pass the tensor name explicitly with GemmaModelOptions.TensorNames[\"{point.Name}\"].");
    }

    [GeneratedRegex(@"^/model/layers\.(\d+)/")]
    private static partial Regex LayerScope();

    private static int CountNamedLayers(OnnxGraph graph)
    {
        int max = -1;
        foreach (var node in graph.G.Node)
        {
            var m = LayerScope().Match(node.Name);
            if (m.Success && !node.Name.Contains("final_norm", StringComparison.Ordinal))
            {
                max = Math.Max(max, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return max + 1;
    }

    // onnxruntime-genai builder: /model/layers.{l}/{location}_layernorm/(Skip)LayerNorm, /model/layers.{l}/attn/o_proj/MatMul
    private static ResolvedHook? ByGenAiNames(OnnxGraph g, HookPoint p, int layers, ref string? problem)
    {
        const string src = "onnxruntime-genai naming";
        string pre = $"/model/layers.{p.Layer}";
        switch (p.Kind)
        {
            case HookKind.AttnZ:
                return g.NodeByName($"{pre}/attn/o_proj/MatMul") is { } o ? new ResolvedHook(o.Input[0], src) : null;
            case HookKind.AttnOut:
                return NormOutput(g, $"{pre}/post_attention_layernorm", src);
            case HookKind.MlpOut:
                return NormOutput(g, $"{pre}/post_feedforward_layernorm", src);
            case HookKind.ResidPre:
                if (g.NodeByName($"{pre}/input_layernorm/LayerNorm") is { } first)
                {
                    return new ResolvedHook(first.Input[0], src);
                }

                return SkipSum(g, $"{pre}/input_layernorm", src, ref problem);
            case HookKind.ResidMid:
                return SkipSum(g, $"{pre}/pre_feedforward_layernorm", src, ref problem);
            case HookKind.ResidPost:
                return p.Layer + 1 < layers
                    ? SkipSum(g, $"/model/layers.{p.Layer + 1}/input_layernorm", src, ref problem)
                    : SkipSum(g, $"/model/layers.{layers}/final_norm_layernorm", src, ref problem)
                      ?? SkipSum(g, $"/model/layers.{layers}/final_norm", src, ref problem);
            default:
                return null;
        }
    }

    private static ResolvedHook? NormOutput(OnnxGraph g, string scope, string src) =>
        (g.NodeByName($"{scope}/LayerNorm") ?? g.NodeByName($"{scope}/SkipLayerNorm")) is { } n ? new ResolvedHook(n.Output[0], src) : null;

    // Skip(Simplified)LayerNormalization: output 3 is input + skip, the residual stream; emitted on demand.
    private static ResolvedHook? SkipSum(OnnxGraph g, string scope, string src, ref string? problem)
    {
        var n = g.NodeByName($"{scope}/SkipLayerNorm");
        if (n is null)
        {
            return null;
        }

        if (!n.OpType.StartsWith("Skip", StringComparison.Ordinal))
        {
            problem = $"node '{n.Name}' is {n.OpType}, expected a Skip*LayerNormalization";
            return null;
        }

        if (n.Output.Count > 3 && n.Output[3].Length > 0)
        {
            return new ResolvedHook(n.Output[3], src);
        }

        return new ResolvedHook($"{scope}/output_3", src + " (residual sum added as output 3)", n.Name, 3);
    }

    // torch.onnx / Optimum: module scopes. A module's input is the non-constant tensor its nodes read from outside
    // the scope; its output is the tensor produced inside and read outside.
    private static ResolvedHook? ByTorchNames(OnnxGraph g, HookPoint p, int layers, ref string? problem)
    {
        const string src = "torch.onnx/Optimum naming";
        string pre = $"/model/layers.{p.Layer}";
        switch (p.Kind)
        {
            case HookKind.AttnZ:
                var o = g.NodeByName($"{pre}/self_attn/o_proj/MatMul");
                return o is null ? null : new ResolvedHook(g.IsConstant(o.Input[0]) ? o.Input[1] : o.Input[0], src);
            case HookKind.AttnOut:
                return ScopeTensor(g, $"{pre}/post_attention_layernorm/", output: true, src, ref problem);
            case HookKind.MlpOut:
                return ScopeTensor(g, $"{pre}/post_feedforward_layernorm/", output: true, src, ref problem);
            case HookKind.ResidPre:
                return ScopeTensor(g, $"{pre}/input_layernorm/", output: false, src, ref problem);
            case HookKind.ResidMid:
                return ScopeTensor(g, $"{pre}/pre_feedforward_layernorm/", output: false, src, ref problem);
            case HookKind.ResidPost:
                return p.Layer + 1 < layers
                    ? ScopeTensor(g, $"/model/layers.{p.Layer + 1}/input_layernorm/", output: false, src, ref problem)
                    : ScopeTensor(g, "/model/norm/", output: false, src, ref problem);
            default:
                return null;
        }
    }

    private static ResolvedHook? ScopeTensor(OnnxGraph g, string scope, bool output, string src, ref string? problem)
    {
        var inScope = g.G.Node.Where(n => n.Name.StartsWith(scope, StringComparison.Ordinal)).ToList();
        if (inScope.Count == 0)
        {
            return null;
        }

        var members = new HashSet<NodeProto>(inScope);
        var candidates = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var n in inScope)
        {
            if (output)
            {
                foreach (var t in n.Output)
                {
                    if (t.Length > 0 && (g.Consumers(t).Any(c => !members.Contains(c.Node)) || g.G.Output.Any(v => v.Name == t)))
                    {
                        candidates.Add(t);
                    }
                }
            }
            else
            {
                foreach (var t in n.Input)
                {
                    if (t.Length > 0 && !g.IsConstant(t) && !(g.Producer(t) is { } pr && members.Contains(pr.Node)))
                    {
                        candidates.Add(t);
                    }
                }
            }
        }

        if (candidates.Count == 1)
        {
            return new ResolvedHook(candidates.Min!, src);
        }

        problem = candidates.Count == 0
            ? $"scope '{scope}' has no {(output ? "output" : "input")} tensor"
            : $"scope '{scope}' is ambiguous, {(output ? "outputs" : "inputs")}: [{string.Join(", ", candidates)}]";
        return null;
    }

    private sealed record Chain(List<string> Residual, List<string?> Branch, List<ResolvedHook> Steps, int Layers);

    private static ResolvedHook? ByStructure(Chain? chain, HookPoint p)
    {
        if (chain is null)
        {
            return null;
        }

        return p.Kind switch
        {
            HookKind.ResidPre => chain.Steps[2 * p.Layer],
            HookKind.ResidMid => chain.Steps[(2 * p.Layer) + 1],
            HookKind.ResidPost => chain.Steps[(2 * p.Layer) + 2],
            HookKind.AttnOut => chain.Branch[(2 * p.Layer) + 1] is { } a ? new ResolvedHook(a, "structural walk") : null,
            HookKind.MlpOut => chain.Branch[(2 * p.Layer) + 2] is { } m ? new ResolvedHook(m, "structural walk") : null,
            _ => null, // attn.hook_z needs names: the walk only follows the residual stream
        };
    }

    // Embedding Gather(input_ids) [× scale] → Add/SkipLayerNorm → … Each block adds two branches (attention, MLP).
    private static Chain? WalkResidualChain(OnnxGraph g, out string? problem)
    {
        problem = null;
        var gather = g.Consumers("input_ids").FirstOrDefault(c => c.Node.OpType == "Gather" && c.Index == 1).Node;
        if (gather is null)
        {
            problem = "no Gather node reads 'input_ids'";
            return null;
        }

        string cur = gather.Output[0];
        foreach (var (node, _) in g.Consumers(cur))
        {
            if (node.OpType == "Mul" && node.Input.Any(g.IsConstant))
            {
                cur = node.Output[0];
                break;
            }
        }

        const string src = "structural walk";
        var residual = new List<string> { cur };
        var branch = new List<string?> { null };
        var steps = new List<ResolvedHook> { new(cur, src) };
        while (true)
        {
            // torch.onnx dedupes RMSNorm's x.float() with the residual add: the add may read a same-type Cast of the stream.
            var readers = g.Consumers(cur).ToList();
            foreach (var (cast, _) in g.Consumers(cur).Where(c => c.Node.OpType == "Cast").ToList())
            {
                readers.AddRange(g.Consumers(cast.Output[0]));
            }

            var next = readers.Where(c =>
                (c.Node.OpType == "Add" && !c.Node.Input.Any(g.IsConstant)) ||
                (c.Node.OpType.StartsWith("Skip", StringComparison.Ordinal) && c.Node.OpType.EndsWith("LayerNormalization", StringComparison.Ordinal) && c.Index <= 1)).ToList();
            if (next.Count != 1)
            {
                if (next.Count > 1)
                {
                    problem = $"residual tensor '{cur}' feeds several residual adds: [{string.Join(", ", next.Select(n => n.Node.Name))}]";
                }

                break;
            }

            var (node, index) = next[0];
            branch.Add(node.Input[1 - index]);
            if (node.OpType == "Add")
            {
                cur = node.Output[0];
                steps.Add(new ResolvedHook(cur, src));
            }
            else if (node.Output.Count > 3 && node.Output[3].Length > 0)
            {
                cur = node.Output[3];
                steps.Add(new ResolvedHook(cur, src));
            }
            else
            {
                cur = $"{node.Name}/output_3";
                steps.Add(new ResolvedHook(cur, src + " (residual sum added as output 3)", node.Name, 3));
                residual.Add(cur);
                break; // nothing reads a sum that did not exist
            }

            residual.Add(cur);
        }

        if (residual.Count < 3 || residual.Count % 2 == 0)
        {
            problem ??= $"the residual chain from '{residual[0]}' has {residual.Count - 1} adds, expected 2 per decoder layer";
            return null;
        }

        return new Chain(residual, branch, steps, (residual.Count - 1) / 2);
    }
}
