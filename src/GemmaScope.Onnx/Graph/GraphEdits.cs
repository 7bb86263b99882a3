using Onnx;

namespace GemmaScope.Onnx.Graph;

/// <summary>
/// Structural edits of an <see cref="OnnxGraph"/> for interventions: make a site editable (un-fuse a Skip*LayerNorm
/// whose residual sum is the site), insert an SAE or a steering add after it, cut the graph at a site (the tensor
/// becomes a graph input), prune nodes no output needs. Each call re-indexes the graph.
/// </summary>
internal static class GraphEdits
{
    private const int Float = (int)TensorProto.Types.DataType.Float;

    /// <summary>
    /// A Skip*LayerNormalization computes its normalised output from its own inputs, not from its output 3; to edit the
    /// residual sum, split it into Add (the sum) + SimplifiedLayerNormalization reading the (to be edited) sum.
    /// </summary>
    public static void Unfuse(OnnxGraph g, string tensor)
    {
        if (g.Producer(tensor) is not { } p || !p.Node.OpType.StartsWith("Skip", StringComparison.Ordinal) || p.Index != 3)
        {
            return;
        }

        var node = p.Node;
        if (node.OpType != "SkipSimplifiedLayerNormalization" || node.Input.Count > 3 && node.Input.Skip(3).Any(i => i.Length > 0))
        {
            throw new NotSupportedException($"Editing '{tensor}' needs node '{node.Name}' ({node.OpType} with {node.Input.Count} inputs) split; only SkipSimplifiedLayerNormalization without bias is supported.");
        }

        var add = new NodeProto { Name = node.Name + "/gemmascope_sum", OpType = "Add" };
        add.Input.Add(node.Input[0]);
        add.Input.Add(node.Input[1]);
        add.Output.Add(tensor);
        var norm = new NodeProto { Name = node.Name + "/gemmascope_norm", OpType = "SimplifiedLayerNormalization" };
        norm.Input.Add(tensor);
        norm.Input.Add(node.Input[2]);
        norm.Output.Add(node.Output[0]);
        var eps = node.Attribute.FirstOrDefault(a => a.Name == "epsilon");
        norm.Attribute.Add(new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = eps?.F ?? 1e-5f });
        norm.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = -1 });
        norm.Attribute.Add(new AttributeProto { Name = "stash_type", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        if (node.Output.Skip(1).Take(2).Any(o => o.Length > 0))
        {
            throw new NotSupportedException($"Node '{node.Name}' exposes its mean/inv-std outputs; cannot split it.");
        }

        int at = g.G.Node.IndexOf(node);
        g.G.Node.RemoveAt(at);
        g.G.Node.Insert(at, norm);
        g.G.Node.Insert(at, add);
        g.Reindex();
    }

    /// <summary>Every reader of <paramref name="tensor"/> except <paramref name="except"/> now reads <paramref name="replacement"/>.</summary>
    public static void ReplaceUses(OnnxGraph g, string tensor, string replacement, IReadOnlyCollection<NodeProto> except)
    {
        foreach (var (node, index) in g.Consumers(tensor).ToList())
        {
            if (!except.Contains(node))
            {
                node.Input[index] = replacement;
            }
        }

        g.Reindex();
    }

    public static void AddInput(OnnxGraph g, string name, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) });
        }

        g.G.Input.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = Float, Shape = shape } } });
    }

    private static NodeProto Node(string op, string name, string[] inputs, string output)
    {
        var n = new NodeProto { Name = name, OpType = op };
        n.Input.Add(inputs);
        n.Output.Add(output);
        return n;
    }

    /// <summary>
    /// Inserts x̂ = JumpReLU-SAE(x) after <paramref name="tensor"/> and rewires its readers. The SAE tensors are graph
    /// inputs <c>{prefix}.W_enc</c> etc. Returns the names of the features tensor and of the spliced output.
    /// pre = x·W_enc + b_enc; f = Where(pre &gt; max(θ, 0), pre, 0) (the core's JumpReLU: pre &gt; θ and pre &gt; 0); [f' = f·keep + set]; x̂ = f'·W_dec + b_dec; [out = x̂ + (x − (f·W_dec + b_dec))];
    /// [out = Where(apply, out, x)].
    /// </summary>
    public static (string Features, string Output) InsertSae(OnnxGraph g, string tensor, string prefix, int dIn, int dSae, bool clamp, bool errorTerm, bool gated)
    {
        AddInput(g, prefix + ".W_enc", dIn, dSae);
        AddInput(g, prefix + ".b_enc", dSae);
        AddInput(g, prefix + ".threshold", dSae);
        AddInput(g, prefix + ".W_dec", dSae, dIn);
        AddInput(g, prefix + ".b_dec", dIn);
        string zero = prefix + ".zero";
        g.G.Initializer.Add(new TensorProto { Name = zero, DataType = Float, FloatData = { 0f } });
        var nodes = new List<NodeProto>
        {
            Node("MatMul", prefix + "/enc/MatMul", [tensor, prefix + ".W_enc"], prefix + "/enc/MatMul/output_0"),
            Node("Add", prefix + "/enc/Add", [prefix + "/enc/MatMul/output_0", prefix + ".b_enc"], prefix + "/pre"),
            // pre > θ and pre > 0 is pre > max(θ, 0): one Max on the [d_sae] thresholds instead of a second mask per token.
            Node("Max", prefix + "/jump/Max", [prefix + ".threshold", zero], prefix + "/jump/threshold"),
            Node("Greater", prefix + "/jump/Greater", [prefix + "/pre", prefix + "/jump/threshold"], prefix + "/jump/mask"),
            Node("Where", prefix + "/jump/Where", [prefix + "/jump/mask", prefix + "/pre", zero], prefix + "/features"),
        };
        string f = prefix + "/features";
        string decodeFrom = f;
        if (clamp)
        {
            AddInput(g, prefix + ".clamp_keep", dSae);
            AddInput(g, prefix + ".clamp_set", dSae);
            nodes.Add(Node("Mul", prefix + "/clamp/Mul", [f, prefix + ".clamp_keep"], prefix + "/clamp/Mul/output_0"));
            nodes.Add(Node("Add", prefix + "/clamp/Add", [prefix + "/clamp/Mul/output_0", prefix + ".clamp_set"], prefix + "/clamped"));
            decodeFrom = prefix + "/clamped";
        }

        nodes.Add(Node("MatMul", prefix + "/dec/MatMul", [decodeFrom, prefix + ".W_dec"], prefix + "/dec/MatMul/output_0"));
        nodes.Add(Node("Add", prefix + "/dec/Add", [prefix + "/dec/MatMul/output_0", prefix + ".b_dec"], prefix + "/reconstruction"));
        string output = prefix + "/reconstruction";
        if (errorTerm)
        {
            string clean = output;
            if (clamp)
            {
                nodes.Add(Node("MatMul", prefix + "/err/MatMul", [f, prefix + ".W_dec"], prefix + "/err/MatMul/output_0"));
                nodes.Add(Node("Add", prefix + "/err/Add", [prefix + "/err/MatMul/output_0", prefix + ".b_dec"], prefix + "/err/reconstruction"));
                clean = prefix + "/err/reconstruction";
            }

            nodes.Add(Node("Sub", prefix + "/err/Sub", [tensor, clean], prefix + "/error"));
            nodes.Add(Node("Add", prefix + "/out", [output, prefix + "/error"], prefix + "/output"));
            output = prefix + "/output";
        }

        if (gated)
        {
            // {prefix}.apply [batch, seq, 1] (bool): positions where the splice applies; elsewhere (BOS) x passes unchanged
            // and the reported features are 0.
            var apply = new ValueInfoProto
            {
                Name = prefix + ".apply",
                Type = new TypeProto
                {
                    TensorType = new TypeProto.Types.Tensor
                    {
                        ElemType = (int)TensorProto.Types.DataType.Bool,
                        Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimParam = "batch_size" }, new TensorShapeProto.Types.Dimension { DimParam = "sequence_length" }, new TensorShapeProto.Types.Dimension { DimValue = 1 } } },
                    },
                },
            };
            g.G.Input.Add(apply);
            nodes.Add(Node("Where", prefix + "/gate/Where", [prefix + ".apply", output, tensor], prefix + "/gated"));
            nodes.Add(Node("Where", prefix + "/gate/WhereFeatures", [prefix + ".apply", f, zero], prefix + "/gated_features"));
            output = prefix + "/gated";
            f = prefix + "/gated_features";
        }

        InsertAfter(g, tensor, nodes);
        ReplaceUses(g, tensor, output, nodes);
        return (f, output);
    }

    /// <summary>Inserts out = x + v after <paramref name="tensor"/> (v a graph input [d]) and rewires its readers.</summary>
    public static string InsertSteer(OnnxGraph g, string tensor, string prefix, int width)
    {
        AddInput(g, prefix + ".vector", width);
        var add = Node("Add", prefix + "/Add", [tensor, prefix + ".vector"], prefix + "/output");
        InsertAfter(g, tensor, [add]);
        ReplaceUses(g, tensor, add.Output[0], [add]);
        return add.Output[0];
    }

    /// <summary>Inserts <paramref name="name"/> = Identity(<paramref name="tensor"/>) and rewires the tensor's readers to it.</summary>
    public static string InsertIdentity(OnnxGraph g, string tensor, string name)
    {
        var node = Node("Identity", name, [tensor], name);
        InsertAfter(g, tensor, [node]);
        ReplaceUses(g, tensor, name, [node]);
        return name;
    }

    /// <summary>Readers of <paramref name="tensor"/> now read a new graph input <paramref name="inputName"/> [batch, seq, width].</summary>
    public static void Cut(OnnxGraph g, string tensor, string inputName)
    {
        AddInput(g, inputName, "batch_size", "sequence_length", "width");
        ReplaceUses(g, tensor, inputName, []);
    }

    /// <summary>Keeps only the nodes needed for the graph outputs, and only the inputs and initializers they read.</summary>
    public static void Prune(OnnxGraph g)
    {
        var needed = new HashSet<string>(g.G.Output.Select(o => o.Name), StringComparer.Ordinal);
        var keep = new bool[g.G.Node.Count];
        for (int i = g.G.Node.Count - 1; i >= 0; i--)
        {
            var n = g.G.Node[i];
            if (n.Output.Any(needed.Contains))
            {
                keep[i] = true;
                foreach (var input in n.Input)
                {
                    needed.Add(input);
                }
            }
        }

        for (int i = g.G.Node.Count - 1; i >= 0; i--)
        {
            if (!keep[i])
            {
                g.G.Node.RemoveAt(i);
            }
        }

        for (int i = g.G.Input.Count - 1; i >= 0; i--)
        {
            if (!needed.Contains(g.G.Input[i].Name))
            {
                g.G.Input.RemoveAt(i);
            }
        }

        for (int i = g.G.Initializer.Count - 1; i >= 0; i--)
        {
            if (!needed.Contains(g.G.Initializer[i].Name))
            {
                g.G.Initializer.RemoveAt(i);
            }
        }

        g.Reindex();
    }

    /// <summary>Sets the graph outputs to exactly <paramref name="names"/> (float32 outputs are added as needed).</summary>
    public static void SetOutputs(OnnxGraph g, IEnumerable<string> names)
    {
        var keep = new HashSet<string>(names, StringComparer.Ordinal);
        for (int i = g.G.Output.Count - 1; i >= 0; i--)
        {
            if (!keep.Contains(g.G.Output[i].Name))
            {
                g.G.Output.RemoveAt(i);
            }
        }

        foreach (var n in keep)
        {
            if (!g.G.Output.Any(o => o.Name == n))
            {
                // a "/gemmascope_cast_f32" name asks for the float32 Cast of its source tensor
                const string suffix = "/gemmascope_cast_f32";
                g.AddFloatOutput(n.EndsWith(suffix, StringComparison.Ordinal) ? n[..^suffix.Length] : n);
            }
        }
    }

    // Nodes stay topologically sorted: the new ones go right after the producer of the tensor they read.
    private static void InsertAfter(OnnxGraph g, string tensor, IReadOnlyList<NodeProto> nodes)
    {
        int at = g.Producer(tensor) is { } p ? g.G.Node.IndexOf(p.Node) + 1 : 0;
        for (int i = 0; i < nodes.Count; i++)
        {
            g.G.Node.Insert(at + i, nodes[i]);
        }

        g.Reindex();
    }
}
