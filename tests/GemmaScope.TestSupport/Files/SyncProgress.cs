namespace GemmaScope.TestSupport;

/// <summary>An <see cref="IProgress{T}"/> that runs its callback synchronously on the reporting thread (Progress&lt;T&gt; posts it later).</summary>
public sealed class SyncProgress<T>(Action<T> onReport) : IProgress<T>
{
    /// <inheritdoc />
    public void Report(T value) => onReport(value);
}
