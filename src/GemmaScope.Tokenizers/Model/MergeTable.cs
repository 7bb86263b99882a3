namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// Hugging Face BPE merges: (left id, right id) -> rank, in an open-addressing hash table
/// (one probe into one array in the common case, no allocation), plus rank-indexed arrays
/// so that a queued merge can be re-validated from its rank alone.
/// </summary>
internal sealed class MergeTable
{
    private const ulong Empty = ulong.MaxValue;
    private readonly ulong[] _keys;
    private readonly int[] _ranks;
    private readonly int _shift;

    public MergeTable(int[] left, int[] right, int[] result)
    {
        Left = left;
        Right = right;
        Result = result;
        int capacity = 16;
        while (capacity < left.Length * 2)
        {
            capacity <<= 1;
        }

        _shift = 64 - System.Numerics.BitOperations.Log2((uint)capacity);
        _keys = new ulong[capacity];
        _ranks = new int[capacity];
        Array.Fill(_keys, Empty);
        int mask = capacity - 1;
        for (int rank = 0; rank < left.Length; rank++)
        {
            ulong key = Key(left[rank], right[rank]);
            int slot = Slot(key);
            while (_keys[slot] != Empty && _keys[slot] != key)
            {
                slot = (slot + 1) & mask;
            }

            // A pair listed twice keeps its last rank, as HF's collect() into a HashMap does.
            _keys[slot] = key;
            _ranks[slot] = rank;
        }
    }

    /// <summary>Rank-indexed left id of each merge.</summary>
    public int[] Left { get; }

    /// <summary>Rank-indexed right id of each merge.</summary>
    public int[] Right { get; }

    /// <summary>Rank-indexed id of the merged token.</summary>
    public int[] Result { get; }

    public int Count => Left.Length;

    private static ulong Key(int left, int right) => ((ulong)(uint)left << 32) | (uint)right;

    private int Slot(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    /// <summary>Rank of the merge of this pair, or -1.</summary>
    public int Find(int left, int right)
    {
        ulong key = Key(left, right);
        ulong[] keys = _keys;
        int mask = keys.Length - 1;
        int slot = Slot(key);
        while (true)
        {
            ulong k = keys[slot];
            if (k == key)
            {
                return _ranks[slot];
            }

            if (k == Empty)
            {
                return -1;
            }

            slot = (slot + 1) & mask;
        }
    }
}
