using System.Text.Json;

namespace GemmaScope.Onnx.Tests;

public class ReferenceTests
{
    [Fact]
    public void TheFloat64ReferenceAgreesWithThePyTorchModuleThatMadeTheFixtures()
    {
        // probe.json: logits of the PyTorch module (tools/onnx-fixtures/make_tiny_gemma2.py), not of any ONNX graph
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyModels.Gemma2Weights, "probe.json")));
        var ids = doc.RootElement.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var torchLogits = doc.RootElement.GetProperty("logits_last_first8").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var reference = TinyModels.Gemma2Reference;
        var logits = reference.Forward(ids).Logits;
        var last = logits.AsSpan((ids.Length - 1) * reference.Vocab, 8).ToArray();
        Approx.Close(last.Select(v => (float)v).ToArray(), torchLogits, 2e-5, "reference vs PyTorch");
        Assert.True(ids.Length > reference.Window, "the probe must be longer than the sliding window");
    }
}
