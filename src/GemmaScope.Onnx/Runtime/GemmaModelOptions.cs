using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Onnx;

/// <summary>Where ONNX Runtime runs the model.</summary>
public enum ExecutionProvider
{
    /// <summary>ONNX Runtime's CPU provider (always available).</summary>
    Cpu,

    /// <summary>CUDA; needs the Microsoft.ML.OnnxRuntime.Gpu native package in the application.</summary>
    Cuda,
}

/// <summary>Options for <see cref="GemmaModel.FromPretrained(string, GemmaModelOptions?)"/> and <see cref="GemmaModel.Load(string, Microsoft.ML.Tokenizers.Tokenizer?, GemmaModelOptions?)"/>.</summary>
public sealed record GemmaModelOptions
{
    /// <summary>Threads for one operator; 0 leaves ONNX Runtime's default.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>The execution provider; CPU by default.</summary>
    public ExecutionProvider ExecutionProvider { get; init; } = ExecutionProvider.Cpu;

    /// <summary>The CUDA device when <see cref="ExecutionProvider"/> is CUDA.</summary>
    public int DeviceId { get; init; }

    /// <summary>ONNX Runtime graph optimisation level.</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Called on every <see cref="SessionOptions"/> this model creates, after the settings above (escape hatch).</summary>
    public Action<SessionOptions>? ConfigureSession { get; init; }

    /// <summary>
    /// Explicit tensor names for hook points, keyed by TransformerLens name (<c>blocks.3.hook_resid_post</c>), for graphs
    /// from exporters whose naming is not recognised. They win over the automatic resolution.
    /// </summary>
    public IReadOnlyDictionary<string, string>? TensorNames { get; init; }

    /// <summary>Prepend BOS (id <see cref="BosId"/>) to tokenized text when the tokenizer did not, as Gemma expects.</summary>
    public bool AddBos { get; init; } = true;

    /// <summary>Gemma's BOS token id (2).</summary>
    public int BosId { get; init; } = 2;

    /// <summary>How <see cref="GemmaModel.FromPretrained"/> hands large weights to ONNX Runtime (measurements and tests).</summary>
    internal Building.WeightBinding WeightBinding { get; init; }

    /// <summary>Gemma's padding token id (0), used for the padded tail of shorter sequences in a batch.</summary>
    public int PadId { get; init; }
}
