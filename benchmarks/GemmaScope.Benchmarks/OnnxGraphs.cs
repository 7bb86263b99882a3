using System.Text;

namespace GemmaScope.Benchmarks;

/// <summary>
/// The ORT baselines as ONNX models built in code with a minimal protobuf writer (only the ModelProto fields used:
/// ir_version 1, graph 7, opset_import 8; GraphProto node 1, initializer 5, input 11, output 12; NodeProto input 1,
/// output 2, op_type 4, attribute 5, domain 7; AttributeProto name 1, i 3, type 20; TensorProto dims 1, data_type 2, name 8, raw_data 9; ValueInfoProto name 1, type 2).
/// </summary>
internal static class OnnxGraphs
{
    private const int Float = 1;

    /// <summary>f = Where(Greater(x·W + b, θ), x·W + b, 0), x: [N, dIn].</summary>
    public static byte[] JumpReLU(float[] wEnc, float[] bEnc, float[] threshold, int dIn, int dSae)
    {
        var g = new ProtoWriter();
        g.Message(1, Node(["x", "W_enc"], ["xw"], "MatMul"));
        g.Message(1, Node(["xw", "b_enc"], ["pre"], "Add"));
        g.Message(1, Node(["pre", "threshold"], ["mask"], "Greater"));
        g.Message(1, Node(["mask", "pre", "zero"], ["f"], "Where"));
        g.String(2, "jumprelu");
        g.Message(5, Tensor("W_enc", [dIn, dSae], wEnc));
        g.Message(5, Tensor("b_enc", [dSae], bEnc));
        g.Message(5, Tensor("threshold", [dSae], threshold));
        g.Message(5, Tensor("zero", [], [0f]));
        g.Message(11, Value("x", "N", dIn));
        g.Message(12, Value("f", "N", dSae));
        return Model(g);
    }

    /// <summary>y = x·W with W [rows, cols] an initializer, x: [N, rows].</summary>
    public static byte[] MatMul(float[] w, int rows, int cols)
    {
        var g = new ProtoWriter();
        g.Message(1, Node(["x", "W"], ["y"], "MatMul"));
        g.String(2, "matmul");
        g.Message(5, Tensor("W", [rows, cols], w));
        g.Message(11, Value("x", "N", rows));
        g.Message(12, Value("y", "N", cols));
        return Model(g);
    }

    /// <summary>
    /// y = x·Wᵀ with W [rows, cols] ([out, in], as a checkpoint stores it) an initializer: com.microsoft FusedMatMul
    /// with transB = 1, x: [N, cols].
    /// </summary>
    public static byte[] MatMulTransB(float[] w, int rows, int cols)
    {
        var node = Node(["x", "W"], ["y"], "FusedMatMul");
        var transB = new ProtoWriter();
        transB.String(1, "transB");
        transB.Varint(3, 1);
        transB.Varint(20, 2); // AttributeProto.INT
        node.Message(5, transB);
        node.String(7, "com.microsoft");
        var g = new ProtoWriter();
        g.Message(1, node);
        g.String(2, "matmul_transb");
        g.Message(5, Tensor("W", [rows, cols], w));
        g.Message(11, Value("x", "N", cols));
        g.Message(12, Value("y", "N", rows));
        return Model(g, msDomain: true);
    }

    private static byte[] Model(ProtoWriter graph, bool msDomain = false)
    {
        var m = new ProtoWriter();
        m.Varint(1, 8);
        m.String(2, "GemmaScope.Benchmarks");
        m.Message(7, graph);
        var opset = new ProtoWriter();
        opset.String(1, "");
        opset.Varint(2, 17);
        m.Message(8, opset);
        if (msDomain)
        {
            var ms = new ProtoWriter();
            ms.String(1, "com.microsoft");
            ms.Varint(2, 1);
            m.Message(8, ms);
        }

        return m.ToArray();
    }

    private static ProtoWriter Node(string[] inputs, string[] outputs, string op)
    {
        var n = new ProtoWriter();
        foreach (var i in inputs)
        {
            n.String(1, i);
        }

        foreach (var o in outputs)
        {
            n.String(2, o);
        }

        n.String(3, op + "_" + outputs[0]);
        n.String(4, op);
        return n;
    }

    private static ProtoWriter Tensor(string name, long[] dims, float[] data)
    {
        var t = new ProtoWriter();
        foreach (var d in dims)
        {
            t.Varint(1, (ulong)d);
        }

        t.Varint(2, Float);
        t.String(8, name);
        t.Bytes(9, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()));
        return t;
    }

    private static ProtoWriter Value(string name, string batchParam, long last)
    {
        var d0 = new ProtoWriter();
        d0.String(2, batchParam);
        var d1 = new ProtoWriter();
        d1.Varint(1, (ulong)last);
        var shape = new ProtoWriter();
        shape.Message(1, d0);
        shape.Message(1, d1);
        var tensor = new ProtoWriter();
        tensor.Varint(1, Float);
        tensor.Message(2, shape);
        var type = new ProtoWriter();
        type.Message(1, tensor);
        var v = new ProtoWriter();
        v.String(1, name);
        v.Message(2, type);
        return v;
    }

    private sealed class ProtoWriter
    {
        private readonly MemoryStream _s = new();

        public void Varint(int field, ulong value)
        {
            Raw(((ulong)field << 3) | 0);
            Raw(value);
        }

        public void String(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));

        public void Message(int field, ProtoWriter m)
        {
            if (!m._s.TryGetBuffer(out var seg))
            {
                throw new InvalidOperationException("unreachable: MemoryStream buffer not exposed");
            }

            Bytes(field, seg.AsSpan());
        }

        public void Bytes(int field, ReadOnlySpan<byte> b)
        {
            Raw(((ulong)field << 3) | 2);
            Raw((ulong)b.Length);
            _s.Write(b);
        }

        public byte[] ToArray() => _s.ToArray();

        private void Raw(ulong v)
        {
            while (v >= 0x80)
            {
                _s.WriteByte((byte)(v | 0x80));
                v >>= 7;
            }

            _s.WriteByte((byte)v);
        }
    }
}
