using GemmaScope.Formats;
using GemmaScope.Hf;

namespace GemmaScope.Cli;

/// <summary>The tool's exit codes and the one place that turns failures into messages.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    /// <summary>Runs a command body; expected failures print one line "gemmascope: error: …" to stderr, never a stack trace.</summary>
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
        catch (Exception e) when (e is ArgumentException or IOException or FormatException or UnauthorizedAccessException
            or InvalidOperationException or NotSupportedException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            // SaeFormatException, HuggingFaceHubException, NeuronpediaException and TokenizerFormatException are IOExceptions.
            var kind = e switch
            {
                SaeFormatException => "invalid SAE file",
                HuggingFaceHubException => "hub",
                NeuronpediaException => "Neuronpedia",
                _ => "error",
            };
            Console.Error.WriteLine($"gemmascope: {kind}: {e.Message}");
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
}

/// <summary>The command line is wrong in a way the parser cannot see (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
