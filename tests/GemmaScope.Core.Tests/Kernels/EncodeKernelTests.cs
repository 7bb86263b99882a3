using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// Encode kernels (streaming GEMV in place; GEMM from the one-time panel copy, or packing per call when the SAE keeps
/// no copy) on every SIMD width, 1 and 2 threads, against
/// float64. Tolerances: fp32 weights 1e-5 × Σ|x·W|; bf16 weights 1e-5 × Σ|x·W| against the reference on the same
/// bf16-rounded weights, and 2^-8 × Σ|x·W| (bf16 keeps 8 significant bits, relative rounding error ≤ 2^-9) against
/// the original fp32 weights.
/// </summary>
[Collection(KernelIsaCollection.Name)]
public sealed class EncodeKernelTests
{
    public static TheoryData<string, int, int, bool, bool> Cases()
    {
        var d = new TheoryData<string, int, int, bool, bool>();
        foreach (var isa in new[] { KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Vector128, KernelIsa.Scalar })
        {
            foreach (int threads in new[] { 1, 2 })
            {
                foreach (int tokens in new[] { 1, 3, 7, 12, 37 })
                {
                    foreach (bool bf16 in new[] { false, true })
                    {
                        foreach (bool pack in new[] { true, false })
                        {
                            d.Add(isa.ToString(), threads, tokens, bf16, pack);
                        }
                    }
                }
            }
        }

        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DenseEncodeMatchesFloat64(string isa, int threads, int tokens, bool bf16, bool pack)
    {
        using var data = new KernelTestData(33, 1000, bf16, threads, seed: tokens + (threads * 100), pack);
        var x = KernelTestData.Fill(new Random(tokens), tokens * data.DIn, 1f);
        var f = KernelTestData.Poisoned(tokens * data.DSae);
        using (new ForcedIsa(Enum.Parse<KernelIsa>(isa)))
        {
            data.Sae.Encode(x, f);
        }

        data.CheckEncode(x, tokens, f, data.UsedWEnc, 1e-5);
        if (bf16)
        {
            data.CheckEncode(x, tokens, f, Array.ConvertAll(data.WEnc, v => (double)v), 1.0 / 256);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SparseEncodeMatchesFloat64(string isa, int threads, int tokens, bool bf16, bool pack)
    {
        using var data = new KernelTestData(33, 1000, bf16, threads, seed: 7 + tokens + (threads * 100), pack);
        var x = KernelTestData.Fill(new Random(tokens + 1), tokens * data.DIn, 1f);
        SparseFeatureBatch sparse;
        using (new ForcedIsa(Enum.Parse<KernelIsa>(isa)))
        {
            sparse = data.Sae.EncodeSparse(x);
        }

        Assert.Equal(tokens, sparse.TokenCount);
        for (int t = 0; t < tokens; t++)
        {
            var idx = sparse[t].Indices;
            for (int k = 1; k < idx.Length; k++)
            {
                Assert.True(idx[k - 1] < idx[k], $"token {t}: indices not increasing at {k}");
            }

            foreach (float v in sparse[t].Values)
            {
                Assert.True(v > 0f, $"token {t}: stored value {v} is not an active feature");
            }
        }

        var dense = KernelTestData.Poisoned(tokens * data.DSae);
        sparse.ToDense(dense);
        data.CheckEncode(x, tokens, dense, data.UsedWEnc, 1e-5);
    }

    [Theory]
    [InlineData("Vector512", 1)]
    [InlineData("Vector512", 2)]
    [InlineData("Scalar", 2)]
    public void SingleTokenSparseIntoSpans(string isa, int threads)
    {
        using var data = new KernelTestData(33, 1000, bf16: false, threads, seed: 3);
        var x = KernelTestData.Fill(new Random(5), data.DIn, 1f);
        var idx = new int[data.DSae];
        var val = KernelTestData.Poisoned(data.DSae);
        int n;
        using (new ForcedIsa(Enum.Parse<KernelIsa>(isa)))
        {
            n = data.Sae.EncodeSparse(x, idx, val);
        }

        var dense = new float[data.DSae];
        for (int k = 0; k < n; k++)
        {
            Assert.True(k == 0 || idx[k - 1] < idx[k]);
            dense[idx[k]] = val[k];
        }

        data.CheckEncode(x, 1, dense, data.UsedWEnc, 1e-5);
        var e = Assert.Throws<ArgumentException>(() => data.Sae.EncodeSparse(x, new int[n - 1], new float[n - 1]));
        Assert.Contains($"{n} active features", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(17)]
    [InlineData(18)]
    [InlineData(19)]
    [InlineData(20)]
    [InlineData(21)]
    [InlineData(22)]
    [InlineData(23)]
    public void GemmPartialTilesOfEveryHeight(int tokens)
    {
        // Above the GEMV limits for both precisions, so the GEMM runs with a last tile of tokens mod 6 rows (5, 0, 1..5).
        foreach (var (bf16, pack) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            using var data = new KernelTestData(33, 1000, bf16, threads: 2, seed: 40 + tokens, pack);
            var x = KernelTestData.Fill(new Random(tokens), tokens * data.DIn, 1f);
            var f = KernelTestData.Poisoned(tokens * data.DSae);
            data.Sae.Encode(x, f);
            data.CheckEncode(x, tokens, f, data.UsedWEnc, 1e-5);
        }
    }

    public static TheoryData<string, int, int, bool> PackedBlockCases()
    {
        var d = new TheoryData<string, int, int, bool>();
        foreach (var isa in new[] { KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Vector128, KernelIsa.Scalar })
        {
            foreach (int threads in new[] { 1, 2 })
            {
                foreach (int tokens in new[] { 2, 6, 13 })
                {
                    foreach (bool bf16 in new[] { false, true })
                    {
                        d.Add(isa.ToString(), threads, tokens, bf16);
                    }
                }
            }
        }

        return d;
    }

    /// <summary>
    /// The packed GEMM with its K dimension split in blocks (partial sums parked between them), forced small so the test
    /// shape crosses several: d_in 301 in blocks of 43 (7 equal blocks, as the L2 rule would split it), a partial last panel
    /// (2085 columns), every tile height, dense and sparse.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedBlockCases))]
    public void PackedGemmAcrossKBlocks(string isa, int threads, int tokens, bool bf16)
    {
        PackedEncoder.ForcedKBlock = 43;
        try
        {
            using var data = new KernelTestData(301, 2085, bf16, threads, seed: 70 + tokens);
            var x = KernelTestData.Fill(new Random(71 + tokens), tokens * data.DIn, 1f);
            var f = KernelTestData.Poisoned(tokens * data.DSae);
            SparseFeatureBatch sparse;
            using (new ForcedIsa(Enum.Parse<KernelIsa>(isa)))
            {
                data.Sae.Encode(x, f);
                sparse = data.Sae.EncodeSparse(x);
            }

            data.CheckEncode(x, tokens, f, data.UsedWEnc, 1e-5);
            var dense = KernelTestData.Poisoned(tokens * data.DSae);
            sparse.ToDense(dense);
            data.CheckEncode(x, tokens, dense, data.UsedWEnc, 1e-5);
            Assert.True(data.Sae.PackedEncoderBytes >= (long)data.DIn * data.DSae * (bf16 ? 2 : 4), "the packed copy was not built");
        }
        finally
        {
            PackedEncoder.ForcedKBlock = null;
        }
    }

    [Theory]
    [InlineData("Vector512", 1)]
    [InlineData("Vector256", 2)]
    [InlineData("Vector128", 1)]
    [InlineData("Scalar", 2)]
    public void SparseIntoReusedBufferMatchesFloat64(string isa, int threads)
    {
        // One buffer across batches that grow and shrink: each result must be the batch's own, nothing left over.
        using var data = new KernelTestData(37, 1003, bf16: false, threads, seed: 90);
        var buffer = new SparseFeatureBuffer();
        foreach (int tokens in new[] { 13, 1, 40, 3 })
        {
            var x = KernelTestData.Fill(new Random(91 + tokens), tokens * data.DIn, 1f);
            using (new ForcedIsa(Enum.Parse<KernelIsa>(isa)))
            {
                data.Sae.EncodeSparse(x, buffer);
            }

            Assert.Equal(tokens, buffer.TokenCount);
            Assert.Equal(buffer.Offsets[tokens], buffer.Indices.Length);
            var dense = KernelTestData.Poisoned(tokens * data.DSae);
            buffer.ToBatch().ToDense(dense);
            data.CheckEncode(x, tokens, dense, data.UsedWEnc, 1e-5);
            for (int t = 0; t < tokens; t++)
            {
                var idx = buffer[t].Indices;
                for (int k = 1; k < idx.Length; k++)
                {
                    Assert.True(idx[k - 1] < idx[k], $"token {t}: indices not increasing at {k}");
                }
            }
        }
    }

    [Fact]
    public void OneTokenIsCorrectWhileThePackedCopyBuildsInBackground()
    {
        // One token never waits for the copy: the first calls stream W_enc in place, later ones use the copy once built.
        using var data = new KernelTestData(301, 2085, bf16: false, threads: 2, seed: 21);
        PackedEncoderCache.BuildInBackground = true;
        try
        {
            var x = KernelTestData.Fill(new Random(22), data.DIn, 1f);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            bool built = false;
            while (!built && sw.Elapsed < TimeSpan.FromSeconds(20))
            {
                built = data.Sae.PackedEncoderBytes > 0;
                var f = KernelTestData.Poisoned(data.DSae);
                data.Sae.Encode(x, f);
                data.CheckEncode(x, 1, f, data.UsedWEnc, 1e-5);
            }

            Assert.True(built, "the background build never finished");
        }
        finally
        {
            PackedEncoderCache.BuildInBackground = false;
        }
    }

    [Fact]
    public void KBlockSplitsDInEquallyWithinHalfOfL2()
    {
        // 2304 fp32 rows of 64 columns (256 B) in half of 1 MiB: 2048 rows at most, so 2 blocks of 1152.
        Assert.Equal(1152, PackedEncoder.ChooseKBlock(2304, 256, 1L << 20));
        Assert.Equal(2304, PackedEncoder.ChooseKBlock(2304, 256, 2L << 20));
        Assert.Equal(1792, PackedEncoder.ChooseKBlock(3584, 256, 1L << 20));
        Assert.Equal(3584, PackedEncoder.ChooseKBlock(3584, 256, 2L << 20));
        Assert.Equal(3584, PackedEncoder.ChooseKBlock(3584, 128, 1L << 20));
    }

    [Fact]
    public void LargerShapeCrossesGemmBlocks()
    {
        // d_in not a multiple of 4 or 16, several slivers per thread, a partial last sliver and a partial token tile.
        foreach (bool pack in new[] { false, true })
        {
            using var data = new KernelTestData(301, 2085, bf16: false, threads: 2, seed: 11, pack);
            var x = KernelTestData.Fill(new Random(12), 13 * data.DIn, 1f);
            var f = KernelTestData.Poisoned(13 * data.DSae);
            data.Sae.Encode(x, f);
            data.CheckEncode(x, 13, f, data.UsedWEnc, 1e-5);
        }
    }
}

/// <summary>Tests that force a SIMD width run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelIsaCollection
{
    public const string Name = "KernelIsa";
}

/// <summary>Forces a kernel width for a scope.</summary>
internal readonly struct ForcedIsa : IDisposable
{
    private readonly KernelIsa _old;

    public ForcedIsa(KernelIsa isa)
    {
        _old = KernelSelector.ForcedIsa;
        KernelSelector.ForcedIsa = isa;
    }

    public void Dispose() => KernelSelector.ForcedIsa = _old;
}
