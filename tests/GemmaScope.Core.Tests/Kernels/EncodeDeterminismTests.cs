using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// Issue 20: the same token must give the same bits on every encode path (dense, sparse, the one-token span overload,
/// the reusable buffer; fp32, bf16, screened), alone or at any position of a batch of any size, on 1, 2 or 8 threads,
/// and before, during or after the background build of the packed W_enc copy.
/// <para>Expected bits are not taken from the library: they are the one summation order every kernel documents,
/// computed here in plain scalar C#: s = 0; s = fma(x_i, W_enc[i, j], s) for i = 0 … d_in − 1; pre = s + b_enc[j];
/// f = pre if pre &gt; threshold[j] and pre &gt; 0, else 0 (bf16 weights rounded to nearest even, then widened).</para>
/// <para>Shape: d_in 75 (not a multiple of 4, 8 or 16: every row-group tail runs), d_sae 1000 (a partial last panel and
/// SIMD tail), the packed copy split in K blocks of 43 (partial sums parked between blocks).</para>
/// </summary>
[Collection(KernelIsaCollection.Name)]
public sealed class EncodeDeterminismTests
{
    private const int DIn = 75;
    private const int DSae = 1000;
    private const int Pool = 64;

    private readonly float[] _wEnc;
    private readonly float[] _wDec;
    private readonly float[] _bEnc;
    private readonly float[] _bDec;
    private readonly float[] _thr;
    private readonly float[] _x;

    public EncodeDeterminismTests()
    {
        var rng = new Random(2020);
        _wEnc = KernelTestData.Fill(rng, DIn * DSae, 1f / MathF.Sqrt(DIn));
        _wDec = KernelTestData.Fill(rng, DSae * DIn, 1f / MathF.Sqrt(DIn));
        _bEnc = KernelTestData.Fill(rng, DSae, 0.1f);
        _bDec = KernelTestData.Fill(rng, DIn, 0.1f);
        _thr = new float[DSae];
        for (int j = 0; j < DSae; j++)
        {
            _thr[j] = (float)(rng.NextDouble() * 0.4);
        }

        _x = KernelTestData.Fill(rng, Pool * DIn, 1f);
    }

    public static TheoryData<bool, bool, bool> Paths() => new()
    {
        { false, true, false },
        { false, false, false },
        { true, true, false },
        { true, false, false },
        { false, true, true },
        { false, false, true },
    };

    /// <summary>Each of 64 tokens alone, and every token at every position of batches of 2, 7 and 64, on 1, 2 and 8 threads.</summary>
    [Theory]
    [MemberData(nameof(Paths))]
    public void EveryPathGivesTheCanonicalBitsAloneOrInAnyBatch(bool bf16, bool pack, bool screening)
    {
        var want = Canonical(bf16);
        PackedEncoder.ForcedKBlock = 43;
        try
        {
            foreach (int threads in new[] { 1, 2, 8 })
            {
                using var sae = Make(bf16, threads, pack, screening);
                if (sae.Weights.Packed is { } cache)
                {
                    cache.Background = false;
                }

                CheckAlone(sae, want, $"threads {threads}");
                var buffer = new SparseFeatureBuffer();
                foreach (int n in new[] { 2, 7, Pool })
                {
                    // Rotation r puts pool token (r + i) mod 64 at position i: over all r < n, with n = 64, every token
                    // sits at every position, and each row is compared with that token's own canonical bits.
                    var batch = new float[n * DIn];
                    var f = new float[n * DSae];
                    var dense = new float[n * DSae];
                    for (int r = 0; r < n; r++)
                    {
                        for (int i = 0; i < n; i++)
                        {
                            _x.AsSpan(((r + i) % Pool) * DIn, DIn).CopyTo(batch.AsSpan(i * DIn));
                        }

                        string at = $"threads {threads}, batch of {n}, rotation {r}";
                        f.AsSpan().Fill(float.NaN);
                        sae.Encode(batch, f);
                        CheckRows(f, n, r, want, at + ", dense");
                        sae.EncodeSparse(batch).ToDense(dense);
                        CheckRows(dense, n, r, want, at + ", sparse");
                        sae.EncodeSparse(batch, buffer);
                        buffer.ToBatch().ToDense(dense);
                        CheckRows(dense, n, r, want, at + ", sparse into a buffer");
                    }
                }

                if (pack)
                {
                    Assert.True(sae.PackedEncoderBytes > 0, "the packed copy was never built, so its path was not tested");
                }
            }
        }
        finally
        {
            PackedEncoder.ForcedKBlock = null;
        }
    }

