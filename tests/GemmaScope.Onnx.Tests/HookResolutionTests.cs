using GemmaScope.Onnx;
using Google.Protobuf;
using Onnx;

namespace GemmaScope.Onnx.Tests;

public sealed class HookResolutionTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Theory]
    [InlineData("blocks.0.hook_resid_pre", 0, HookKind.ResidPre)]
    [InlineData("blocks.12.hook_resid_mid", 12, HookKind.ResidMid)]
    [InlineData("blocks.20.hook_resid_post", 20, HookKind.ResidPost)]
    [InlineData("blocks.3.hook_attn_out", 3, HookKind.AttnOut)]
    [InlineData("blocks.3.hook_mlp_out", 3, HookKind.MlpOut)]
    [InlineData("blocks.7.attn.hook_z", 7, HookKind.AttnZ)]
    public void HookNamesRoundTrip(string name, int layer, HookKind kind)
    {
        var p = HookPoint.Parse(name);
        Assert.Equal(layer, p.Layer);
        Assert.Equal(kind, p.Kind);
        Assert.Equal(name, p.Name);
        Assert.Equal(p, HookPoint.Create(layer, kind));
    }

    [Theory]
    [InlineData("blocks.x.hook_resid_post")]
    [InlineData("blocks.1.hook_resid")]
    [InlineData("blocks.-1.hook_resid_post")]
    [InlineData("layers.1.hook_resid_post")]
    [InlineData("blocks.1.attn.hook_query")]
    public void BadHookNamesFailWithTheListOfValidNames(string name)
    {
        var e = Assert.Throws<FormatException>(() => HookPoint.Parse(name));
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
        Assert.Contains("hook_resid_post", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LayerOutOfRangeSaysHowManyLayersTheModelHas()
    {
        using var model = GemmaModel.Load(TestData.ModelPath("torch"));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Run(TokenIds.Random(4, 1), capture: [HookPoint.ResidPost(4)]));
        Assert.Contains("4 layers", e.Message, StringComparison.Ordinal);
        Assert.Contains("blocks.4.hook_resid_post", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => HookPoint.ResidPost(-1));
    }

    [Theory]
    [InlineData("torch", "/model/layers.1/self_attn/o_proj/MatMul")]
    [InlineData("genai", "/model/layers.1/attn/o_proj/MatMul")]
    public void GraphWithoutNodeNamesIsResolvedByTheResidualWalkAndAnOverrideForHookZ(string layout, string oProj)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestData.ModelPath(layout)));
        string zTensor = original.Graph.Node.Single(n => n.Name == oProj).Input[0];
        var anonymous = original.Clone();
        int k = 0;
        foreach (var n in anonymous.Graph.Node)
        {
            n.Name = $"n{k++}";
        }

        string path = _tmp.File("anonymous.onnx");
        File.WriteAllBytes(path, anonymous.ToByteArray());
        var ids = TokenIds.Random(10, seed: 11);
        var expected = TinyModels.Gemma2Reference.Forward(ids);

        using (var model = GemmaModel.Load(path))
        {
            Assert.Equal(4, model.LayerCount);
            var sites = TestData.AllSites(4).Where(s => s.Kind != HookKind.AttnZ).ToArray();
            var run = model.Run(ids, capture: sites);
            foreach (var s in sites)
            {
                Approx.Close(run.Activations(s), expected.Hooks[s.Name], 2e-5, $"structural {s.Name}");
            }

            var e = Assert.Throws<InvalidOperationException>(() => model.Run(ids, capture: [HookPoint.AttnZ(1)]));
            Assert.Contains("blocks.1.attn.hook_z", e.Message, StringComparison.Ordinal);
            Assert.Contains("blocks.1.hook_resid_post", e.Message, StringComparison.Ordinal); // candidates found for that layer
            Assert.Contains("TensorNames", e.Message, StringComparison.Ordinal);
        }

        var options = new GemmaModelOptions { TensorNames = new Dictionary<string, string> { ["blocks.1.attn.hook_z"] = zTensor } };
        using (var model = GemmaModel.Load(path, options: options))
        {
            var run = model.Run(ids, capture: [HookPoint.AttnZ(1)]);
            Approx.Close(run.Activations(HookPoint.AttnZ(1)), expected.Hooks["blocks.1.attn.hook_z"], 2e-5, "override z");
        }

        var bad = new GemmaModelOptions { TensorNames = new Dictionary<string, string> { ["blocks.1.attn.hook_z"] = "no/such/tensor" } };
        var ex = Assert.Throws<ArgumentException>(() => GemmaModel.Load(path, options: bad));
        Assert.Contains("no/such/tensor", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ModelThatIsNotGemma2IsRefused()
    {
        // input_ids -> Gather(embedding) -> MatMul -> logits: an embedding and a head, no decoder blocks.
        var g = new GraphProto { Name = "not_gemma" };
        g.Input.Add(Vi("input_ids", TensorProto.Types.DataType.Int64));
        g.Output.Add(Vi("logits", TensorProto.Types.DataType.Float));
        var emb = new TensorProto { Name = "emb", DataType = (int)TensorProto.Types.DataType.Float };
        emb.Dims.Add(8);
        emb.Dims.Add(4);
        emb.FloatData.Add(Enumerable.Range(0, 32).Select(i => (float)i));
        g.Initializer.Add(emb);
        var gather = new NodeProto { Name = "g", OpType = "Gather" };
        gather.Input.Add("emb");
        gather.Input.Add("input_ids");
        gather.Output.Add("logits");
        g.Node.Add(gather);
        var m = new ModelProto { IrVersion = 8, Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Version = 17 });
        string path = _tmp.File("not_gemma.onnx");
        File.WriteAllBytes(path, m.ToByteArray());

        var e = Assert.Throws<OnnxGraphException>(() => GemmaModel.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("Gemma 2", e.Message, StringComparison.Ordinal);

        // Decoder-layer names without Gemma 2's post-feedforward norm: a Llama-style graph.
        var llama = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestData.ModelPath("torch")));
        foreach (var n in llama.Graph.Node)
        {
            n.Name = n.Name.Replace("post_feedforward_layernorm", "ffn_norm", StringComparison.Ordinal);
        }

        string llamaPath = _tmp.File("llama_like.onnx");
        File.WriteAllBytes(llamaPath, llama.ToByteArray());
        var e2 = Assert.Throws<OnnxGraphException>(() => GemmaModel.Load(llamaPath));
        Assert.Contains("post_feedforward_layernorm", e2.Message, StringComparison.Ordinal);

        string junk = _tmp.File("junk.onnx");
        File.WriteAllBytes(junk, [0xff, 0xff, 0xff, 0x01, 0x02]);
        var e3 = Assert.Throws<OnnxGraphException>(() => GemmaModel.Load(junk));
        Assert.Contains(junk, e3.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => GemmaModel.Load(_tmp.File("missing.onnx")));
    }

    [Fact]
    public void TextInputWithoutATokenizerIsAClearError()
    {
        using var model = GemmaModel.Load(TestData.ModelPath("torch"));
        var e = Assert.Throws<InvalidOperationException>(() => model.Run("hello"));
        Assert.Contains("tokenizer", e.Message, StringComparison.Ordinal);
    }

    private static ValueInfoProto Vi(string name, TensorProto.Types.DataType type) =>
        new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } };
}
