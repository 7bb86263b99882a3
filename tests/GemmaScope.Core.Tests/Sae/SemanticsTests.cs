using System.Numerics.Tensors;
using GemmaScope.Core.Tests.Support;

namespace GemmaScope.Core.Tests.Sae;

/// <summary>JumpReLUSae against a plain float64 reference on random data at sizes that are not multiples of any vector width.</summary>
public class SemanticsTests
{
    [Theory]
    [InlineData(33, 1000, 1)]
    [InlineData(33, 1000, 7)]
    [InlineData(17, 63, 37)]
    [InlineData(64, 257, 16)]
    public void EncodeDecodeMatchFloat64Reference(int dIn, int dSae, int tokens)
    {
        var (r, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(dIn, dSae, seed: dIn * 31 + dSae);
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, dIn);
        var x = SaeReference.RandomInput(tokens, dIn, seed: tokens);

        var f = SaeReference.Poisoned(tokens * dSae);
        sae.Encode(x, f);
        var expectedF = r.Encode(x);
        AssertGated(r.Pre(x), r.Threshold, expectedF, f, dSae);
        int active = f.Count(v => v != 0);
        Assert.InRange(active, 1, f.Length - 1);

        var xhat = SaeReference.Poisoned(tokens * dIn);
        sae.Decode(f, xhat);
        SaeReference.Close(r.Decode([.. f.Select(v => (double)v)]), xhat, 1e-5, "xhat", dIn);
    }

    /// <summary>Exact gate decisions, except where the float64 pre-activation is within float32 rounding of the threshold.</summary>
    private static void AssertGated(double[] pre, double[] thr, double[] expected, float[] actual, int dSae)
    {
        for (int k = 0; k < pre.Length; k++)
        {
            Assert.False(float.IsNaN(actual[k]), $"f[{k}] not written");
            bool nearGate = Math.Abs(pre[k] - Math.Max(thr[k % dSae], 0)) < 1e-4;
            if (nearGate)
            {
                continue;
            }

            Assert.True(Math.Abs(actual[k] - expected[k]) <= 1e-5 * (1 + Math.Abs(expected[k])), $"f[{k}]: expected {expected[k]} actual {actual[k]} (pre {pre[k]}, threshold {thr[k % dSae]})");
        }
    }

