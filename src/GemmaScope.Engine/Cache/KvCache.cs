using GemmaScope.Models;

namespace GemmaScope.Engine;

/// <summary>
/// The keys (after RoPE) and values of one sequence's past tokens, per layer, so that a later
/// <see cref="GemmaEngine.Forward"/> call continues the sequence without recomputing it. Global layers keep every
/// position (growing by doubling); sliding-window layers keep a ring buffer of the last window − 1 positions plus the
/// rows of the call in progress. Create with <see cref="GemmaEngine.CreateCache"/>. Not thread-safe: one call at a time
/// (a second concurrent use throws).
/// </summary>
public sealed class KvCache : IDisposable
{
    private int _busy;
    private bool _disposed;

    internal KvCache(GemmaEngine owner, GemmaArchitecture arch)
    {
        Owner = owner;
        Layers = new LayerKv[arch.Layers];
        int width = arch.KvHeads * arch.HeadDim;
        for (int l = 0; l < arch.Layers; l++)
        {
            Layers[l] = new LayerKv(width, arch.LayerKinds[l].SlidingWindow);
        }
    }

    internal GemmaEngine Owner { get; }

    internal LayerKv[] Layers { get; }

    /// <summary>Tokens the cache holds the past of (the position the next token will have).</summary>
    public int Length { get; internal set; }

    /// <summary>Bytes of K/V storage currently allocated (all layers).</summary>
    public long AllocatedBytes
    {
        get
        {
            long b = 0;
            foreach (var l in Layers)
            {
                b += 2L * l.Capacity * l.Width * sizeof(float);
            }

            return b;
        }
    }

    /// <summary>Forgets every token (keeps the storage for reuse).</summary>
    public void Clear()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Length = 0;
    }

    internal void Enter()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            throw new InvalidOperationException("This KvCache is in use by another Forward call (or appears twice in one request): a cache holds one sequence.");
        }
    }

    internal void Exit() => Volatile.Write(ref _busy, 0);

    /// <summary>Releases the storage; the cache cannot be used afterwards.</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var l in Layers)
        {
            l.Release();
        }
    }
}

/// <summary>
/// One layer's K and V rows [capacity, kv_heads × head_dim]. Position p lives in row p (global layers, or a sequence
/// without a cache) or row p mod capacity (a sliding layer's ring). Before a call adds n rows at positions
/// [L, L + n), <see cref="Reserve"/> makes room so that every key a new query can see, positions
/// [max(0, L − window + 1), L + n), is held at once: the ring never overwrites a key still needed in the same call.
/// </summary>
internal sealed class LayerKv
{
    public LayerKv(int width, int? window)
    {
        Width = width;
        Window = window;
    }

    public int Width { get; }

    /// <summary>Sliding window (keys within this many positions, itself included), or null for global attention.</summary>
    public int? Window { get; }

    public float[] K { get; private set; } = [];

    public float[] V { get; private set; } = [];

    public int Capacity { get; private set; }

    /// <summary>True when rows are addressed modulo <see cref="Capacity"/> (sliding layers of a persistent cache).</summary>
    public bool Ring => Window is not null;

    public int Row(int position) => Ring ? position % Capacity : position;

    /// <summary>Makes room for <paramref name="adding"/> positions after <paramref name="length"/>, keeping the visible past.</summary>
    public void Reserve(int length, int adding)
    {
        long needed = Window is int w ? Math.Min((long)length + adding, (long)w - 1 + adding) : (long)length + adding;
        if (needed <= Capacity)
        {
            return;
        }

        if ((long)Width * needed > Array.MaxLength)
        {
            throw new InvalidOperationException($"KV cache of {needed} positions × {Width} floats exceeds one array; use shorter sequences.");
        }

        long grown = Math.Max(needed, Math.Min(2L * Capacity, Window is int w2 ? (long)w2 - 1 + adding : long.MaxValue));
        int capacity = (int)Math.Min(grown, Array.MaxLength / Width);
        var k = new float[(long)capacity * Width];
        var v = new float[(long)capacity * Width];

        // keep the positions a query may still see, each at its row under the new capacity
        int first = Window is int w3 ? Math.Max(0, length - (w3 - 1)) : 0;
        for (int p = first; p < length; p++)
        {
            int from = Row(p), to = Window is null ? p : p % capacity;
            Array.Copy(K, (long)from * Width, k, (long)to * Width, Width);
            Array.Copy(V, (long)from * Width, v, (long)to * Width, Width);
        }

        K = k;
        V = v;
        Capacity = capacity;
    }

    public void Release()
    {
        K = [];
        V = [];
        Capacity = 0;
    }
}
