namespace GemmaScope.Engine.Kernels;

/// <summary>
/// One layer's keys and values for one sequence, as <see cref="Attention"/> reads them: the layout agreed between the
/// kernels and the KV cache.
/// </summary>
/// <remarks>
/// <para><see cref="Keys"/> and <see cref="Values"/> are [<see cref="Capacity"/>, <see cref="KvWidth"/>] row-major
/// (KvWidth = kv_heads × head_dim, head-major within a row, keys after RoPE). Absolute position p lives in row
/// (slot) p mod Capacity. Positions [<see cref="Start"/>, <see cref="Length"/>) are held.</para>
/// <para>Full-attention layers: Capacity ≥ Length, Start = 0, so slot = position; the owner grows the arrays (a plain
/// copy keeps every slot) before appending past Capacity.</para>
/// <para>Sliding layers: a ring buffer with Capacity = window, Start = max(0, Length − window), the oldest held
/// position in slot <see cref="RingStart"/>. A query at position p sees keys at positions &gt; p − window, so the
/// next chunk (first query at Length) needs at most the last window − 1 positions: the ring always holds them.
/// A chunk's own keys are read from the chunk, never from the ring, so a chunk longer than the window is fine.</para>
/// <para>A value type over the arrays: <see cref="Append"/> writes into the arrays and returns the advanced view.</para>
/// </remarks>
internal readonly struct KvLayerView
{
    /// <summary>A view over existing storage.</summary>
    public KvLayerView(float[] keys, float[] values, int capacity, int kvWidth, int start, int length)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        if (capacity <= 0 || kvWidth <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), $"KV layer: capacity {capacity} and width {kvWidth} must be positive.");
        }

        long size = (long)capacity * kvWidth;
        if (keys.Length < size || values.Length < size)
        {
            throw new ArgumentException($"KV layer: keys/values need {size} floats ({capacity} × {kvWidth}), got {keys.Length} and {values.Length}.");
        }

        if (start < 0 || length < start || length - start > capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"KV layer: held positions [{start}, {length}) do not fit capacity {capacity}.");
        }

        Keys = keys;
        Values = values;
        Capacity = capacity;
        KvWidth = kvWidth;
        Start = start;
        Length = length;
    }

    /// <summary>Empty storage of <paramref name="capacity"/> positions (a sliding layer: the window).</summary>
    public static KvLayerView Allocate(int capacity, int kvWidth)
    {
        long size = (long)capacity * kvWidth;
        if (capacity <= 0 || kvWidth <= 0 || size > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), $"KV layer: {capacity} positions × {kvWidth} floats is not a valid size.");
        }

        return new KvLayerView(new float[size], new float[size], capacity, kvWidth, 0, 0);
    }

    /// <summary>Keys after RoPE, [Capacity, KvWidth]; null only for the default (empty) view.</summary>
    public float[]? Keys { get; }

    /// <summary>Values, [Capacity, KvWidth]; null only for the default (empty) view.</summary>
    public float[]? Values { get; }

    /// <summary>Rows of storage.</summary>
    public int Capacity { get; }

    /// <summary>kv_heads × head_dim.</summary>
    public int KvWidth { get; }

    /// <summary>The oldest held absolute position.</summary>
    public int Start { get; }

    /// <summary>Positions written so far: the next chunk starts at this position.</summary>
    public int Length { get; }

    /// <summary>Positions held (Length − Start).</summary>
    public int Held => Length - Start;

    /// <summary>The slot of the oldest held position.</summary>
    public int RingStart => Capacity == 0 ? 0 : Start % Capacity;

    /// <summary>The storage row of absolute position <paramref name="position"/>.</summary>
    public int Slot(int position) => position % Capacity;

    /// <summary>
    /// Writes a chunk's keys and values ([tokens, KvWidth], positions Length … Length + tokens − 1) and returns the view
    /// that holds them. A ring keeps the last Capacity positions (older rows of the chunk are skipped, since they would
    /// be overwritten); a full-attention layer must have room (grow it first).
    /// </summary>
    /// <param name="k">Keys after RoPE.</param>
    /// <param name="v">Values.</param>
    /// <param name="tokens">Rows in the chunk.</param>
    /// <param name="ring">True for a sliding-window layer (wrap around), false for full attention (must fit).</param>
    public KvLayerView Append(ReadOnlySpan<float> k, ReadOnlySpan<float> v, int tokens, bool ring)
    {
        if (Keys is null || Values is null)
        {
            throw new InvalidOperationException("KV layer: cannot append to an empty view; allocate storage first.");
        }

        long size = (long)tokens * KvWidth;
        if (tokens < 0 || k.Length != size || v.Length != size)
        {
            throw new ArgumentException($"KV layer: a chunk of {tokens} positions needs {size} key and value floats, got {k.Length} and {v.Length}.");
        }

        int newLength = checked(Length + tokens);
        if (!ring && newLength > Capacity)
        {
            throw new InvalidOperationException($"KV layer: {newLength} positions do not fit the full-attention capacity {Capacity}; grow the storage first.");
        }

        int first = Math.Max(Length, newLength - Capacity);
        for (int p = first; p < newLength; p++)
        {
            long src = (long)(p - Length) * KvWidth;
            long dst = (long)Slot(p) * KvWidth;
            k.Slice((int)src, KvWidth).CopyTo(Keys.AsSpan((int)dst, KvWidth));
            v.Slice((int)src, KvWidth).CopyTo(Values.AsSpan((int)dst, KvWidth));
        }

        return new KvLayerView(Keys, Values, Capacity, KvWidth, Math.Max(Start, newLength - Capacity), newLength);
    }
}
