using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
        // Callers size the heap for every push (3 entries per symbol), so indexing skips bounds checks.
        ref long h = ref MemoryMarshal.GetArrayDataReference(heap);
        int i = count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            long p = Unsafe.Add(ref h, parent);
            if (p <= key)
            {
                break;
            }

            Unsafe.Add(ref h, i) = p;
            i = parent;
        }

        Unsafe.Add(ref h, i) = key;
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
        ref long h = ref MemoryMarshal.GetArrayDataReference(heap);
        long key = Unsafe.Add(ref h, i);
        while (true)
        {
            int child = (2 * i) + 1;
            if (child >= count)
            {
                break;
            }

            long c = Unsafe.Add(ref h, child);
            if (child + 1 < count)
            {
                // Branch-free pick of the smaller child: the comparison is unpredictable.
                long c2 = Unsafe.Add(ref h, child + 1);
                int right = c2 < c ? 1 : 0;
                child += right;
                c = right != 0 ? c2 : c;
            }

            if (key <= c)
            {
                break;
            }

            Unsafe.Add(ref h, i) = c;
            i = child;
        }

        Unsafe.Add(ref h, i) = key;
    }
}
