using GemmaScope.Engine.Kernels;
using GemmaScope.Models;

namespace GemmaScope.Engine;

/// <summary>
/// The keys (after RoPE) and values of one sequence's past tokens, per layer, so that a later
/// <see cref="GemmaEngine.Forward"/> call continues the sequence without recomputing it. Global layers keep every
/// position (growing by doubling); sliding-window layers keep a ring buffer of the window (growing up to it). Create with <see cref="GemmaEngine.CreateCache"/>. Not thread-safe: one call at a time
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
/// One layer's keys (after RoPE) and values for one sequence, stored as the attention kernel reads them
/// (<see cref="KvLayerView"/>: position p in slot p mod capacity). Global layers grow by doubling and keep every
/// position; sliding layers grow up to the window and then turn into a ring of exactly the window (a chunk's own keys
/// are read from the chunk, so the ring needs only the window − 1 positions before it). Storage is allocated on first use.
/// </summary>
internal sealed class LayerKv(int width, int? window)
{
    public int Width { get; } = width;

    /// <summary>Sliding window (keys within this many positions, itself included), or null for global attention.</summary>
    public int? Window { get; } = window;

    /// <summary>What the kernel reads; default (empty) before the first append.</summary>
    public KvLayerView View { get; private set; }

    public int Capacity => View.Keys is null ? 0 : View.Capacity;

    /// <summary>Makes room to append <paramref name="adding"/> positions after <paramref name="length"/>.</summary>
    public void Reserve(int length, int adding)
    {
        if (Capacity > 0 && View.Length != length)
        {
            throw new InvalidOperationException($"KV cache layer holds {View.Length} positions, the sequence {length}.");
        }

        long needed = (long)length + adding;
        if (Window is int w && Capacity == w)
        {
            return; // a full ring: it wraps
        }

        if (needed <= Capacity)
        {
            return;
        }

        long grown = Math.Max(needed, 2L * Capacity);
        if (Window is int w2)
        {
            grown = Math.Min(grown, w2);
        }

        if (grown * Width > Array.MaxLength)
        {
            throw new InvalidOperationException($"A KV cache of {grown} positions × {Width} floats exceeds one array: use shorter sequences.");
        }

        var next = KvLayerView.Allocate((int)grown, Width);

        // not yet wrapped (length ≤ old capacity < window, or a global layer): position p is in row p in both
        if (length > 0)
        {
            View.Keys.AsSpan(0, length * Width).CopyTo(next.Keys);
            View.Values.AsSpan(0, length * Width).CopyTo(next.Values);
        }

        View = new KvLayerView(next.Keys!, next.Values!, next.Capacity, Width, 0, length);
    }

    /// <summary>Appends a chunk's keys and values (after the attention that read the old view).</summary>
    public void Append(ReadOnlySpan<float> k, ReadOnlySpan<float> v, int tokens) =>
        View = View.Append(k, v, tokens, ring: Window is not null);

    public void Release() => View = default;
}
