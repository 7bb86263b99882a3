namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// Hugging Face BPE merges: (left id, right id) -> (rank, merged id), in an open-addressing hash table
/// with linear probing at load &lt;= 0.5 (one cache line per probe in the common case, no allocation).
/// </summary>
internal sealed class MergeTable
{
    private const ulong Empty = ulong.MaxValue;
    private readonly Entry[] _entries;
    private readonly int _shift;

    /// <summary>Key, rank and result side by side, so that a probe touches one cache line.</summary>
    private struct Entry
    {
        public ulong Key;
        public int Rank;
        public int Result;
    }

    public MergeTable(int[] left, int[] right, int[] result)
    {
        Count = left.Length;
        int capacity = 16;
        while (capacity < left.Length * 2)
        {
            capacity <<= 1;
        }

        _shift = 64 - System.Numerics.BitOperations.Log2((uint)capacity);
        _entries = new Entry[capacity];
        _entries.AsSpan().Fill(new Entry { Key = Empty, Rank = -1, Result = -1 });
        int mask = capacity - 1;
        for (int rank = 0; rank < left.Length; rank++)
        {
            ulong key = Key(left[rank], right[rank]);
            int slot = Slot(key);
            while (_entries[slot].Key != Empty && _entries[slot].Key != key)
            {
                slot = (slot + 1) & mask;
            }

            // A pair listed twice keeps its last rank, as HF's collect() into a HashMap does.
            _entries[slot] = new Entry { Key = key, Rank = rank, Result = result[rank] };
        }
    }

    /// <summary>Number of merges listed in the file.</summary>
    public int Count { get; }

    private static ulong Key(int left, int right) => ((ulong)(uint)left << 32) | (uint)right;

    private int Slot(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    /// <summary>Rank of the merge of this pair, or -1; <paramref name="merged"/> is the merged token's id.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public int Find(int left, int right, out int merged)
    {
        ulong key = Key(left, right);
        Entry[] entries = _entries;
        int mask = entries.Length - 1;
        int slot = Slot(key);
        while (true)
        {
            ref Entry e = ref entries[slot];
            if (e.Key == key || e.Key == Empty)
            {
                merged = e.Result;
                return e.Rank;
            }

            slot = (slot + 1) & mask;
        }
    }
}
