using GemmaScope.Onnx;

namespace GemmaScope.Tests;

/// <summary>The engines a checkpoint-folder test runs on: every test that takes a <see cref="GemmaEngineKind"/> runs on each.</summary>
public static class EngineData
{
    /// <summary>ONNX Runtime and the native engine.</summary>
    public static TheoryData<GemmaEngineKind> All => [GemmaEngineKind.OnnxRuntime];

    /// <summary>Options that pick <paramref name="engine"/>.</summary>
    public static GemmaModelOptions Options(GemmaEngineKind engine) => new() { Engine = engine };
}
