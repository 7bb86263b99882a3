using GemmaScope.Kernels;

namespace GemmaScope.Tests.Kernels;

/// <summary>
/// Encode kernels (streaming GEMV for ≤ 4 tokens, packed GEMM above) on every SIMD width, 1 and 2 threads, against
/// float64. Tolerances: fp32 weights 1e-5 × Σ|x·W|; bf16 weights 1e-5 × Σ|x·W| against the reference on the same
/// bf16-rounded weights, and 2^-8 × Σ|x·W| (bf16 keeps 8 significant bits, relative rounding error ≤ 2^-9) against
/// the original fp32 weights.
/// </summary>
[Collection(KernelIsaCollection.Name)]
public sealed class EncodeKernelTests
{
    public static TheoryData<string, int, int, bool> Cases()
    {
        var d = new TheoryData<string, int, int, bool>();
        foreach (var isa in new[] { KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Vector128, KernelIsa.Scalar })
        {
            foreach (int threads in new[] { 1, 2 })
            {
                foreach (int tokens in new[] { 1, 3, 7, 12, 37 })
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

    [Theory]
    [MemberData(nameof(Cases))]
    public void DenseEncodeMatchesFloat64(string isa, int threads, int tokens, bool bf16)
    {
        using var data = new KernelTestData(33, 1000, bf16, threads, seed: tokens + (threads * 100));
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
    public void SparseEncodeMatchesFloat64(string isa, int threads, int tokens, bool bf16)
    {
        using var data = new KernelTestData(33, 1000, bf16, threads, seed: 7 + tokens + (threads * 100));
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
        foreach (bool bf16 in new[] { false, true })
        {
            using var data = new KernelTestData(33, 1000, bf16, threads: 2, seed: 40 + tokens);
            var x = KernelTestData.Fill(new Random(tokens), tokens * data.DIn, 1f);
            var f = KernelTestData.Poisoned(tokens * data.DSae);
            data.Sae.Encode(x, f);
            data.CheckEncode(x, tokens, f, data.UsedWEnc, 1e-5);
        }
    }

    [Fact]
    public void LargerShapeCrossesGemmBlocks()
    {
        // d_in not a multiple of 4 or 16, several slivers per thread, a partial last sliver and a partial token tile.
        using var data = new KernelTestData(301, 2085, bf16: false, threads: 2, seed: 11);
        var x = KernelTestData.Fill(new Random(12), 13 * data.DIn, 1f);
        var f = KernelTestData.Poisoned(13 * data.DSae);
        data.Sae.Encode(x, f);
        data.CheckEncode(x, 13, f, data.UsedWEnc, 1e-5);
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
