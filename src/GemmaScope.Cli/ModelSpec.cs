using GemmaScope.Hf;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

namespace GemmaScope.Cli;

/// <summary>
/// A model named on the command line: an ONNX export (<c>model.onnx</c> or its folder), a Hugging Face checkpoint folder
/// (<c>config.json</c> + safetensors), or a hub repository id such as <c>google/gemma-2-2b</c> (downloaded into the hub cache).
/// </summary>
internal static class ModelSpec
{
    public static async Task<(GemmaModel Model, int BosId)> LoadAsync(string spec, string? tokenizerPath, CancellationToken ct)
    {
        if (File.Exists(spec) || File.Exists(Path.Combine(spec, "model.onnx")))
        {
            var onnx = File.Exists(spec) ? spec : Path.Combine(spec, "model.onnx");
            var tokenizer = GemmaTokenizer.Load(tokenizerPath ?? FindTokenizer(onnx));
            return (GemmaModel.Load(onnx, tokenizer), tokenizer.BeginningOfSentenceId);
        }

        if (File.Exists(Path.Combine(spec, "config.json")))
        {
            return FromCheckpoint(spec, tokenizerPath);
        }

        if (Directory.Exists(spec))
        {
            throw new FileNotFoundException($"{spec} holds neither model.onnx (an ONNX export) nor config.json (a Hugging Face checkpoint).");
        }

        var parts = spec.Split('/');
        if (parts.Length != 2 || parts.Any(p => p.Length == 0))
        {
            throw new FileNotFoundException($"No such model file or folder: {spec}; pass model.onnx, a checkpoint folder, or a hub repository id such as google/gemma-2-2b.");
        }

        if (tokenizerPath is not null)
        {
            throw new UsageException("--tokenizer applies to ONNX exports; a checkpoint folder brings its own tokenizer.json or tokenizer.model.");
        }

        // The library's download: config.json first (an unsupported model is refused before the weights), then the index,
        // its shards and the tokenizer files, resumed and checked, into the hub cache.
        var bar = new Output.ProgressBar();
        GemmaModel model;
        try
        {
            model = await GemmaModel.FromPretrainedAsync(spec, progress: new ModelProgress(bar), cancellationToken: ct).ConfigureAwait(false);
        }
        finally
        {
            bar.Finish();
        }

        return WithTokenizer(model, spec);
    }

    private static (GemmaModel, int) FromCheckpoint(string folder, string? tokenizerPath)
    {
        var model = GemmaModel.FromPretrained(folder);
        if (tokenizerPath is not null)
        {
            model.Dispose();
            throw new UsageException("--tokenizer applies to ONNX exports; a checkpoint folder brings its own tokenizer.json or tokenizer.model.");
        }

        return WithTokenizer(model, folder);
    }

    private static (GemmaModel, int) WithTokenizer(GemmaModel model, string where)
    {
        var bos = (model.Tokenizer as GemmaTokenizer)?.BeginningOfSentenceId;
        if (bos is null)
        {
            model.Dispose();
            throw new FileNotFoundException($"{where} has no tokenizer.json or tokenizer.model.");
        }

        return (model, bos.Value);
    }

    // The model download reports bytes of the whole checkpoint; the bar draws them as one transfer.
    private sealed class ModelProgress(Output.ProgressBar bar) : IProgress<ModelDownloadProgress>
    {
        public void Report(ModelDownloadProgress value) =>
            bar.Report(new DownloadProgress(value.RepoId, value.File, value.BytesDownloaded, value.TotalBytes));
    }

    private static string FindTokenizer(string modelPath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        foreach (var folder in new[] { dir, Path.GetDirectoryName(dir) }.OfType<string>())
        {
            foreach (var name in new[] { "tokenizer.json", "tokenizer.model" })
            {
                var candidate = Path.Combine(folder, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new FileNotFoundException($"No tokenizer.json or tokenizer.model next to {modelPath} or one folder up: pass --tokenizer.");
    }
}
