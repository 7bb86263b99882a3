using GemmaScope.Onnx;
using GemmaScope.Onnx.Graph;

namespace GemmaScope.Onnx.Tests;

public class GraphEditingTests
{
    [Fact]
    public void EditingAnExternalDataModelNeverReadsOrCopiesItsWeights()
    {
        string path = TestData.ModelPath("external");
        long dataBytes = new FileInfo(Path.Combine(Path.GetDirectoryName(path)!, "model.onnx_data")).Length;
        var graph = OnnxGraph.Load(path);
        Assert.All(graph.G.Initializer, t => Assert.Equal(global::Onnx.TensorProto.Types.DataLocation.External, t.DataLocation));

        var edited = graph.Clone();
        using var model = GemmaModel.Load(path);
        foreach (var site in TestData.AllSites(4))
        {
            edited.AddFloatOutput(model.TensorName(site));
        }

        var bytes = edited.ToBytes();
        Assert.True(bytes.Length < new FileInfo(path).Length + 16_384, $"edited graph is {bytes.Length} bytes");
        Assert.True(bytes.Length < dataBytes, "the weights must stay in model.onnx_data");
        Assert.All(edited.G.Initializer, t => Assert.Equal(0, t.RawData.Length));
    }

    [Fact]
    public void SessionOptionsAreAppliedToEverySession()
    {
        int configured = 0;
        var options = new GemmaModelOptions { IntraOpThreads = 1, ConfigureSession = _ => configured++ };
        using var model = GemmaModel.Load(TestData.ModelPath("torch"), options: options);
        var ids = TokenIds.Random(5, 3);
        model.Run(ids);
        model.Run(ids, capture: [HookPoint.ResidPost(0)]);
        model.Run(ids, capture: [HookPoint.ResidPost(0)]);
        Assert.Equal(2, configured);
    }

    [Fact]
    public void CudaWithoutTheGpuPackageIsAClearError()
    {
        using var model = GemmaModel.Load(TestData.ModelPath("torch"), options: new GemmaModelOptions { ExecutionProvider = ExecutionProvider.Cuda });
        var e = Assert.Throws<InvalidOperationException>(() => model.Run(TokenIds.Random(3, 1)));
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu", e.Message, StringComparison.Ordinal);
    }
}

public sealed class Float16SiteTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void AFloat16SiteIsCapturedThroughACastAndRefusedForInterventions()
    {
        // resid_post(1) routed through float16 (Cast to f16, Cast back), the f16 tensor named as the hook by override
        var graph = OnnxGraph.Load(TestData.ModelPath("torch"));
        string t;
        using (var probe = GemmaModel.Load(TestData.ModelPath("torch")))
        {
            t = probe.TensorName(HookPoint.ResidPost(1));
        }

        var consumers = graph.Consumers(t).ToList();
        var toHalf = new global::Onnx.NodeProto { Name = "to_f16", OpType = "Cast", Input = { t }, Output = { "resid_f16" } };
        toHalf.Attribute.Add(new global::Onnx.AttributeProto { Name = "to", Type = global::Onnx.AttributeProto.Types.AttributeType.Int, I = (long)global::Onnx.TensorProto.Types.DataType.Float16 });
        var back = new global::Onnx.NodeProto { Name = "to_f32", OpType = "Cast", Input = { "resid_f16" }, Output = { "resid_f32" } };
        back.Attribute.Add(new global::Onnx.AttributeProto { Name = "to", Type = global::Onnx.AttributeProto.Types.AttributeType.Int, I = (long)global::Onnx.TensorProto.Types.DataType.Float });
        int at = graph.G.Node.IndexOf(graph.Producer(t)!.Value.Node) + 1;
        graph.G.Node.Insert(at, back);
        graph.G.Node.Insert(at, toHalf);
        foreach (var (node, index) in consumers)
        {
            node.Input[index] = "resid_f32";
        }

        graph.G.ValueInfo.Add(new global::Onnx.ValueInfoProto
        {
            Name = "resid_f16",
            Type = new global::Onnx.TypeProto { TensorType = new global::Onnx.TypeProto.Types.Tensor { ElemType = (int)global::Onnx.TensorProto.Types.DataType.Float16 } },
        });
        string path = _tmp.File("f16.onnx");
        File.WriteAllBytes(path, graph.ToBytes());

        var options = new GemmaModelOptions { TensorNames = new Dictionary<string, string> { ["blocks.1.hook_resid_post"] = "resid_f16" } };
        using var model = GemmaModel.Load(path, options: options);
        var ids = TokenIds.Random(8, seed: 50);
        var site = HookPoint.ResidPost(1);
        var run = model.Run(ids, capture: [site]);
        var expected = TinyModels.Gemma2Reference.Forward(ids, (name, x, n) =>
        {
            if (name == site.Name)
            {
                for (int i = 0; i < x.Length; i++)
                {
                    x[i] = (double)(Half)x[i];
                }
            }
        });
        Approx.Close(run.Activations(site), expected.Hooks[site.Name], 1e-4, "f16 capture");
        Approx.Close(run.Logits(), expected.Logits, 1e-4, "f16 logits");

        var sae = TestSaes.Random(48, 8, seed: 2);
        var e = Assert.Throws<NotSupportedException>(() => model.Run(ids, interventions: new Interventions { Splice = [new SaeSplice(site, sae)] }));
        Assert.Contains("resid_f16", e.Message, StringComparison.Ordinal);
    }
}
