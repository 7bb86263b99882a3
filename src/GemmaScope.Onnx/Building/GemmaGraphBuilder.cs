using System.Globalization;
using GemmaScope.Models;
using Google.Protobuf;
using Onnx;

namespace GemmaScope.Onnx.Building;

/// <summary>
/// Builds the Gemma forward as an ONNX graph from a <see cref="GemmaArchitecture"/>, with Hugging Face's semantics:
/// h = embed[ids] · (float)√d; per layer h += post_attn_norm(attn(input_norm(h))); h += post_ff_norm(down(gelu_tanh(gate(x)) · up(x)))
/// with x = pre_ff_norm(h); logits = softcap(final_norm(h) · embedᵀ). RMSNorm(x) = x / √(mean(x²) + eps) · (1 + w) in float32.
/// Attention: [Gemma 3: RMSNorm (1 + w) of each q and k head over head_dim], RoPE (rotate-half; base and linear position
/// scale per layer), grouped-query heads, scores · query_pre_attn_scalar^-½, [Gemma 2: soft-capped], causal (+ window on
/// sliding layers) and key-padding masks, softmax in float32.
/// Hook points are tensors named with TransformerLens names (<c>blocks.{l}.hook_resid_pre</c>, …), so hook resolution is
/// a name lookup. Projection weights stay [out, in] as stored and are read by <c>FusedMatMul(transB = 1)</c>: no
/// transposed copy is made in the graph (ONNX Runtime's prepacking packs them once per shared container).
/// Inputs: input_ids, attention_mask [batch, past + seq], position_ids, past_key_values.{l}.key/value; outputs: logits,
/// present.{l}.key/value ([batch, kv_heads, past + seq, head_dim], keys after RoPE).
/// </summary>
internal sealed class GemmaGraphBuilder
{
    private const int F32 = (int)TensorProto.Types.DataType.Float;
    private const int I64 = (int)TensorProto.Types.DataType.Int64;
    private const int Bool = (int)TensorProto.Types.DataType.Bool;

    private readonly GemmaArchitecture _a;
    private readonly GraphProto _g = new() { Name = "gemma" };
    private readonly HashSet<string> _inits = new(StringComparer.Ordinal);
    private readonly Func<string, TensorProto> _weight;
    private readonly Func<string, float[]> _small;

    /// <param name="arch">The architecture.</param>
    /// <param name="weight">Declares a large weight (embedding, projections) by its checkpoint name; its data is bound outside the graph.</param>
    /// <param name="small">The float32 values of a small weight (norm gains), embedded in the graph.</param>
    public GemmaGraphBuilder(GemmaArchitecture arch, Func<string, TensorProto> weight, Func<string, float[]> small)
    {
        _a = arch;
        _weight = weight;
        _small = small;
    }

