using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// Sparse and dense decode on every SIMD width against float64. Tolerance 1e-5 × (|b| + Σ|f·W|) on the weights the SAE
/// holds (bf16-rounded for a bf16 SAE); bf16 against the original fp32 weights within 2^-8 × the same magnitude.
/// </summary>
[Collection(KernelIsaCollection.Name)]
public sealed class DecodeKernelTests
{
    public static TheoryData<string, int, bool> Cases()
    {
        var d = new TheoryData<string, int, bool>();
        foreach (var isa in new[] { KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Vector128, KernelIsa.Scalar })
        {
            foreach (int threads in new[] { 1, 2 })
            {
                d.Add(isa.ToString(), threads, false);
                d.Add(isa.ToString(), threads, true);
            }
        }

        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DecodeMatchesFloat64(string isa, int threads, bool bf16)
    {
        const int tokens = 7;
        using var data = new KernelTestData(33, 1000, bf16, threads, seed: 21);
        var f = data.SparseFeatures(tokens, 40, seed: 22);
        var dense = KernelTestData.Poisoned(tokens * data.DIn);
        var fromSparse = KernelTestData.Poisoned(tokens * data.DIn);
        var batch = SparseFromDense(f, tokens, data.DSae);
        using (new ForcedIsa(Enum.Parse<KernelIsa>(isa)))
        {
            data.Sae.Decode(f, dense);
            data.Sae.DecodeSparse(batch, fromSparse);
        }

        var reference = data.ReferenceDecode(f, tokens, data.UsedWDec);
        Check(data, f, tokens, dense, reference, data.UsedWDec, 1e-5);
        Check(data, f, tokens, fromSparse, reference, data.UsedWDec, 1e-5);
        if (bf16)
        {
            var wide = Array.ConvertAll(data.WDec, v => (double)v);
            Check(data, f, tokens, fromSparse, data.ReferenceDecode(f, tokens, wide), wide, 1.0 / 256);
        }
    }

    private static SparseFeatureBatch SparseFromDense(float[] f, int tokens, int dSae)
    {
        var offsets = new int[tokens + 1];
        var idx = new List<int>();
        var val = new List<float>();
        for (int t = 0; t < tokens; t++)
        {
            for (int j = 0; j < dSae; j++)
            {
                if (f[(t * dSae) + j] != 0f)
                {
                    idx.Add(j);
                    val.Add(f[(t * dSae) + j]);
                }
            }

            offsets[t + 1] = idx.Count;
        }

        return new SparseFeatureBatch(dSae, offsets, [.. idx], [.. val]);
    }

    private static void Check(KernelTestData data, float[] f, int tokens, float[] got, double[] want, double[] weights, double rel)
    {
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < data.DIn; i++)
            {
                double mag = Math.Abs(data.BDec[i]);
                for (int j = 0; j < data.DSae; j++)
                {
                    mag += Math.Abs(f[(t * data.DSae) + j] * weights[((long)j * data.DIn) + i]);
                }

                double w = want[(t * data.DIn) + i];
                float g = got[(t * data.DIn) + i];
                Assert.True(Math.Abs(g - w) <= (rel * mag) + 1e-7, $"token {t} input {i}: got {g}, want {w}");
            }
        }
    }
}
