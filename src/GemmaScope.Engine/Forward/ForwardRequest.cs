namespace GemmaScope.Engine;

/// <summary>Which logits a <see cref="GemmaEngine.Forward"/> call computes.</summary>
public enum LogitsMode
{
    /// <summary>No logits: the final norm and the LM head are skipped (hooks up to the last block still run).</summary>
    None,

    /// <summary>One row per sequence: the logits of each sequence's last token (generation, next-token scoring).</summary>
    LastRow,

    /// <summary>Every row of every sequence ([total rows, vocab]; 1 GB at 1,024 rows of Gemma's 256k vocabulary).</summary>
    AllRows,
}

/// <summary>
/// One forward call: one or more token sequences, packed without padding (rows of sequence 0, then of sequence 1, …).
/// Immutable description; the arrays it holds are read, never written.
/// </summary>
public sealed record ForwardRequest
{
    /// <summary>The token ids of each sequence (each at least one token). With a cache, only the new tokens.</summary>
    public required IReadOnlyList<int[]> Sequences { get; init; }

    /// <summary>
    /// Per sequence, a <see cref="KvCache"/> that holds the sequence's earlier tokens and is appended to (positions continue
    /// from <see cref="KvCache.Length"/>), or null for a sequence that starts at position 0 with nothing kept. Null: no caches.
    /// A cache may appear once per call, and must not be used by two calls at the same time.
    /// </summary>
    public IReadOnlyList<KvCache?>? Caches { get; init; }

    /// <summary>Which logits to compute; <see cref="LogitsMode.LastRow"/> by default.</summary>
    public LogitsMode Logits { get; init; } = LogitsMode.LastRow;

    /// <summary>Receives hook points in forward order and may edit them; null: none (and no capture cost).</summary>
    public IForwardHooks? Hooks { get; init; }

    /// <summary>
    /// Stop after this block's <c>hook_resid_post</c> (0-based); requires <see cref="Logits"/> = <see cref="LogitsMode.None"/>.
    /// Caches are still appended to for the blocks that ran, so a stopped call cannot be continued with its caches.
    /// </summary>
    public int? StopAfterLayer { get; init; }

    /// <summary>A request for the given sequences with default options.</summary>
    public static ForwardRequest For(params int[][] sequences) => new() { Sequences = sequences };
}
