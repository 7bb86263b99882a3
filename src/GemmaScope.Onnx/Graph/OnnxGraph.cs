using Google.Protobuf;
using Onnx;

namespace GemmaScope.Onnx.Graph;

/// <summary>
/// An ONNX model's protobuf with producer/consumer indexes, edited in memory.
/// Initializers stored as external data stay references (location/offset/length), so editing never reads or copies
/// the weights; only the graph structure (and weights embedded in the file, for small models) is held.
/// Not thread-safe: edit a <see cref="Clone"/> per session.
/// </summary>
internal sealed class OnnxGraph
{
    private readonly Dictionary<string, (NodeProto Node, int Index)> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(NodeProto Node, int Index)>> _consumers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _initializers = new(StringComparer.Ordinal);

    private OnnxGraph(ModelProto model, string path)
    {
        Model = model;
        Path = path;
        Reindex();
    }

    public ModelProto Model { get; }

    public GraphProto G => Model.Graph;

    /// <summary>The file the graph was read from (used in error messages and as the external-data folder).</summary>
    public string Path { get; }

    public static OnnxGraph Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"ONNX model file '{path}' does not exist.", path);
        }

        ModelProto model;
        try
        {
            using var stream = File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxGraphException(path, null, "not an ONNX model (protobuf parse failed)", null, e.Message, e);
        }

        if (model.Graph is null || model.Graph.Node.Count == 0)
        {
            throw new OnnxGraphException(path, null, "not an ONNX model: it has no graph nodes");
        }

        return new OnnxGraph(model, path);
    }

    /// <summary>Wraps a graph built in memory; <paramref name="path"/> names it in messages (the checkpoint folder).</summary>
    public static OnnxGraph FromModel(ModelProto model, string path) => new(model, path);

    /// <summary>A deep copy to edit; external-data references are copied as references, weights are not read.</summary>
    public OnnxGraph Clone() => new(Model.Clone(), Path);

    public void Reindex()
    {
        _producers.Clear();
        _consumers.Clear();
        _initializers.Clear();
        foreach (var init in G.Initializer)
        {
            _initializers.Add(init.Name);
        }

        foreach (var node in G.Node)
        {
            for (int i = 0; i < node.Output.Count; i++)
            {
                if (node.Output[i].Length > 0)
                {
                    _producers[node.Output[i]] = (node, i);
                }
            }

            for (int i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i].Length == 0)
                {
                    continue;
                }

                if (!_consumers.TryGetValue(node.Input[i], out var list))
                {
                    _consumers[node.Input[i]] = list = [];
                }

                list.Add((node, i));
            }
        }
    }

    public bool IsInitializer(string tensor) => _initializers.Contains(tensor);

    /// <summary>An initializer or the output of a Constant node.</summary>
    public bool IsConstant(string tensor) =>
        _initializers.Contains(tensor) || (_producers.TryGetValue(tensor, out var p) && p.Node.OpType == "Constant");

    public bool IsGraphInput(string tensor)
    {
        foreach (var i in G.Input)
        {
            if (i.Name == tensor)
            {
                return true;
            }
        }

        return false;
    }

    public (NodeProto Node, int Index)? Producer(string tensor) =>
        _producers.TryGetValue(tensor, out var p) ? p : null;

    public IReadOnlyList<(NodeProto Node, int Index)> Consumers(string tensor) =>
        _consumers.TryGetValue(tensor, out var list) ? list : [];

    public bool HasTensor(string tensor) =>
        _producers.ContainsKey(tensor) || _initializers.Contains(tensor) || IsGraphInput(tensor);

    public NodeProto? NodeByName(string name)
    {
        foreach (var node in G.Node)
        {
            if (node.Name == name)
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>The ONNX element type of a tensor when the graph declares it; Float when it does not.</summary>
    public int ElementType(string tensor)
    {
        foreach (var list in new[] { G.ValueInfo, G.Input, G.Output })
        {
            foreach (var v in list)
            {
                if (v.Name == tensor && v.Type?.TensorType is { ElemType: > 0 } t)
                {
                    return t.ElemType;
                }
            }
        }

        return (int)TensorProto.Types.DataType.Float;
    }

    /// <summary>Makes sure output <paramref name="index"/> of <paramref name="nodeName"/> exists and is named <paramref name="tensor"/>.</summary>
    public void EnsureNodeOutput(string nodeName, int index, string tensor)
    {
        var node = NodeByName(nodeName) ?? throw new InvalidOperationException($"Node '{nodeName}' is not in '{Path}'.");
        while (node.Output.Count <= index)
        {
            node.Output.Add(string.Empty);
        }

        if (node.Output[index].Length == 0)
        {
            node.Output[index] = tensor;
        }
        else if (node.Output[index] != tensor)
        {
            throw new InvalidOperationException($"Output {index} of node '{nodeName}' in '{Path}' is '{node.Output[index]}', expected '{tensor}'.");
        }

        _producers[tensor] = (node, index);
    }

    /// <summary>The output name <see cref="AddFloatOutput"/> gives a tensor: itself when float32, else the name of its float32 Cast.</summary>
    public string FloatOutputName(string tensor) =>
        ElementType(tensor) == (int)TensorProto.Types.DataType.Float ? tensor : tensor + "/gemmascope_cast_f32";

    /// <summary>Exposes a tensor as a float32 graph output (a Cast is added when the graph holds it in another type).</summary>
    /// <returns>The output name to fetch.</returns>
    public string AddFloatOutput(string tensor)
    {
        string name = FloatOutputName(tensor);
        if (name != tensor && Producer(name) is null)
        {
            var cast = new NodeProto { Name = name + "/Cast", OpType = "Cast" };
            cast.Input.Add(tensor);
            cast.Output.Add(name);
            cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float });
            G.Node.Add(cast);
            _producers[name] = (cast, 0);
        }

        foreach (var o in G.Output)
        {
            if (o.Name == name)
            {
                return name;
            }
        }

        G.Output.Add(new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
        });
        return name;
    }

    public byte[] ToBytes() => Model.ToByteArray();
}