    public ModelProto Build()
    {
        var a = _a;
        AddInput("input_ids", I64, "batch_size", "sequence_length");
        AddInput("attention_mask", I64, "batch_size", "total_sequence_length");
        AddInput("position_ids", I64, "batch_size", "sequence_length");
        for (int l = 0; l < a.Layers; l++)
        {
            AddInput($"past_key_values.{l}.key", F32, "batch_size", a.KvHeads, "past_sequence_length", a.HeadDim);
            AddInput($"past_key_values.{l}.value", F32, "batch_size", a.KvHeads, "past_sequence_length", a.HeadDim);
        }

        AddOutput("logits", F32, "batch_size", "sequence_length", a.Vocab);
        for (int l = 0; l < a.Layers; l++)
        {
            AddOutput($"present.{l}.key", F32, "batch_size", a.KvHeads, "total_sequence_length", a.HeadDim);
            AddOutput($"present.{l}.value", F32, "batch_size", a.KvHeads, "total_sequence_length", a.HeadDim);
        }

        // Embedding × √d, the scale rounded to the activation dtype (float32) first, as Hugging Face does.
        string embed = Weight("model.embed_tokens.weight");
        Op("Gather", "/model/embed_tokens/Gather", [embed, "input_ids"], "/model/embed_tokens/Gather/output_0");
        Op("Mul", "/model/embed_tokens/Mul", ["/model/embed_tokens/Gather/output_0", Scalar("/model/constants/embed_scale", (float)Math.Sqrt(a.DModel))], HookPoint.Embed.Name);

        var masks = Masks();
        var rope = new Dictionary<(double Theta, double Scale), (string Cos, string Sin)>();
        string resid = HookPoint.Embed.Name;
        for (int l = 0; l < a.Layers; l++)
        {
            var kind = a.LayerKinds[l];
            if (!rope.TryGetValue((kind.RopeTheta, kind.RopePositionScale), out var cs))
            {
                rope[(kind.RopeTheta, kind.RopePositionScale)] = cs = Rope(kind.RopeTheta, kind.RopePositionScale, rope.Count);
            }

            string mask = kind.SlidingWindow is { } w ? masks.Sliding(w) : masks.Global;
            resid = Layer(l, resid, cs, mask);
        }

        // The final norm split in two, as pre_feedforward_layernorm is: x / rms(x) before the (1 + w) gain is
        // TransformerLens's ln_final.hook_normalized; the gained vector feeds the LM head.
        string unitFinal = Op("SimplifiedLayerNormalization", "/model/norm/Normalize", [resid, Ones()], HookPoint.LnFinalNormalized.Name, "",
            ("epsilon", (float)a.RmsNormEps), ("axis", -1L), ("stash_type", 1L));
        string normed = Op("Mul", "/model/norm/Gain", [unitFinal, Gain("model.norm.weight")], "/model/norm/output_0");
        string raw = Op("FusedMatMul", "/lm_head/FusedMatMul", [normed, embed], "/lm_head/output_0", MsDomain, ("transB", 1L));
        if (a.FinalSoftcap is { } cap)
        {
            SoftCap("/lm_head/softcap", raw, cap, "logits");
        }
        else
        {
            Op("Identity", "/lm_head/Identity", [raw], "logits");
        }

        var model = new ModelProto
        {
            IrVersion = 9,
            ProducerName = "GemmaScope.NET checkpoint builder",
            Graph = _g,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 21 });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = MsDomain, Version = 1 });
        return model;
    }

    private const string MsDomain = "com.microsoft";

    private string Layer(int l, string residIn, (string Cos, string Sin) rope, string mask)
    {
        var a = _a;
        string s = $"/model/layers.{l}";
        string p = $"model.layers.{l}.";
        string pre = Op("Identity", $"{s}/hook_resid_pre", [residIn], HookPoint.ResidPre(l).Name);
        string x = Norm($"{s}/input_layernorm", pre, p + "input_layernorm.weight", $"{s}/input_layernorm/output_0");
        string z = Attention(l, x, rope, mask);
        string o = MatMulT($"{s}/self_attn/o_proj", z, p + "self_attn.o_proj.weight");
        string attnOut = Norm($"{s}/post_attention_layernorm", o, p + "post_attention_layernorm.weight", HookPoint.AttnOut(l).Name);
        string mid = Op("Add", $"{s}/residual_attn/Add", [pre, attnOut], HookPoint.ResidMid(l).Name);

        // pre_feedforward_layernorm split in two so the normalised vector before its (1 + w) gain is a tensor
        // (Gemma Scope transcoders read it: blocks.{l}.ln2.hook_normalized); after the gain it is the MLP's input
        // (Gemma Scope 2 transcoders read it: blocks.{l}.hook_mlp_in).
        string unit = Op("SimplifiedLayerNormalization", $"{s}/pre_feedforward_layernorm/Normalize", [mid, Ones()], HookPoint.Ln2Normalized(l).Name, "",
            ("epsilon", (float)a.RmsNormEps), ("axis", -1L), ("stash_type", 1L));
        string h = Op("Mul", $"{s}/pre_feedforward_layernorm/Gain", [unit, Gain(p + "pre_feedforward_layernorm.weight")], HookPoint.MlpIn(l).Name);
        string gate = MatMulT($"{s}/mlp/gate_proj", h, p + "mlp.gate_proj.weight");
        string up = MatMulT($"{s}/mlp/up_proj", h, p + "mlp.up_proj.weight");
        string act = Op("Gelu", $"{s}/mlp/act_fn/Gelu", [gate], $"{s}/mlp/act_fn/output_0", "", ("approximate", "tanh"));
        string prod = Op("Mul", $"{s}/mlp/Mul", [act, up], $"{s}/mlp/Mul/output_0");
        string down = MatMulT($"{s}/mlp/down_proj", prod, p + "mlp.down_proj.weight");
        string mlpOut = Norm($"{s}/post_feedforward_layernorm", down, p + "post_feedforward_layernorm.weight", HookPoint.MlpOut(l).Name);
        return Op("Add", $"{s}/residual_mlp/Add", [mid, mlpOut], HookPoint.ResidPost(l).Name);
    }

    // q: [B, T, H·D] → [B, KV, rep, T, D]; k, v: [B, T, KV·D] → [B, KV, T, D] (concatenated after the past: present).
    // Scores [B, KV, rep, T, S] = q · kᵀ by broadcasting over rep, so grouped keys are never repeated in memory.
    private string Attention(int l, string x, (string Cos, string Sin) rope, string mask)
    {
        var a = _a;
        string s = $"/model/layers.{l}/self_attn";
        string p = $"model.layers.{l}.self_attn.";
        int rep = a.Heads / a.KvHeads;
        string q = MatMulT($"{s}/q_proj", x, p + "q_proj.weight");
        string k = MatMulT($"{s}/k_proj", x, p + "k_proj.weight");
        string v = MatMulT($"{s}/v_proj", x, p + "v_proj.weight");
        q = Op("Reshape", $"{s}/q/Reshape", [q, Ints($"/model/constants/shape_q", [0, 0, a.KvHeads, rep, a.HeadDim])], $"{s}/q/Reshape/output_0");
        q = Op("Transpose", $"{s}/q/Transpose", [q], $"{s}/q/Transpose/output_0", "", ("perm", new long[] { 0, 2, 3, 1, 4 }));
        k = Op("Reshape", $"{s}/k/Reshape", [k, Ints($"/model/constants/shape_kv", [0, 0, a.KvHeads, a.HeadDim])], $"{s}/k/Reshape/output_0");
        k = Op("Transpose", $"{s}/k/Transpose", [k], $"{s}/k/Transpose/output_0", "", ("perm", new long[] { 0, 2, 1, 3 }));
        v = Op("Reshape", $"{s}/v/Reshape", [v, Ints($"/model/constants/shape_kv", [0, 0, a.KvHeads, a.HeadDim])], $"{s}/v/Reshape/output_0");
        if (a.QkNorm)
        {
            // Gemma 3: RMSNorm (1 + w) over head_dim of every query and key head, before RoPE (float32, as Hugging Face).
            q = Op("SimplifiedLayerNormalization", $"{s}/q_norm/SimplifiedLayerNormalization", [q, Gain(p + "q_norm.weight")], $"{s}/q_norm/output_0", "",
                ("epsilon", (float)a.RmsNormEps), ("axis", -1L), ("stash_type", 1L));
            k = Op("SimplifiedLayerNormalization", $"{s}/k_norm/SimplifiedLayerNormalization", [k, Gain(p + "k_norm.weight")], $"{s}/k_norm/output_0", "",
                ("epsilon", (float)a.RmsNormEps), ("axis", -1L), ("stash_type", 1L));
        }

        v = Op("Transpose", $"{s}/v/Transpose", [v], $"{s}/v/Transpose/output_0", "", ("perm", new long[] { 0, 2, 1, 3 }));

        // RoPE: cos/sin [B, T, D] → [B, 1, 1, T, D] for q, [B, 1, T, D] for k.
        string cos5 = Op("Unsqueeze", $"{s}/rope/cos5", [rope.Cos, Ints("/model/constants/axes_1_2", [1, 2])], $"{s}/rope/cos5/output_0");
        string sin5 = Op("Unsqueeze", $"{s}/rope/sin5", [rope.Sin, Ints("/model/constants/axes_1_2", [1, 2])], $"{s}/rope/sin5/output_0");
        string cos4 = Op("Unsqueeze", $"{s}/rope/cos4", [rope.Cos, Ints("/model/constants/axes_1", [1])], $"{s}/rope/cos4/output_0");
        string sin4 = Op("Unsqueeze", $"{s}/rope/sin4", [rope.Sin, Ints("/model/constants/axes_1", [1])], $"{s}/rope/sin4/output_0");
        q = ApplyRope($"{s}/q_rope", q, cos5, sin5);
        k = ApplyRope($"{s}/k_rope", k, cos4, sin4);

        string kAll = Op("Concat", $"{s}/k/Concat", [$"past_key_values.{l}.key", k], $"present.{l}.key", "", ("axis", 2L));
        string vAll = Op("Concat", $"{s}/v/Concat", [$"past_key_values.{l}.value", v], $"present.{l}.value", "", ("axis", 2L));
        string k5 = Op("Unsqueeze", $"{s}/k/Unsqueeze", [kAll, Ints("/model/constants/axes_2", [2])], $"{s}/k/Unsqueeze/output_0");
        string v5 = Op("Unsqueeze", $"{s}/v/Unsqueeze", [vAll, Ints("/model/constants/axes_2", [2])], $"{s}/v/Unsqueeze/output_0");
        string scores = Op("FusedMatMul", $"{s}/scores/FusedMatMul", [q, k5], $"{s}/scores/output_0", MsDomain,
            ("transB", 1L), ("alpha", (float)(1.0 / Math.Sqrt(a.QueryPreAttnScalar))));
        if (a.AttnSoftcap is { } cap)
        {
            scores = SoftCap($"{s}/softcap", scores, cap, $"{s}/softcap/output_0");
        }

        scores = Op("Add", $"{s}/mask/Add", [scores, mask], $"{s}/mask/output_0");
        string probs = Op("Softmax", $"{s}/Softmax", [scores], $"{s}/Softmax/output_0", "", ("axis", -1L));
        string z5 = Op("MatMul", $"{s}/z/MatMul", [probs, v5], $"{s}/z/MatMul/output_0");
        string zt = Op("Transpose", $"{s}/z/Transpose", [z5], $"{s}/z/Transpose/output_0", "", ("perm", new long[] { 0, 3, 1, 2, 4 }));
        return Op("Reshape", $"{s}/z/Reshape", [zt, Ints("/model/constants/shape_z", [0, 0, (long)a.Heads * a.HeadDim])], HookPoint.AttnZ(l).Name);
    }

    // x·cos + rotate_half(x)·sin, rotate_half(x) = concat(−x[D/2:], x[:D/2]).
    private string ApplyRope(string s, string x, string cos, string sin)
    {
        int half = _a.HeadDim / 2;
        string split = Ints("/model/constants/rope_split", [half, half]);
        var n = new NodeProto { Name = $"{s}/Split", OpType = "Split" };
        n.Input.Add(x);
        n.Input.Add(split);
        n.Output.Add($"{s}/x1");
        n.Output.Add($"{s}/x2");
        n.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = -1 });
        _g.Node.Add(n);
        string neg = Op("Neg", $"{s}/Neg", [$"{s}/x2"], $"{s}/Neg/output_0");
        string rot = Op("Concat", $"{s}/Concat", [neg, $"{s}/x1"], $"{s}/rotated", "", ("axis", -1L));
        string xc = Op("Mul", $"{s}/MulCos", [x, cos], $"{s}/MulCos/output_0");
        string rs = Op("Mul", $"{s}/MulSin", [rot, sin], $"{s}/MulSin/output_0");
        return Op("Add", $"{s}/Add", [xc, rs], $"{s}/output_0");
    }

    // cos, sin [B, T, D] of position_ids · inv_freq (float32, as Hugging Face: inv_freq = 1 / base^(2i/D), divided by the
    // factor of linear rope_scaling, which is the same as dividing the positions).
    private (string Cos, string Sin) Rope(double theta, double positionScale, int index)
    {
        int d = _a.HeadDim;
        var inv = new float[d / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            inv[i] = (float)(1.0 / Math.Pow(theta, (float)(2 * i) / d) / positionScale);
        }

        string s = $"/model/rotary_emb{(index == 0 ? "" : index.ToString(CultureInfo.InvariantCulture))}";
        string invName = Floats($"{s}/inv_freq", inv, inv.Length);
        string pos = Op("Cast", $"{s}/Cast", ["position_ids"], $"{s}/positions", "", ("to", (long)F32));
        string pos3 = Op("Unsqueeze", $"{s}/Unsqueeze", [pos, Ints("/model/constants/axes_m1", [-1])], $"{s}/positions3");
        string freqs = Op("Mul", $"{s}/Mul", [pos3, invName], $"{s}/freqs");
        string emb = Op("Concat", $"{s}/Concat", [freqs, freqs], $"{s}/emb", "", ("axis", -1L));
        return (Op("Cos", $"{s}/Cos", [emb], $"{s}/cos"), Op("Sin", $"{s}/Sin", [emb], $"{s}/sin"));
    }

    private sealed class MaskSet(GemmaGraphBuilder b, string global, string causal, string q, string k, string keep)
    {
        private readonly Dictionary<int, string> _sliding = [];

        public string Global => global;

        // A query at index i sees keys j with j ≤ i and i − j < window (Hugging Face: kv_idx > q_idx − window).
        public string Sliding(int window)
        {
            if (_sliding.TryGetValue(window, out var m))
            {
                return m;
            }

            string s = $"/model/mask/sliding{window}";
            string diff = b.Op("Sub", $"{s}/Sub", [q, k], $"{s}/diff");
            string inWin = b.Op("Less", $"{s}/Less", [diff, b.Ints($"{s}/window", [window], scalar: true)], $"{s}/in_window");
            string both = b.Op("And", $"{s}/And", [causal, inWin], $"{s}/allowed");
            string all = b.Op("And", $"{s}/AndKeep", [both, keep], $"{s}/allowed_kept");
            return _sliding[window] = b.Op("Where", $"{s}/Where", [all, b.Scalar("/model/constants/zero", 0f), b.Scalar("/model/constants/min", float.MinValue)], $"{s}/mask");
        }
    }

    // Additive masks [B, 1, 1, T, S] for the 5-D scores: 0 where a query may attend, float.MinValue elsewhere.
    // Query index = past + t (S − T + t), key index = j; padded keys (attention_mask 0) are never attended.
    private MaskSet Masks()
    {
        const string s = "/model/mask";
        string shapeM = Op("Shape", $"{s}/ShapeMask", ["attention_mask"], $"{s}/mask_shape");
        string shapeI = Op("Shape", $"{s}/ShapeIds", ["input_ids"], $"{s}/ids_shape");
        string total = Op("Gather", $"{s}/Total", [shapeM, Ints($"{s}/one", [1], scalar: true)], $"{s}/total", "", ("axis", 0L));
        string seq = Op("Gather", $"{s}/Seq", [shapeI, Ints($"{s}/one", [1], scalar: true)], $"{s}/seq", "", ("axis", 0L));
        string past = Op("Sub", $"{s}/Past", [total, seq], $"{s}/past");
        string zero = Ints($"{s}/zero_i", [0], scalar: true);
        string oneI = Ints($"{s}/one", [1], scalar: true);
        string kIdx = Op("Range", $"{s}/KeyRange", [zero, total, oneI], $"{s}/key_index");
        string qEnd = Op("Add", $"{s}/QueryEnd", [past, seq], $"{s}/query_end");
        string qIdx = Op("Range", $"{s}/QueryRange", [past, qEnd, oneI], $"{s}/query_index");
        string qCol = Op("Unsqueeze", $"{s}/QueryCol", [qIdx, Ints("/model/constants/axes_m1", [-1])], $"{s}/query_col");
        string causal = Op("LessOrEqual", $"{s}/Causal", [kIdx, qCol], $"{s}/causal");
        string keepB = Op("Cast", $"{s}/KeepCast", ["attention_mask"], $"{s}/keep_bool", "", ("to", (long)Bool));
        string keep = Op("Unsqueeze", $"{s}/KeepUnsqueeze", [keepB, Ints($"{s}/axes_keep", [1, 2, 3])], $"{s}/keep");
        string allowed = Op("And", $"{s}/GlobalAnd", [causal, keep], $"{s}/global_allowed");
        string global = Op("Where", $"{s}/GlobalWhere", [allowed, Scalar("/model/constants/zero", 0f), Scalar("/model/constants/min", float.MinValue)], $"{s}/global");
        return new MaskSet(this, global, causal, qCol, kIdx, keep);
    }

    private string SoftCap(string s, string x, double cap, string output)
    {
        string c = Scalar($"/model/constants/cap_{cap.ToString("R", CultureInfo.InvariantCulture)}", (float)cap);
        string div = Op("Div", $"{s}/Div", [x, c], $"{s}/Div/output_0");
        string tanh = Op("Tanh", $"{s}/Tanh", [div], $"{s}/Tanh/output_0");
        return Op("Mul", $"{s}/Mul", [tanh, c], output);
    }

    // RMSNorm with gain (1 + w), computed in float32 (the gain is folded here, in float32, as Hugging Face computes it).
    private string Norm(string s, string x, string weight, string output) =>
        Op("SimplifiedLayerNormalization", $"{s}/SimplifiedLayerNormalization", [x, Gain(weight)], output, "",
            ("epsilon", (float)_a.RmsNormEps), ("axis", -1L), ("stash_type", 1L));

    private string Gain(string weight)
    {
        string name = weight + ".plus_one";
        if (_inits.Contains(name))
        {
            return name;
        }

        var w = _small(weight);
        var g = new float[w.Length];
        for (int i = 0; i < w.Length; i++)
        {
            g[i] = 1f + w[i];
        }

        return Floats(name, g, g.Length);
    }

    private string Ones()
    {
        const string name = "/model/constants/ones_d";
        if (_inits.Contains(name))
        {
            return name;
        }

        var ones = new float[_a.DModel];
        Array.Fill(ones, 1f);
        return Floats(name, ones, ones.Length);
    }

    private string MatMulT(string s, string x, string weight) =>
        Op("FusedMatMul", $"{s}/FusedMatMul", [x, Weight(weight)], $"{s}/output_0", MsDomain, ("transB", 1L));

    private string Weight(string name)
    {
        if (_inits.Add(name))
        {
            var t = _weight(name);
            t.Name = name;
            _g.Initializer.Add(t);
        }

        return name;
    }

    private string Floats(string name, float[] values, params long[] dims)
    {
        if (_inits.Add(name))
        {
            var t = new TensorProto { Name = name, DataType = F32, RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan())) };
            t.Dims.Add(dims);
            _g.Initializer.Add(t);
        }

        return name;
    }

    private string Scalar(string name, float value)
    {
        if (_inits.Add(name))
        {
            var t = new TensorProto { Name = name, DataType = F32 };
            t.FloatData.Add(value);
            _g.Initializer.Add(t);
        }

        return name;
    }

    private string Ints(string name, long[] values, bool scalar = false)
    {
        if (_inits.Add(name))
        {
            var t = new TensorProto { Name = name, DataType = I64 };
            t.Int64Data.Add(values);
            if (!scalar)
            {
                t.Dims.Add(values.Length);
            }

            _g.Initializer.Add(t);
        }

        return name;
    }

    private string Op(string op, string name, string[] inputs, string output, string domain = "", params (string Name, object Value)[] attrs)
    {
        var n = new NodeProto { Name = name, OpType = op, Domain = domain };
        n.Input.Add(inputs);
        n.Output.Add(output);
        foreach (var (an, av) in attrs)
        {
            n.Attribute.Add(av switch
            {
                long i => new AttributeProto { Name = an, Type = AttributeProto.Types.AttributeType.Int, I = i },
                float f => new AttributeProto { Name = an, Type = AttributeProto.Types.AttributeType.Float, F = f },
                string str => new AttributeProto { Name = an, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(str) },
                long[] ints => new AttributeProto { Name = an, Type = AttributeProto.Types.AttributeType.Ints, Ints = { ints } },
                _ => throw new ArgumentException($"attribute {an}"),
            });
        }

        _g.Node.Add(n);
        return output;
    }

    private static TypeProto Type(int elem, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, CultureInfo.InvariantCulture) });
        }

        return new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elem, Shape = shape } };
    }

    private void AddInput(string name, int elem, params object[] dims) => _g.Input.Add(new ValueInfoProto { Name = name, Type = Type(elem, dims) });

    private void AddOutput(string name, int elem, params object[] dims) => _g.Output.Add(new ValueInfoProto { Name = name, Type = Type(elem, dims) });
}
