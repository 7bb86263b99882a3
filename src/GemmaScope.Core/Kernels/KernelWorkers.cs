using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace GemmaScope.Kernels;

/// <summary>A unit of parallel kernel work: <see cref="Execute"/> runs part <c>part</c> of <c>parts</c>.</summary>
internal abstract class KernelJob
{
    public abstract void Execute(int part, int parts);

    /// <summary>
    /// The items [Start, End) of <paramref name="count"/> that part <paramref name="part"/> of <paramref name="parts"/> owns:
    /// contiguous, in part order, sizes differing by at most one (count · part / parts, rounded down, in 64 bits). The one
    /// split every kernel uses; which part computes an item never changes its bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Start, int End) Share(int count, int part, int parts) =>
        ((int)((long)count * part / parts), (int)((long)count * (part + 1) / parts));
}

/// <summary>
/// Persistent worker threads for the kernels, so a parallel call allocates nothing and wakes parked threads instead of
/// queueing delegates. The calling thread runs part 0. One parallel call at a time: a caller that finds the workers busy
/// (another SAE encoding concurrently) runs all its parts itself, which is correct and avoids oversubscription.
/// </summary>
internal static class KernelWorkers
{
    private static readonly Lock Gate = new();
    private static readonly List<Worker> Workers = [];
    private static readonly ManualResetEventSlim Done = new(false);
    private static KernelJob? _job;
    private static int _parts;
    private static int _pending;
    private static Exception? _error;

    public static void Run(KernelJob job, int parts)
    {
        if (parts <= 1 || !Gate.TryEnter())
        {
            for (int p = 0; p < parts; p++)
            {
                job.Execute(p, parts);
            }

            return;
        }

        try
        {
            while (Workers.Count < parts - 1)
            {
                Workers.Add(new Worker(Workers.Count + 1));
            }

            _job = job;
            _parts = parts;
            _error = null;
            _pending = parts - 1;
            Done.Reset();
            for (int i = 0; i < parts - 1; i++)
            {
                Workers[i].Start.Release();
            }

            try
            {
                job.Execute(0, parts);
            }
            finally
            {
                Done.Wait();
                _job = null;
            }

            if (_error is { } e)
            {
                ExceptionDispatchInfo.Capture(e).Throw();
            }
        }
        finally
        {
            Gate.Exit();
        }
    }

    private sealed class Worker
    {
        private readonly int _part;

        public Worker(int part)
        {
            _part = part;
            var t = new Thread(Loop) { IsBackground = true, Name = $"GemmaScope kernel {part}" };
            t.Start();
        }

        public SemaphoreSlim Start { get; } = new(0);

        private void Loop()
        {
            while (true)
            {
                Start.Wait();
                try
                {
                    _job!.Execute(_part, _parts);
                }
                catch (Exception e)
                {
                    _error = e;
                }

                if (Interlocked.Decrement(ref _pending) == 0)
                {
                    Done.Set();
                }
            }
        }
    }
}
