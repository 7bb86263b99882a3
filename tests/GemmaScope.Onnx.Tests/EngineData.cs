using System.Reflection;
using GemmaScope.Onnx;
using Xunit.Sdk;

namespace GemmaScope.Onnx.Tests;

/// <summary>The engines a checkpoint-folder test runs on: every test that takes a <see cref="GemmaEngineKind"/> runs on each.</summary>
public static class EngineData
{
    /// <summary>ONNX Runtime, and the native engine when this build has it (not while GemmaScope.Engine is the facade's stub).</summary>
    public static IReadOnlyList<GemmaEngineKind> Engines =>
        GemmaModel.NativeEngineAvailable ? [GemmaEngineKind.OnnxRuntime, GemmaEngineKind.Native] : [GemmaEngineKind.OnnxRuntime];

    /// <summary>ONNX Runtime and the native engine.</summary>
    public static TheoryData<GemmaEngineKind> All => [.. Engines];

    /// <summary>Options that pick <paramref name="engine"/>.</summary>
    public static GemmaModelOptions Options(GemmaEngineKind engine) => new() { Engine = engine };
}

/// <summary>The row (possibly empty) once per engine, the engine appended as the last argument.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class OnEnginesAttribute(params object[] row) : DataAttribute
{
    /// <inheritdoc/>
    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
    {
        foreach (var engine in EngineData.Engines)
        {
            yield return [.. row, engine];
        }
    }
}

/// <summary>
/// For tests over the ONNX layouts ("torch", "genai", …): the row with the layout "native" (the same weights as a checkpoint
/// folder on the native engine, <see cref="TestData.Open"/>), when this build has the native engine.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
public sealed class NativeDataAttribute(params object[] rest) : DataAttribute
{
    /// <inheritdoc/>
    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
    {
        if (GemmaModel.NativeEngineAvailable)
        {
            yield return ["native", .. rest];
        }
    }
}

/// <summary>A theory that needs the native engine: skipped, and reported as such, while GemmaScope.Engine is the facade's stub.</summary>
public sealed class NativeTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when this build has no native engine.</summary>
    public NativeTheoryAttribute()
    {
        if (!GemmaModel.NativeEngineAvailable)
        {
            Skip = "GemmaScope.Engine is the facade's temporary stub in this build";
        }
    }
}