    /// <summary>One-token calls before the background pack starts, while it is held in progress, and after it is published; a batch waits for it.</summary>
    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(false, 8)]
    [InlineData(true, 1)]
    [InlineData(true, 2)]
    [InlineData(true, 8)]
    public async Task OneTokenGivesTheSameBitsBeforeDuringAndAfterTheBackgroundPack(bool bf16, int threads)
    {
        var want = Canonical(bf16);
        using var sae = Make(bf16, threads, pack: true, screening: false);
        var cache = sae.Weights.Packed!;
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        cache.Background = true;
        cache.BeforeBuild = () =>
        {
            entered.Set();
            release.Wait();
        };
        try
        {
            // Before: nothing built or started; this first call starts the build and must not wait for it.
            Assert.Equal(0, sae.PackedEncoderBytes);
            var f = KernelTestData.Poisoned(DSae);
            sae.Encode(_x.AsSpan(0, DIn), f);
            CheckRows(f, 1, 0, want, $"threads {threads}, first call, before the pack");
            Assert.True(entered.Wait(TimeSpan.FromMinutes(5)), "the background pack never started");

            // During: the build holds its lock and has published nothing.
            CheckAlone(sae, want, $"threads {threads}, during the pack");
            Assert.Equal(0, sae.PackedEncoderBytes);
            var batch = _x.AsSpan(0, 7 * DIn).ToArray();
            var fb = KernelTestData.Poisoned(7 * DSae);
            var waiting = Task.Run(() => sae.Encode(batch, fb));
            release.Set();
            await waiting.WaitAsync(TimeSpan.FromMinutes(5));
            CheckRows(fb, 7, 0, want, $"threads {threads}, batch that waited for the pack");

            // After: the copy is published and one token now reads it.
            Assert.True(sae.PackedEncoderBytes > 0, "the pack did not finish before the batch that waited for it");
            CheckAlone(sae, want, $"threads {threads}, after the pack");
        }
        finally
        {
            release.Set();
        }
    }

    /// <summary>
    /// Eight callers on one freshly loaded SAE at once (the pack starts in the background under them), mixing one-token
    /// and batch calls: every result must be the canonical bits, whatever the interleaving turned out to be.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EightConcurrentCallersGetTheCanonicalBits(bool bf16)
    {
        var want = Canonical(bf16);
        using var sae = Make(bf16, threads: 2, pack: true, screening: false);
        sae.Weights.Packed!.Background = true;
        using var go = new ManualResetEventSlim();
        var callers = new Task[8];
        for (int c = 0; c < callers.Length; c++)
        {
            int caller = c;
            callers[c] = Task.Run(() =>
            {
                go.Wait();
                var f = new float[7 * DSae];
                for (int k = 0; k < 24; k++)
                {
                    int t = ((caller * 24) + k) % Pool;
                    int n = k % 3 == 2 ? Math.Min(7, Pool - t) : 1;
                    var span = f.AsSpan(0, n * DSae);
                    span.Fill(float.NaN);
                    sae.Encode(_x.AsSpan(t * DIn, n * DIn), span);
                    CheckRows(f, n, t, want, $"caller {caller}, call {k}, {n} token(s) from {t}");
                }
            });
        }

        go.Set();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromMinutes(5));
    }

    private JumpReLUSae Make(bool bf16, int threads, bool pack, bool screening) =>
        JumpReLUSae.FromArrays(_wEnc, _wDec, _bEnc, _bDec, _thr, DIn, new SaeLoadOptions
        {
            Precision = bf16 ? SaePrecision.BFloat16 : SaePrecision.Float32,
            MaxDegreeOfParallelism = threads,
            PackEncoder = pack,
            Screening = screening,
        });

    /// <summary>Each pool token alone through all four one-token entry points.</summary>
    private void CheckAlone(JumpReLUSae sae, float[] want, string where)
    {
        var f = new float[DSae];
        var idx = new int[DSae];
        var val = new float[DSae];
        var buffer = new SparseFeatureBuffer();
        for (int t = 0; t < Pool; t++)
        {
            var x = _x.AsSpan(t * DIn, DIn);
            f.AsSpan().Fill(float.NaN);
            sae.Encode(x, f);
            CheckRows(f, 1, t, want, $"{where}, token {t} alone, dense");
            sae.EncodeSparse(x).ToDense(f);
            CheckRows(f, 1, t, want, $"{where}, token {t} alone, sparse");
            sae.EncodeSparse(x, buffer);
            buffer.ToBatch().ToDense(f);
            CheckRows(f, 1, t, want, $"{where}, token {t} alone, sparse into a buffer");
            int n = sae.EncodeSparse(x, idx, val);
            Array.Clear(f);
            for (int k = 0; k < n; k++)
            {
                f[idx[k]] = val[k];
            }

            CheckRows(f, 1, t, want, $"{where}, token {t} alone, one-token span overload");
        }
    }

    /// <summary>Row i of <paramref name="got"/> must be bitwise the canonical row of pool token (first + i) mod 64.</summary>
    private static void CheckRows(float[] got, int rows, int first, float[] want, string where)
    {
        for (int i = 0; i < rows; i++)
        {
            int t = (first + i) % Pool;
            for (int j = 0; j < DSae; j++)
            {
                float g = got[(i * DSae) + j], e = want[(t * DSae) + j];
                if (BitConverter.SingleToInt32Bits(g) != BitConverter.SingleToInt32Bits(e))
                {
                    Assert.Fail($"{where}: row {i} (token {t}) feature {j} is {g:R} (0x{BitConverter.SingleToInt32Bits(g):X8}), canonical {e:R} (0x{BitConverter.SingleToInt32Bits(e):X8})");
                }
            }
        }
    }

    /// <summary>The canonical bits of every pool token: one sequential fp32 FMA chain per feature, then the bias, then JumpReLU.</summary>
    private float[] Canonical(bool bf16)
    {
        var w = bf16 ? Array.ConvertAll(_wEnc, RoundToBFloat16) : _wEnc;
        var f = new float[Pool * DSae];
        int active = 0;
        for (int t = 0; t < Pool; t++)
        {
            for (int j = 0; j < DSae; j++)
            {
                float s = 0f;
                for (int i = 0; i < DIn; i++)
                {
                    s = MathF.FusedMultiplyAdd(_x[(t * DIn) + i], w[(i * DSae) + j], s);
                }

                float pre = s + _bEnc[j];
                f[(t * DSae) + j] = pre > _thr[j] && pre > 0f ? pre : 0f;
                active += pre > _thr[j] && pre > 0f ? 1 : 0;
            }
        }

        // Both sides of the threshold must be exercised, or bitwise agreement proves little.
        Assert.InRange(active, Pool * DSae / 20, Pool * DSae * 19 / 20);
        return f;
    }

    private static float RoundToBFloat16(float v)
    {
        uint b = BitConverter.SingleToUInt32Bits(v);
        b += 0x7FFFu + ((b >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(b & 0xFFFF0000u);
    }
}
