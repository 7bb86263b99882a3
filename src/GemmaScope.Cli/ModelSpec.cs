using System.Net;
using System.Text.Json;
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

        return FromCheckpoint(await DownloadCheckpointAsync(spec, ct).ConfigureAwait(false), tokenizerPath);
    }

    private static (GemmaModel, int) FromCheckpoint(string folder, string? tokenizerPath)
    {
        var model = GemmaModel.FromPretrained(folder);
        if (tokenizerPath is not null)
        {
            model.Dispose();
            throw new UsageException("--tokenizer applies to ONNX exports; a checkpoint folder brings its own tokenizer.json or tokenizer.model.");
        }

        var bos = (model.Tokenizer as GemmaTokenizer)?.BeginningOfSentenceId;
        if (bos is null)
        {
            model.Dispose();
            throw new FileNotFoundException($"{folder} has no tokenizer.json or tokenizer.model.");
        }

        return (model, bos.Value);
    }

    // What FromPretrained reads: config.json, the index and its shards (or model.safetensors), and a tokenizer.
    private static async Task<string> DownloadCheckpointAsync(string repoId, CancellationToken ct)
    {
        using var hub = new GemmaScopeHubClient();
        var config = await GetAsync(hub, repoId, "config.json", ct).ConfigureAwait(false)
            ?? throw new FileNotFoundException($"The hub repository {repoId} has no config.json: not a Hugging Face model checkpoint.");
        var index = await GetAsync(hub, repoId, "model.safetensors.index.json", ct).ConfigureAwait(false);
        if (index is null)
        {
            _ = await GetAsync(hub, repoId, "model.safetensors", ct).ConfigureAwait(false)
                ?? throw new FileNotFoundException($"The hub repository {repoId} has neither model.safetensors nor model.safetensors.index.json.");
        }
        else
        {
            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(index, ct).ConfigureAwait(false));
            var shards = doc.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Value.GetString()!).Distinct().Order(StringComparer.Ordinal);
            foreach (var shard in shards)
            {
                _ = await GetAsync(hub, repoId, shard, ct).ConfigureAwait(false)
                    ?? throw new FileNotFoundException($"{repoId}: model.safetensors.index.json names {shard}, which the hub does not have.");
            }
        }

        if (await GetAsync(hub, repoId, "tokenizer.json", ct).ConfigureAwait(false) is null)
        {
            _ = await GetAsync(hub, repoId, "tokenizer.model", ct).ConfigureAwait(false);
        }

        return Path.GetDirectoryName(config)!;
    }

    private static async Task<string?> GetAsync(GemmaScopeHubClient hub, string repoId, string path, CancellationToken ct)
    {
        var bar = new Output.ProgressBar();
        try
        {
            return await hub.DownloadFileAsync(repoId, path, bar, ct).ConfigureAwait(false);
        }
        catch (HuggingFaceHubException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        finally
        {
            bar.Finish();
        }
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
