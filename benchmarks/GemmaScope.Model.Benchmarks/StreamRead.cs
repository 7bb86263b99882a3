using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Memory-bandwidth probe: sum = Σ buffer[i] over a buffer far larger than the last-level cache, read by all threads
/// in 4 MiB chunks. Bytes read ÷ time is the streaming read rate the decode's weight reads are bounded by.
/// Four independent Vector512 accumulators so the adds never limit the loads.
/// </summary>
internal sealed class StreamRead : IDisposable
{
    private readonly nint _buffer;
    private readonly long _count;
    private readonly int _threads;
    private readonly double[] _partial;

    public StreamRead(long bytes, int threads)
    {
        _count = bytes / sizeof(float) / 64 * 64;
        _threads = threads;
        _partial = new double[threads];
        unsafe
        {
            _buffer = (nint)NativeMemory.AlignedAlloc((nuint)(_count * sizeof(float)), 4096);

            float* p = (float*)_buffer;
            for (long i = 0; i < _count; i++)
            {
                p[i] = (i % 7) * 0.25f; // touch every page, non-zero data
            }
        }
    }

    public long Bytes => _count * sizeof(float);

    public double Run()
    {
        // 4 MiB chunks handed out dynamically (as ORT's thread pool does), so one thread descheduled by another job
        // on a shared core does not leave the other idle: the probe then measures memory, not the scheduler.
        const long Chunk = 1L << 20;
        long chunks = (_count + Chunk - 1) / Chunk;
        long next = -1;
        Array.Clear(_partial);
        Parallel.For(0, _threads, new ParallelOptions { MaxDegreeOfParallelism = _threads }, t =>
        {
            double s = 0;
            for (long c = Interlocked.Increment(ref next); c < chunks; c = Interlocked.Increment(ref next))
            {
                s += Sum(c * Chunk, Math.Min(_count, (c + 1) * Chunk));
            }

            _partial[t] = s;
        });
        double total = 0;
        foreach (double v in _partial)
        {
            total += v;
        }

        return total;
    }

    private unsafe double Sum(long start, long end)
    {
        float* p = (float*)_buffer;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        long i = start;
        for (; i + 64 <= end; i += 64)
        {
            a0 += Vector512.Load(p + i);
            a1 += Vector512.Load(p + i + 16);
            a2 += Vector512.Load(p + i + 32);
            a3 += Vector512.Load(p + i + 48);
        }

        float tail = 0;
        for (; i < end; i++)
        {
            tail += p[i];
        }

        return Vector512.Sum(a0 + a1 + a2 + a3) + tail;
    }

    public void Dispose()
    {
        unsafe
        {
            NativeMemory.AlignedFree((void*)_buffer);
        }
    }
}
