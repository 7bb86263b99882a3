namespace GemmaScope.Formats;

/// <summary>
/// Thrown when a model checkpoint is malformed or disagrees with its <c>config.json</c>: an unsupported or inconsistent
/// configuration, a malformed <c>model.safetensors.index.json</c>, a missing or truncated shard, a missing tensor, a wrong
/// shape or dtype. The message names the file and the tensor or configuration field, the expected and the actual value.
/// </summary>
public sealed class CheckpointFormatException : GemmaScopeException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="file">The file being read (<c>config.json</c>, the index or a shard).</param>
    /// <param name="field">The tensor or configuration field involved, if any.</param>
    /// <param name="problem">What is wrong.</param>
    /// <param name="expected">What was expected, if applicable.</param>
    /// <param name="actual">What was found, if applicable.</param>
    /// <param name="inner">The underlying exception, if any.</param>
    public CheckpointFormatException(string file, string? field, string problem, string? expected = null, string? actual = null, Exception? inner = null)
        : base(file, System.IO.Path.GetFileName(file) == ModelCheckpoint.ConfigFile ? "field" : "tensor", field, problem, expected, actual, inner)
    {
    }

    private CheckpointFormatException(string fieldKind, string file, string field, string problem, string? expected, string? actual)
        : base(file, fieldKind, field, problem, expected, actual, null)
    {
    }

    // A JSON field of a file other than config.json (the shard index's weight_map), where "tensor" would be the wrong word.
    internal static CheckpointFormatException JsonField(string file, string field, string problem, string? expected, string? actual) =>
        new("field", file, field, problem, expected, actual);
}
