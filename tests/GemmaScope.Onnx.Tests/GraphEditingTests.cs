using GemmaScope.Onnx;
using GemmaScope.Onnx.Graph;

namespace GemmaScope.Tests;

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
        var ids = TestData.RandomIds(5, 3);
        model.Run(ids);
        model.Run(ids, capture: [HookPoint.ResidPost(0)]);
        model.Run(ids, capture: [HookPoint.ResidPost(0)]);
        Assert.Equal(2, configured);
    }

    [Fact]
    public void CudaWithoutTheGpuPackageIsAClearError()
    {
        using var model = GemmaModel.Load(TestData.ModelPath("torch"), options: new GemmaModelOptions { ExecutionProvider = ExecutionProvider.Cuda });
        var e = Assert.Throws<InvalidOperationException>(() => model.Run(TestData.RandomIds(3, 1)));
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu", e.Message, StringComparison.Ordinal);
    }
}
