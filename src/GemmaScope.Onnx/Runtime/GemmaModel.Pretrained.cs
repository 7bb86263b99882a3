using GemmaScope.Formats;
using GemmaScope.Onnx.Building;
using GemmaScope.Onnx.Graph;
using GemmaScope.Tokenizers;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Onnx;

public sealed partial class GemmaModel
{
    /// <summary>
    /// Builds a Gemma 2 or Gemma 3 model straight from a Hugging Face checkpoint folder (<c>model_type</c> <c>gemma2</c>,
    /// <c>gemma3_text</c>, or <c>gemma3</c>, whose text model is used and whose vision tower is not read): <c>config.json</c> and
    /// <c>model.safetensors</c> (or <c>model.safetensors.index.json</c> and its shards), plus <c>tokenizer.json</c> or
    /// <c>tokenizer.model</c> when present. <see cref="GemmaModelOptions.Engine"/> picks what runs it (Auto: the native
    /// engine on the CPU, ONNX Runtime for CUDA). On ONNX Runtime the forward is built as an ONNX graph in memory with Hugging
    /// Face's semantics and TransformerLens-named hook tensors; the weights are not copied into it: float32 tensors are read in
    /// place from the memory-mapped files, bf16/f16 ones are widened once to float32 in native memory (ONNX Runtime's
    /// CPU provider has no bf16 MatMul), 4 bytes per parameter.
    /// </summary>
    /// <param name="path">The checkpoint folder.</param>
    /// <param name="options">Session and tokenization options.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json, or both model.safetensors and the index, are missing.</exception>
    /// <exception cref="GemmaScope.Formats.CheckpointFormatException">
    /// The checkpoint is malformed or disagrees with config.json (unsupported model_type, missing tensor, wrong shape,
    /// a shard the index names missing, a truncated shard); the message names the file and the tensor.
    /// </exception>
    public static GemmaModel FromPretrained(string path, GemmaModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new GemmaModelOptions();
        if (!Directory.Exists(path) && LooksLikeRepoId(path))
        {
            throw new DirectoryNotFoundException(
                $"Checkpoint folder '{Path.GetFullPath(path)}' does not exist. '{path}' looks like a Hugging Face repository id: " +
                $"FromPretrained reads a local folder; await GemmaModel.FromPretrainedAsync(\"{path}\") downloads the repository into the cache first " +
                "(gated Gemma repositories need the licence accepted and HF_TOKEN set).");
        }

        if (ChooseEngine(options) == GemmaEngineKind.Native)
        {
            return FromPretrainedNative(path, options);
        }

        var checkpoint = ModelCheckpoint.Open(path);
        var weights = new CheckpointWeights(checkpoint, options.WeightBinding);
        try
        {
            var model = new GemmaGraphBuilder(checkpoint.Architecture, weights.Declare, weights.Small).Build();
            var graph = OnnxGraph.FromModel(model, checkpoint.Folder);
            weights.ReleaseUnusedFiles();
            var tokenizer = TokenizerOf(checkpoint.Folder);

            return new GemmaModel(new Runtime.Engines.Ort.OrtModelEngine(graph, options, weights, checkpoint.Architecture.HeadDim), tokenizer, options);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private static Tokenizer? TokenizerOf(string folder) =>
        File.Exists(Path.Combine(folder, "tokenizer.json")) || File.Exists(Path.Combine(folder, "tokenizer.model")) ? GemmaTokenizer.Load(folder) : null;

    // Auto: the native engine on the CPU; CUDA is ONNX Runtime's.
    private static GemmaEngineKind ChooseEngine(GemmaModelOptions options)
    {
        bool cuda = options.ExecutionProvider == ExecutionProvider.Cuda;
        if (options.Engine == GemmaEngineKind.Native && cuda)
        {
            throw new NotSupportedException("The native engine runs on the CPU; CUDA needs GemmaModelOptions.Engine = OnnxRuntime (or Auto).");
        }

        return options.Engine switch
        {
            GemmaEngineKind.Auto => cuda || !NativeEngineAvailable ? GemmaEngineKind.OnnxRuntime : GemmaEngineKind.Native,
            _ => options.Engine,
        };
    }
}