    [Fact]
    public void GateRequiresBothAboveThresholdAndPositive()
    {
        // d_in 1 and W_enc = 1 make pre = x + b_enc exactly, so each case is hand-checkable.
        float[] wEnc = [1, 1, 1];
        float[] wDec = [1, 1, 1];
        float[] bEnc = [0, 0, 0];
        float[] thr = [0.5f, -1f, 2f];
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, [0f], thr, 1);
        Assert.Equal([0.75f, 0.75f, 0f], sae.Encode([0.75f]));
        Assert.Equal([0f, 0f, 0f], sae.Encode([-0.5f]));   // above the negative threshold but not positive
        Assert.Equal(0.5f, sae.Encode([0.5f])[1]);            // strictly greater than 0.5 fails, > -1 and > 0 passes
        Assert.Equal(0f, sae.Encode([0.5f])[0]);
    }

    [Fact]
    public void SingleTokenEqualsBatchRow_SparseEqualsDense()
    {
        var (_, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(29, 301, 5);
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, 29);
        const int tokens = 21;
        var x = SaeReference.RandomInput(tokens, 29, 9);
        var dense = sae.Encode(x);
        var sparse = sae.EncodeSparse(x);
        Assert.Equal(tokens, sparse.TokenCount);
        var fromSparse = SaeReference.Poisoned(dense.Length);
        sparse.ToDense(fromSparse);
        Assert.Equal(dense, fromSparse);

        var idx = new int[301];
        var val = new float[301];
        for (int t = 0; t < tokens; t++)
        {
            var single = sae.Encode(x.AsSpan(t * 29, 29));
            Assert.Equal(dense.AsSpan(t * 301, 301).ToArray(), single);
            int l0 = sae.EncodeSparse(x.AsSpan(t * 29, 29), idx, val);
            Assert.Equal(sparse.L0(t), l0);
            Assert.Equal(sparse[t].Indices.ToArray(), idx[..l0]);
            Assert.Equal(sparse[t].Values.ToArray(), val[..l0]);
            for (int k = 1; k < l0; k++)
            {
                Assert.True(idx[k] > idx[k - 1]);
            }
        }

        var denseDecode = sae.Decode(dense);
        var sparseDecode = SaeReference.Poisoned(denseDecode.Length);
        sae.DecodeSparse(sparse, sparseDecode);
        SaeReference.Close([.. denseDecode.Select(v => (double)v)], sparseDecode, 1e-5, "sparse decode", 29);

        var recon = SaeReference.Poisoned(denseDecode.Length);
        sae.Reconstruct(x, recon);
        SaeReference.Close(sparseDecode.Select(v => (double)v).ToArray(), recon, 1e-5, "reconstruct", 29);
        var r = SaeReference.Random(29, 301, 5).Ref;
        SaeReference.Close(r.Decode(r.Encode(x)), recon, 1e-4, "reconstruct vs float64", 29);
        Assert.Throws<ArgumentException>(() => sae.ReconstructionError(x, x));
        var err = SaeReference.Poisoned(denseDecode.Length);
        sae.ReconstructionError(x, err);
        for (int k = 0; k < err.Length; k++)
        {
            Assert.Equal(x[k] - recon[k], err[k]);
        }
    }

    [Fact]
    public void TooSmallSparseDestinationSaysHowManyAreNeeded()
    {
        var (_, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(8, 50, 2);
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, 8);
        var x = SaeReference.RandomInput(1, 8, 4, scale: 4);
        int l0 = sae.EncodeSparse(x, new int[50], new float[50]);
        Assert.True(l0 >= 2);
        var e = Assert.Throws<ArgumentException>(() => sae.EncodeSparse(x, new int[1], new float[1]));
        Assert.Contains($"{l0} active", e.Message);
    }

    [Fact]
    public void SparseBatchCopiesItsInputs()
    {
        int[] idx = [3];
        var batch = new SparseFeatureBatch(7, [0, 1], idx, [2f]);
        idx[0] = 200_000_000;
        Assert.Equal(3, batch[0].Indices[0]);
        Assert.Throws<ArgumentException>(() => new SparseFeatureBatch(7, [0, 1], [7], [1f]));
    }

    [Fact]
    public void TopKOrdersByValueThenIndex()
    {
        int[] idx = [2, 5, 9, 11, 40];
        float[] val = [0.5f, 3f, 1f, 3f, 2f];
        var top = new SparseFeatures(idx, val).TopK(3);
        Assert.Equal([(5, 3f), (11, 3f), (40, 2f)], top);
        Assert.Equal(5, new SparseFeatures(idx, val).TopK(10).Length);
        Assert.Empty(new SparseFeatures(idx, val).TopK(0));
    }

    [Fact]
    public void DecoderDirectionIsTheDecoderRow()
    {
        var (_, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(13, 40, 8);
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, 13);
        Assert.Equal(wDec.AsSpan(17 * 13, 13).ToArray(), sae.GetDecoderDirection(17));
        Assert.Throws<ArgumentOutOfRangeException>(() => sae.GetDecoderDirection(40));
    }

    [Fact]
    public void WrongLengthsAreRefused()
    {
        var (_, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(13, 40, 8);
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, 13);
        Assert.Throws<ArgumentException>(() => sae.Encode(new float[14], new float[40]));
        Assert.Throws<ArgumentException>(() => sae.Encode(new float[26], new float[40]));
        Assert.Throws<ArgumentException>(() => sae.Decode(new float[41], new float[13]));
        Assert.Throws<ArgumentOutOfRangeException>(() => sae.DecodeSparse([40], [1f], new float[13]));
    }

    [Fact]
    public void TensorOverloads()
    {
        var (r, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(11, 30, 12);
        using var sae = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, 11);
        var x = SaeReference.RandomInput(3, 11, 1);
        var tx = Tensor.Create(x, [3, 11]);
        var tf = sae.Encode(tx);
        Assert.Equal([3, 30], tf.Lengths.ToArray().Select(l => (int)l));
        Assert.Equal(sae.Encode(x), tf.ToArray());
        var txhat = sae.Decode(tf);
        Assert.Equal(sae.Decode(sae.Encode(x)), txhat.ToArray());
        Assert.Throws<ArgumentException>(() => sae.Encode(Tensor.Create(new float[12], [12])));
    }

    [Fact]
    public void DisposedSaeThrows()
    {
        var sae = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        sae.Dispose();
        Assert.Throws<ObjectDisposedException>(() => sae.Encode(new float[33]));
        sae.Dispose();
    }

    [Fact]
    public void ConcurrentCallersGetTheSameResults()
    {
        using var sae = JumpReLUSae.Load(Fixtures.Numpy("params.npz"));
        var x = SaeReference.RandomInput(9, 33, 77);
        var expected = sae.Encode(x);
        var expectedSparse = sae.EncodeSparse(x);
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            Assert.Equal(expected, sae.Encode(x));
            var s = sae.EncodeSparse(x);
            Assert.Equal(expectedSparse.Indices.ToArray(), s.Indices.ToArray());
        });
    }

    [Fact]
    public void BFloat16PrecisionStaysCloseToFloat32()
    {
        // Against the float64 reference on the bf16-rounded weights (tight), and on the float32 weights (looser, stated).
        var (r, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(40, 200, 21);
        using var bf = JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, 40, new SaeLoadOptions { Precision = SaePrecision.BFloat16 });
        Assert.Equal(SaePrecision.BFloat16, bf.Precision);
        var rounded = new SaeReference
        {
            DIn = 40,
            DSae = 200,
            WEnc = [.. wEnc.Select(RoundToBf16)],
            WDec = [.. wDec.Select(RoundToBf16)],
            BEnc = r.BEnc,
            BDec = r.BDec,
            Threshold = r.Threshold,
        };
        var x = SaeReference.RandomInput(5, 40, 22);
        var f = SaeReference.Poisoned(5 * 200);
        bf.Encode(x, f);
        AssertGated(rounded.Pre(x), rounded.Threshold, rounded.Encode(x), f, 200);
        var xhat = SaeReference.Poisoned(5 * 40);
        bf.Decode(f, xhat);
        SaeReference.Close(rounded.Decode([.. f.Select(v => (double)v)]), xhat, 1e-5, "bf16 xhat", 40);

        // Versus float32 weights: bf16 keeps 8 significant bits (relative error ≤ 2^-9 per weight).
        var exact = r.Decode(r.Encode(x));
        double num = 0, den = 0;
        for (int k = 0; k < exact.Length; k++)
        {
            num += (exact[k] - xhat[k]) * (exact[k] - xhat[k]);
            den += exact[k] * exact[k];
        }

        Assert.True(num / den < 1e-3, $"relative squared error of bf16 reconstruction {num / den}");
    }

    /// <summary>Nearest bfloat16 (ties to even), found by comparing the two neighbouring bf16 values in float64.</summary>
    private static double RoundToBf16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        uint lo = bits & 0xFFFF0000, hi = lo + 0x10000;
        double dl = BitConverter.UInt32BitsToSingle(lo), dh = BitConverter.UInt32BitsToSingle(hi);
        double el = Math.Abs(v - dl), eh = Math.Abs(dh - v);
        return el < eh ? dl : eh < el ? dh : ((lo >> 16) & 1) == 0 ? dl : dh;
    }
}
