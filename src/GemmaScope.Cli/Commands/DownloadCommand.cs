using System.CommandLine;
using GemmaScope.Cli.Output;
using GemmaScope.Hf;

namespace GemmaScope.Cli.Commands;

/// <summary><c>gemmascope download RELEASE ID</c>: into the huggingface_hub cache, with a progress bar; resumes interrupted downloads.</summary>
internal static class DownloadCommand
{
    public static Command Create()
    {
        var release = new Argument<string>("release") { Description = "A release, e.g. gemma-scope-2b-pt-res or gemma-scope-2b-pt-res-canonical." };
        var id = new Argument<string>("id") { Description = "An SAE id, e.g. layer_20/width_16k/average_l0_71 or layer_20/width_16k/canonical." };
        var command = new Command(
            "download",
            "Download an SAE's or transcoder's weights (params.npz; Gemma Scope 2: params.safetensors and its config.json) into the Hugging Face " +
            "cache (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT apply) and print its path. An interrupted download resumes.")
        {
            release, id,
        };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => RunAsync(p.GetValue(release)!, p.GetValue(id)!, ct)));
        return command;
    }

    private static async Task<int> RunAsync(string release, string id, CancellationToken ct)
    {
        using var hub = new GemmaScopeHubClient();
        var sae = await hub.ResolveAsync(release, id, ct).ConfigureAwait(false);
        var bar = new ProgressBar();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string path;
        try
        {
            path = await hub.DownloadAsync(sae, bar, ct).ConfigureAwait(false);
            if (sae.ConfigPath is { } config)
            {
                // Gemma Scope 2 keeps the SAE's configuration beside its weights.
                await hub.DownloadFileAsync(sae.RepoId, config, null, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            bar.Finish();
        }

        Console.Error.WriteLine(bar.Drew
            ? $"downloaded {sae} ({Units.Bytes(new FileInfo(path).Length)}) in {Units.Duration(clock.Elapsed)}"
            : $"{sae} was already in the cache ({Units.Bytes(new FileInfo(path).Length)})");
        Console.Out.WriteLine(path);
        return ExitCodes.Ok;
    }
}
