namespace GemmaScope.Core.Tests.Kernels;

/// <summary>After warm-up, dense encode and decode allocate nothing on the calling thread (scratch is per thread and reused).</summary>
[Collection(KernelIsaCollection.Name)]
public sealed class AllocationTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    public void EncodeAndDecodeDoNotAllocateAfterWarmUp(int tokens)
    {
        using var data = new KernelTestData(33, 1000, bf16: false, threads: 1, seed: 4);
        var x = KernelTestData.Fill(new Random(6), tokens * data.DIn, 1f);
        var f = new float[tokens * data.DSae];
        var xhat = new float[tokens * data.DIn];
        // Warm past tiered compilation's call-count threshold and let the tier-1 code install: the runtime's own tiering
        // work can allocate on the calling thread, which is not the kernels' doing.
        for (int i = 0; i < 200; i++)
        {
            data.Sae.Encode(x, f);
            data.Sae.Decode(f, xhat);
        }

        Thread.Sleep(300);
        data.Sae.Encode(x, f);
        data.Sae.Decode(f, xhat);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++)
        {
            data.Sae.Encode(x, f);
            data.Sae.Decode(f, xhat);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(37, 1)]
    [InlineData(37, 2)]
    public void EncodeSparseIntoBufferDoesNotAllocateAfterWarmUp(int tokens, int threads)
    {
        using var data = new KernelTestData(33, 1000, bf16: false, threads, seed: 5);
        var x = KernelTestData.Fill(new Random(8), tokens * data.DIn, 1f);
        var buffer = new SparseFeatureBuffer();
        for (int i = 0; i < 200; i++)
        {
            data.Sae.EncodeSparse(x, buffer);
        }

        Thread.Sleep(300);
        data.Sae.EncodeSparse(x, buffer);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++)
        {
            data.Sae.EncodeSparse(x, buffer);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(tokens, buffer.TokenCount);
        Assert.True(buffer.Indices.Length > 0);
    }
}
