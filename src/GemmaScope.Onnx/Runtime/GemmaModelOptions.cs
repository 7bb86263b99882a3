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

/// <summary>Which engine runs a <see cref="GemmaModel"/>.</summary>
public enum GemmaEngineKind
{
    /// <summary>
    /// The native engine for <see cref="GemmaModel.FromPretrained"/> on the CPU; ONNX Runtime for
    /// <see cref="GemmaModel.Load"/> (an ONNX graph) and for <see cref="ExecutionProvider.Cuda"/>.
    /// </summary>
    Auto,

    /// <summary>
    /// The native C# CPU engine (GemmaScope.Engine): weights computed from the memory-mapped checkpoint in their own dtype,
    /// deterministic, every TransformerLens hook point (attention internals and norm scales included). Checkpoint folders only.
    /// </summary>
    Native,

    /// <summary>ONNX Runtime over a graph (loaded, or built from the checkpoint by <see cref="GemmaModel.FromPretrained"/>); CPU or CUDA.</summary>
    OnnxRuntime,
}

/// <summary>Options for <see cref="GemmaModel.FromPretrained(string, GemmaModelOptions?)"/> and <see cref="GemmaModel.Load(string, Microsoft.ML.Tokenizers.Tokenizer?, GemmaModelOptions?)"/>.</summary>
public sealed record GemmaModelOptions
{
    /// <summary>Which engine runs the model; <see cref="GemmaEngineKind.Auto"/> by default.</summary>
    public GemmaEngineKind Engine { get; init; }

    /// <summary>Threads for one operator (ONNX Runtime) or one forward (native engine); 0 leaves the engine's default (every core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>ONNX Runtime's execution provider; CPU by default. CUDA runs on the ONNX Runtime engine.</summary>
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
