using GemmaScope.Formats;
using GemmaScope.Hf;
using GemmaScope.Onnx;
using GemmaScope.Scan;
using GemmaScope.Tokenizers;

namespace GemmaScope.Cli;

/// <summary>The tool's exit codes and the one place that turns failures into messages.</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>Any other expected failure: a missing file, an unknown release or SAE, an argument the library refuses, cancellation.</summary>
    public const int Failed = 1;

    /// <summary>The command line is wrong (unknown command or option, a missing or malformed argument).</summary>
    public const int Usage = 2;

    /// <summary>An input file is malformed: an SAE file, a model checkpoint, a tokenizer file, an ONNX graph or a corpus.</summary>
    public const int BadFile = 3;

    /// <summary>The Hugging Face hub or Neuronpedia refused or failed (gated, not found, offline without the file, a broken download).</summary>
    public const int Service = 4;

    /// <summary>Runs a command body; expected failures print one line "gemmascope: KIND: …" to stderr, never a stack trace.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"gemmascope: {e.Message}");
            Console.Error.WriteLine("Run 'gemmascope --help' for usage.");
            return Usage;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("gemmascope: cancelled.");
            return Failed;
        }
        catch (GemmaScopeException e)
        {
            var (kind, code) = Describe(e);
            Console.Error.WriteLine($"gemmascope: {kind}: {e.Message}");
            return code;
        }
        catch (Exception e) when (e is ArgumentException or IOException or FormatException or UnauthorizedAccessException
            or InvalidOperationException or NotSupportedException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            Console.Error.WriteLine($"gemmascope: error: {e.Message}");
            return Failed;
        }
        catch (System.Net.Http.HttpRequestException e)
        {
            // The library wraps network failures in HuggingFaceHubException/NeuronpediaException; this is the safety net.
            Console.Error.WriteLine($"gemmascope: network: {e.Message}. Check the connection and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache.");
            return Failed;
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("GEMMASCOPE_DEBUG") is not { Length: > 0 })
        {
            // Not an expected failure, but a user still gets one line; GEMMASCOPE_DEBUG=1 shows the stack trace.
            Console.Error.WriteLine($"gemmascope: internal error: {e.GetType().Name}: {e.Message} (GEMMASCOPE_DEBUG=1 shows the stack trace; please report it)");
            return Failed;
        }
    }

    /// <summary>The word the message starts with and the exit code of each library failure.</summary>
    internal static (string Kind, int Code) Describe(GemmaScopeException e) => e switch
    {
        SaeFormatException => ("invalid SAE file", BadFile),
        CheckpointFormatException => ("invalid model checkpoint", BadFile),
        TokenizerFormatException => ("invalid tokenizer file", BadFile),
        OnnxGraphException => ("invalid ONNX model", BadFile),
        CorpusFormatException => ("invalid corpus", BadFile),
        HuggingFaceHubException => ("hub", Service),
        NeuronpediaException => ("Neuronpedia", Service),
        _ => ("error", Failed),
    };
}

/// <summary>The command line is wrong in a way the parser cannot see (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message)
{
    /// <summary>A hook name given on the command line (<paramref name="what"/>: e.g. "--hook"), as a <see cref="HookPoint"/>; the message of a wrong one lists the names (HookPoint's grammar).</summary>
    public static HookPoint Hook(string what, string name)
    {
        try
        {
            return HookPoint.Parse(name);
        }
        catch (FormatException e)
        {
            throw new UsageException($"{what}: {e.Message}");
        }
    }
}
