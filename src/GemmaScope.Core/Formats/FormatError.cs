namespace GemmaScope.Formats;

/// <summary>
/// Makes the exception a shared reader (memory map, safetensors header) throws, so one parser reports an SAE file as an
/// SAE file and a checkpoint shard as a checkpoint.
/// </summary>
internal delegate GemmaScopeException FormatError(string file, string? field, string problem, string? expected = null, string? actual = null, Exception? inner = null);

internal static class FormatErrors
{
    public static readonly FormatError Sae = (file, field, problem, expected, actual, inner) => new SaeFormatException(file, field, problem, expected, actual, inner);

    public static readonly FormatError Checkpoint = (file, field, problem, expected, actual, inner) => new CheckpointFormatException(file, field, problem, expected, actual, inner);
}
