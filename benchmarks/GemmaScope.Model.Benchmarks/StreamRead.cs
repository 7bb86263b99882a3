using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Memory-bandwidth probe: sum = Σ buffer[i] over a buffer far larger than the last-level cache, split into one
/// contiguous part per thread. Bytes read ÷ time is the streaming read rate the decode's weight reads are bounded by.
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
        Parallel.For(0, _threads, new ParallelOptions { MaxDegreeOfParallelism = _threads }, t =>
        {
            long per = _count / _threads / 64 * 64;
            long start = t * per, end = t == _threads - 1 ? _count : start + per;
            _partial[t] = Sum(start, end);
        });
        double s = 0;
        foreach (double v in _partial)
        {
            s += v;
        }

        return s;
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
