using System.Runtime.CompilerServices;

namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// Binary min-heap over packed keys (priority &lt;&lt; 32 | position): one long compare orders by merge
/// priority first and leftmost position second, which is the tie-break both HF and SentencePiece use.
/// </summary>
internal static class MinHeap
{
    public static void Heapify(long[] heap, int count)
    {
        for (int i = (count >> 1) - 1; i >= 0; i--)
        {
            SiftDown(heap, count, i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Push(long[] heap, ref int count, long key)
    {
        int i = count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            long p = heap[parent];
            if (p <= key)
            {
                break;
            }

            heap[i] = p;
            i = parent;
        }

        heap[i] = key;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Pop(long[] heap, ref int count)
    {
        long top = heap[0];
        count--;
        if (count > 0)
        {
            heap[0] = heap[count];
            SiftDown(heap, count, 0);
        }

        return top;
    }

    private static void SiftDown(long[] heap, int count, int i)
    {
        long key = heap[i];
        while (true)
        {
            int child = (2 * i) + 1;
            if (child >= count)
            {
                break;
            }

            long c = heap[child];
            if (child + 1 < count && heap[child + 1] < c)
            {
                child++;
                c = heap[child];
            }

            if (key <= c)
            {
                break;
            }

            heap[i] = c;
            i = child;
        }

        heap[i] = key;
    }
}
