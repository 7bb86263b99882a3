using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Onnx;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// The prefill baseline: an ONNX graph of only the matrix products of a Gemma 2 forward at T tokens, each fed from its
/// own graph input, so ORT times the GEMMs alone with nothing between them. Per layer: q, k, v, o, gate, up, down
/// (<c>com.microsoft.FusedMatMul</c> with transB = 1, the op the model's builder uses, over the [out, in] safetensors
/// weights, which are external data pointing into the
/// checkpoint's shards: the same bytes the model reads), the attention scores Q·Kᵀ and the weighted sum P·V as batched
/// MatMuls over the 8 query heads; then the tied LM head x·Eᵀ (256000 × 2304). At T = 1 the same graph streams every
/// weight once: ORT's own GEMV rate over the decode's weights.
/// </summary>
internal static class GemmGraph
{
    public static string Write(string checkpoint)
    {
        string path = Path.Combine(checkpoint, "bench-gemms-only.onnx");
        var index = ReadIndex(checkpoint);
        int layers = index.Keys.Count(k => k.EndsWith(".self_attn.q_proj.weight", StringComparison.Ordinal));
        var g = new GraphProto { Name = "gemms_only" };
        const int D = CheckpointGenerator.DModel, H = CheckpointGenerator.Heads, Hd = CheckpointGenerator.HeadDim;
        g.Input.Add(Value("x_d", "T", D));
        g.Input.Add(Value("x_z", "T", H * Hd));
        g.Input.Add(Value("x_ff", "T", CheckpointGenerator.DFf));
        g.Input.Add(Value3("q", H, "T", Hd));
        g.Input.Add(Value3("kt", H, Hd, "T"));
        g.Input.Add(Value3("p", H, "T", "T"));
        g.Input.Add(Value3("v", H, "T", Hd));
        for (int l = 0; l < layers; l++)
        {
            string pre = $"model.layers.{l}.";
            foreach (var (w, x) in new[] { ("self_attn.q_proj", "x_d"), ("self_attn.k_proj", "x_d"), ("self_attn.v_proj", "x_d"), ("self_attn.o_proj", "x_z"),
                ("mlp.gate_proj", "x_d"), ("mlp.up_proj", "x_d"), ("mlp.down_proj", "x_ff") })
            {
                AddGemm(g, index, checkpoint, pre + w + ".weight", x, $"y{l}_{w}");
            }

            g.Node.Add(Node("MatMul", ["q", "kt"], $"y{l}_scores"));
            g.Node.Add(Node("MatMul", ["p", "v"], $"y{l}_pv"));
            g.Output.Add(new ValueInfoProto { Name = $"y{l}_scores" });
            g.Output.Add(new ValueInfoProto { Name = $"y{l}_pv" });
        }

        AddGemm(g, index, checkpoint, "model.embed_tokens.weight", "x_d", "y_lm_head");
        var model = new ModelProto { IrVersion = 8, ProducerName = "GemmaScope.Model.Benchmarks", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    public static Dictionary<string, (string File, string Dtype, long[] Shape, long Offset, long Length)> ReadIndex(string checkpoint)
    {
        var result = new Dictionary<string, (string, string, long[], long, long)>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(checkpoint, "*.safetensors").Order(StringComparer.Ordinal))
        {
            using var fs = File.OpenRead(file);
            var len = new byte[8];
            fs.ReadExactly(len);
            long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(len);
            var header = new byte[n];
            fs.ReadExactly(header);
            using var doc = JsonDocument.Parse(header);
            foreach (var t in doc.RootElement.EnumerateObject())
            {
                if (t.Name == "__metadata__")
                {
                    continue;
                }

                var offs = t.Value.GetProperty("data_offsets");
                long begin = offs[0].GetInt64(), end = offs[1].GetInt64();
                result[t.Name] = (Path.GetFileName(file), t.Value.GetProperty("dtype").GetString()!,
                    [.. t.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64())], 8 + n + begin, end - begin);
            }
        }

        return result;
    }

    private static void AddGemm(GraphProto g, Dictionary<string, (string File, string Dtype, long[] Shape, long Offset, long Length)> index, string checkpoint, string weight, string x, string y)
    {
        var (file, dtype, shape, offset, length) = index[weight];
        if (dtype != "F32")
        {
            throw new InvalidDataException($"The GEMM baseline reads fp32 weights; '{weight}' in '{Path.Combine(checkpoint, file)}' is {dtype}.");
        }

        var t = new TensorProto { Name = weight, DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        t.Dims.AddRange(shape);
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = file });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(CultureInfo.InvariantCulture) });
        t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(CultureInfo.InvariantCulture) });
        g.Initializer.Add(t);
        var node = Node("FusedMatMul", [x, weight], y);
        node.Domain = "com.microsoft";
        node.Attribute.Add(new AttributeProto { Name = "transB", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        g.Node.Add(node);
        g.Output.Add(new ValueInfoProto { Name = y });
    }

    private static NodeProto Node(string op, string[] inputs, string output)
    {
        var n = new NodeProto { OpType = op, Name = output };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        return n;
    }

    private static ValueInfoProto Value(string name, string rows, long cols) => Value3(name, rows, cols);

    private static ValueInfoProto Value3(string name, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, CultureInfo.InvariantCulture) });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
