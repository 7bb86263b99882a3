// ============================================================================================================================
// TEMPORARY STUB, owned by the "facade" engineer: the public surface of GemmaScope.Engine that GemmaScope.Onnx's
// NativeModelEngine codes against (BRIEF.md; names as written on the "forward" branch), so that the facade compiles before
// the engine is merged. Nothing here computes: GemmaEngine.Open throws. DELETE THIS FILE when main carries the engine.
// ============================================================================================================================
#pragma warning disable CA1822, IDE0060 // stub members do not use their state

namespace GemmaScope.Models
{
    /// <summary>STUB of the architecture record (Core's on the structure branch); only what the facade reads.</summary>
    public sealed record GemmaArchitecture
    {
        /// <summary>Vocabulary size.</summary>
        public int Vocab { get; init; }

        /// <summary>d_model.</summary>
        public int DModel { get; init; }

        /// <summary>Decoder blocks.</summary>
        public int Layers { get; init; }

        /// <summary>Query heads.</summary>
        public int Heads { get; init; }

        /// <summary>Key/value heads.</summary>
        public int KvHeads { get; init; }

        /// <summary>head_dim.</summary>
        public int HeadDim { get; init; }

        /// <summary>BOS id.</summary>
        public int BosId { get; init; } = 2;

        /// <summary>Padding id.</summary>
        public int PadId { get; init; }
    }
}

namespace GemmaScope.Engine
{
    using GemmaScope.Models;

    /// <summary>STUB: which logits a forward computes.</summary>
    public enum LogitsMode
    {
        /// <summary>None.</summary>
        None,

        /// <summary>Each sequence's last row.</summary>
        LastRow,

        /// <summary>Every row.</summary>
        AllRows,
    }

    /// <summary>STUB: engine options.</summary>
    public sealed record GemmaEngineOptions
    {
        /// <summary>Threads; 0: every core.</summary>
        public int Threads { get; init; }

        /// <summary>Round fp32 weights to bf16.</summary>
        public bool RoundWeightsToBFloat16 { get; init; }
    }

    /// <summary>STUB: one forward call.</summary>
    public sealed record ForwardRequest
    {
        /// <summary>Sequences, packed without padding.</summary>
        public required IReadOnlyList<int[]> Sequences { get; init; }

        /// <summary>Per-sequence caches.</summary>
        public IReadOnlyList<KvCache?>? Caches { get; init; }

        /// <summary>Which logits.</summary>
        public LogitsMode Logits { get; init; } = LogitsMode.LastRow;

        /// <summary>Hooks.</summary>
        public IForwardHooks? Hooks { get; init; }

        /// <summary>Stop after this block.</summary>
        public int? StopAfterLayer { get; init; }
    }

    /// <summary>STUB: hook receiver.</summary>
    public interface IForwardHooks
    {
        /// <summary>Whether the point is wanted.</summary>
        bool Wants(HookPoint point);

        /// <summary>The call's rows at the point; edits flow downstream.</summary>
        void OnHook(HookPoint point, in HookSite site, Span<float> rows);
    }

    /// <summary>STUB: the rows' layout.</summary>
    public readonly struct HookSite
    {
        private readonly int[] _starts;
        private readonly int[] _positions;
        private readonly int[] _tokens;
        private readonly int[] _sequenceOfRow;

        internal HookSite(int[] starts, int[] positions, int[] tokens, int[] sequenceOfRow, int width, int keyPositions)
        {
            _starts = starts;
            _positions = positions;
            _tokens = tokens;
            _sequenceOfRow = sequenceOfRow;
            Width = width;
            KeyPositions = keyPositions;
        }

        /// <summary>Floats per row.</summary>
        public int Width { get; }

        /// <summary>Key positions per head (scores, pattern).</summary>
        public int KeyPositions { get; }

        /// <summary>Rows of the call.</summary>
        public int TotalRows => _starts[^1];

        /// <summary>Sequences of the call.</summary>
        public int SequenceCount => _starts.Length - 1;

        /// <summary>First row of a sequence.</summary>
        public int RowStart(int seq) => _starts[seq];

        /// <summary>Rows of a sequence.</summary>
        public int RowCount(int seq) => _starts[seq + 1] - _starts[seq];

        /// <summary>Absolute position of a row.</summary>
        public int Position(int row) => _positions[row];

        /// <summary>Token id of a row.</summary>
        public int TokenId(int row) => _tokens[row];

        /// <summary>Sequence of a row.</summary>
        public int Sequence(int row) => _sequenceOfRow[row];
    }

    /// <summary>STUB: a forward's outcome.</summary>
    public sealed class ForwardResult
    {
        private ForwardResult()
        {
        }

        /// <summary>Logits.</summary>
        public float[]? Logits { get; }

        /// <summary>Vocabulary size.</summary>
        public int Vocab { get; }

        /// <summary>First row of a sequence.</summary>
        public int RowStart(int seq) => throw new NotImplementedException();

        /// <summary>The last row's logits of a sequence.</summary>
        public ReadOnlySpan<float> LastLogits(int seq) => throw new NotImplementedException();
    }

    /// <summary>STUB: one sequence's KV cache.</summary>
    public sealed class KvCache : IDisposable
    {
        private KvCache()
        {
        }

        /// <summary>Tokens held.</summary>
        public int Length { get; }

        /// <summary>Releases the cache.</summary>
        public void Dispose()
        {
        }
    }

    /// <summary>STUB: the engine. <see cref="Open(string, GemmaEngineOptions?)"/> throws until the real engine is merged.</summary>
    public sealed class GemmaEngine : IDisposable
    {
        private GemmaEngine()
        {
        }

        /// <summary>The architecture.</summary>
        public GemmaArchitecture Architecture { get; } = new();

        /// <summary>Opens a checkpoint folder.</summary>
        public static GemmaEngine Open(string folder, GemmaEngineOptions? options = null) =>
            throw new NotImplementedException("STUB: the native engine is not merged into this branch yet.");

        /// <summary>Row width at a hook point.</summary>
        public int Width(HookPoint point) => throw new NotImplementedException();

        /// <summary>A new KV cache.</summary>
        public KvCache CreateCache() => throw new NotImplementedException();

        /// <summary>Runs a forward.</summary>
        public ForwardResult Forward(ForwardRequest request) => throw new NotImplementedException();

        /// <summary>Releases the engine.</summary>
        public void Dispose()
        {
        }
    }
}
