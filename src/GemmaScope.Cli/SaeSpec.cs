using GemmaScope.Hf;

namespace GemmaScope.Cli;

/// <summary>An SAE named on the command line: a local file or folder, or <c>RELEASE/ID</c> from the Gemma Scope catalog.</summary>
internal static class SaeSpec
{
    /// <summary>Splits <c>gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71</c> at the first '/', when the release is known.</summary>
    public static bool TrySplit(string spec, out GemmaScopeRelease? release, out string id)
    {
        var slash = spec.IndexOf('/', StringComparison.Ordinal);
        id = slash < 0 ? string.Empty : spec[(slash + 1)..];
        release = null;
        return slash > 0 && GemmaScopeCatalog.TryGetRelease(spec[..slash], out release);
    }

    /// <summary>
    /// Loads a local SAE or transcoder (<see cref="JumpReLUSae.LoadAny"/>: a transcoder when its files say so), or resolves,
    /// downloads (with a progress bar) and loads a catalog one; a transcoder is a <see cref="JumpReLUTranscoder"/>.
    /// </summary>
    public static async Task<JumpReLUSae> LoadAsync(string spec, SaeLoadOptions? options, CancellationToken ct)
    {
        if (File.Exists(spec) || Directory.Exists(spec))
        {
            return JumpReLUSae.LoadAny(spec, options);
        }

        if (!TrySplit(spec, out var release, out var id))
        {
            var slash = spec.IndexOf('/', StringComparison.Ordinal);
            var releaseHint = slash > 0 ? TryRelease(spec[..slash]) : string.Empty;
            throw new ArgumentException($"'{spec}' is neither a file or folder nor RELEASE/ID of the Gemma Scope catalog.{releaseHint}");
        }

        using var hub = new GemmaScopeHubClient();
        var sae = await hub.ResolveAsync(release!.Name, id, ct).ConfigureAwait(false);
        var bar = new Output.ProgressBar();
        try
        {
            return sae.IsTranscoder
                ? await hub.LoadTranscoderAsync(sae, options, bar, ct).ConfigureAwait(false)
                : await hub.LoadAsync(sae, options, bar, ct).ConfigureAwait(false);
        }
        finally
        {
            bar.Finish();
        }
    }

    private static string TryRelease(string name)
    {
        try
        {
            GemmaScopeCatalog.GetRelease(name);
            return string.Empty;
        }
        catch (ArgumentException e)
        {
            return " " + e.Message.Split(" (Parameter", 2)[0];
        }
    }
}
