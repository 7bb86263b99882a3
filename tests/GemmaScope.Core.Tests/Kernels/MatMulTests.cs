using System.Runtime.Intrinsics;
using GemmaScope.Formats;
using GemmaScope.Kernels;

namespace GemmaScope.Core.Tests.Kernels;

/// <summary>
/// MatMul (y = x · Wᵀ over [out, in] weights in place) on every SIMD width and dtype against float64 on the stored
/// weight values, outputs poisoned with NaN, sizes off the vector width (in = 2304 + 7, out = 37). Tolerance
/// 1e-5 × Σ|x·W| (fp32 accumulation over 16 lanes of ≤ 145 terms each). Determinism: bit equality of a row computed
/// alone and at every position of batches, for 1–3 threads, and across SIMD widths (one summation order for all).
/// The ISA is passed to the internal overload, so these tests do not touch the global test switch.
/// </summary>
public sealed class MatMulTests
{
    private const int In = 2304 + 7;
    private const int Out = 37;

    private static readonly KernelIsa[] Isas = [KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Vector128, KernelIsa.Scalar];
    private static readonly TensorDType[] DTypes = [TensorDType.Float32, TensorDType.BFloat16, TensorDType.Float16];

    public static TheoryData<string, string, int> AccuracyCases()
    {
        var d = new TheoryData<string, string, int>();
        foreach (var isa in Isas)
        {
            foreach (var dtype in DTypes)
            {
                foreach (int tokens in new[] { 1, 3, 17, 129 })
                {
                    d.Add(isa.ToString(), dtype.ToString(), tokens);
                }
            }
        }

        return d;
    }

    [Theory]
    [MemberData(nameof(AccuracyCases))]
    public void MatchesFloat64(string isa, string dtype, int tokens)
    {
        using var w = new MatMulTestData(Out, In, Enum.Parse<TensorDType>(dtype), seed: 11);
        var x = MatMulTestData.Activations(12 + tokens, tokens * In);
        var y = Poisoned(tokens * Out);
        MatMul.Multiply(x, tokens, w.Matrix, y, threads: 2, Enum.Parse<KernelIsa>(isa));
        w.AssertMatches(x, tokens, y, 1e-5);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(5, 3)]
    [InlineData(15, 8)]
    [InlineData(16, 4)]
    [InlineData(17, 13)]
    [InlineData(33, 6)]
    [InlineData(512 + 16 + 9, 9)]
    [InlineData(1031, 7)]
    public void SmallAndOddShapesMatchFloat64OnEveryPath(int cols, int tokens)
    {
        foreach (var dtype in DTypes)
        {
            using var w = new MatMulTestData(9, cols, dtype, seed: cols);
            var x = MatMulTestData.Activations(cols + tokens, tokens * cols);
            foreach (var isa in Isas)
            {
                var y = Poisoned(tokens * 9);
                MatMul.Multiply(x, tokens, w.Matrix, y, threads: 3, isa);
                w.AssertMatches(x, tokens, y, 1e-5);
            }
        }
    }

    [Fact]
    public void PublicOverloadMatchesFloat64()
    {
        using var w = new MatMulTestData(Out, In, TensorDType.BFloat16, seed: 3);
        var x = MatMulTestData.Activations(4, 5 * In);
        var y = Poisoned(5 * Out);
        MatMul.Multiply(x, 5, w.Matrix, y);
        w.AssertMatches(x, 5, y, 1e-5);
    }

    public static TheoryData<string, string> PathCases()
    {
        var d = new TheoryData<string, string>();
        foreach (var isa in new[] { KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Scalar })
        {
            foreach (var dtype in DTypes)
            {
                d.Add(isa.ToString(), dtype.ToString());
            }
        }

        return d;
    }

    /// <summary>
    /// A row alone (1 token: the streaming GEMV shape, one k block) against the same row at every position of batches
    /// of 2, 7 and 64 (register tiles, k blocks of 512, different tile positions), each with 1, 2 and 3 threads. The
    /// matrix is large enough (out = 203) that 2 and 3 threads really split the outputs.
    /// </summary>
    [Theory]
    [MemberData(nameof(PathCases))]
    public void RowBitsDoNotDependOnBatchPositionOrThreads(string isaName, string dtype)
    {
        var isa = Enum.Parse<KernelIsa>(isaName);
        const int rows = 203;
        using var w = new MatMulTestData(rows, In, Enum.Parse<TensorDType>(dtype), seed: 21);
        var row = MatMulTestData.Activations(22, In);
        var alone = Poisoned(rows);
        MatMul.Multiply(row, 1, w.Matrix, alone, threads: 1, isa);
        foreach (int batch in new[] { 2, 7, 64 })
        {
            var x = MatMulTestData.Activations(23 + batch, batch * In);
            var y = new float[batch * rows];
            foreach (int threads in new[] { 1, 2, 3 })
            {
                for (int pos = 0; pos < batch; pos++)
                {
                    var saved = x.AsSpan(pos * In, In).ToArray();
                    row.CopyTo(x, pos * In);
                    y.AsSpan().Fill(float.NaN);
                    MatMul.Multiply(x, batch, w.Matrix, y, threads, isa);
                    AssertBitsEqual(alone, y.AsSpan(pos * rows, rows), $"{isa} {dtype}: batch {batch}, position {pos}, {threads} threads");
                    saved.CopyTo(x, pos * In);
                }
            }
        }
    }

    [Fact]
    public void RowAloneWithManyThreadsEqualsOneThread()
    {
        // Enough outputs that 1 token is split 3 ways (≥ MinMacsPerPart each).
        const int rows = 1000;
        using var w = new MatMulTestData(rows, In, TensorDType.Float32, seed: 31);
        var x = MatMulTestData.Activations(32, In);
        var one = Poisoned(rows);
        var three = Poisoned(rows);
        MatMul.Multiply(x, 1, w.Matrix, one, threads: 1, KernelIsa.Vector512);
        MatMul.Multiply(x, 1, w.Matrix, three, threads: 3, KernelIsa.Vector512);
        AssertBitsEqual(one, three, "1 vs 3 threads");
        w.AssertMatches(x, 1, three, 1e-5);
    }

    /// <summary>Every width computes the same 16 canonical lanes, so the paths agree bit for bit, not only within a path.</summary>
    [Theory]
    [InlineData("Float32", 1)]
    [InlineData("Float32", 17)]
    [InlineData("BFloat16", 7)]
    [InlineData("Float16", 3)]
    public void EveryWidthGivesTheSameBits(string dtype, int tokens)
    {
        using var w = new MatMulTestData(Out, In, Enum.Parse<TensorDType>(dtype), seed: 41);
        var x = MatMulTestData.Activations(42, tokens * In);
        var reference = Poisoned(tokens * Out);
        MatMul.Multiply(x, tokens, w.Matrix, reference, threads: 1, KernelIsa.Scalar);
        foreach (var isa in new[] { KernelIsa.Vector512, KernelIsa.Vector256, KernelIsa.Vector128 })
        {
            var y = Poisoned(tokens * Out);
            MatMul.Multiply(x, tokens, w.Matrix, y, threads: 2, isa);
            AssertBitsEqual(reference, y, $"{isa} vs scalar");
        }
    }

    [Fact]
    public void SpecialValuesPropagate()
    {
        using var w = new MatMulTestData(5, 40, TensorDType.Float32, seed: 5);
        var x = MatMulTestData.Activations(6, 2 * 40);
        x[3] = float.PositiveInfinity; // token 0, a vector lane
        x[40 + 38] = float.NaN;       // token 1, the scalar tail
        var y = Poisoned(2 * 5);
        MatMul.Multiply(x, 2, w.Matrix, y, threads: 1, KernelIsa.Vector512);
        for (int o = 0; o < 5; o++)
        {
            Assert.True(float.IsInfinity(y[o]), $"y[0, {o}] = {y[o]}");
            Assert.True(float.IsNaN(y[5 + o]), $"y[1, {o}] = {y[5 + o]}");
        }
    }

    /// <summary>Every binary16 bit pattern widens to what System.Half says, on every width (NaN stays NaN).</summary>
    [Fact]
    public unsafe void Float16WideningIsExactForEveryBitPattern()
    {
        var bits = new ushort[65536 + 16];
        for (int i = 0; i < 65536; i++)
        {
            bits[i] = (ushort)i;
        }

        var out512 = new float[65536];
        var out256 = new float[65536];
        var out128 = new float[65536];
        fixed (ushort* p = bits)
        {
            for (int i = 0; i < 65536; i += 16)
            {
                F16Element.Load<Simd512, Vector512<float>>((byte*)p, i).CopyTo(out512.AsSpan(i));
                F16Element.Load<Simd256, Vector256<float>>((byte*)p, i).CopyTo(out256.AsSpan(i));
                F16Element.Load<Simd256, Vector256<float>>((byte*)p, i + 8).CopyTo(out256.AsSpan(i + 8));
                for (int q = 0; q < 16; q += 4)
                {
                    F16Element.Load<Simd128, Vector128<float>>((byte*)p, i + q).CopyTo(out128.AsSpan(i + q));
                }
            }

            for (int i = 0; i < 65536; i++)
            {
                float expected = (float)BitConverter.UInt16BitsToHalf((ushort)i);
                float scalar = F16Element.Load<SimdScalar, float>((byte*)p, i);
                foreach (var (name, got) in new[] { ("512", out512[i]), ("256", out256[i]), ("128", out128[i]), ("scalar", scalar), ("tail", F16Element.LoadScalar((byte*)p, i)) })
                {
                    if (float.IsNaN(expected))
                    {
                        Assert.True(float.IsNaN(got), $"{name}: 0x{i:X4} gave {got}, expected NaN");
                    }
                    else
                    {
                        Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got), $"{name}: 0x{i:X4} gave {got}, expected {expected}");
                    }
                }
            }
        }
    }

    [Fact]
    public void ShapeMismatchesAreRefusedWithTheNumbers()
    {
        using var w = new MatMulTestData(4, 10, TensorDType.Float32, seed: 1);
        var ex = Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[19], 2, w.Matrix, new float[8]));
        Assert.Contains("2 × 10 = 20", ex.Message, StringComparison.Ordinal);
        Assert.Contains("19", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[20], 2, w.Matrix, new float[9]));
        Assert.Contains("2 × 4 = 8", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Multiply(new float[0], 0, w.Matrix, new float[0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatMul.Multiply(new float[20], 2, w.Matrix, new float[8], threads: -1));
        var shared = new float[40];
        ex = Assert.Throws<ArgumentException>(() => MatMul.Multiply(shared.AsSpan(0, 20), 2, w.Matrix, shared.AsSpan(15, 8)));
        Assert.Contains("overlaps", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<ArgumentException>(() => MatMul.Multiply(new float[20], 2, default, new float[8]));
        Assert.Contains("default", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WeightMatrixRefusesBadArguments()
    {
        Assert.Contains("Float64", Assert.Throws<ArgumentException>(() => WeightMatrix.Create(64, 2, 2, TensorDType.Float64)).Message, StringComparison.Ordinal);
        Assert.Contains("null", Assert.Throws<ArgumentException>(() => WeightMatrix.Create(0, 2, 2, TensorDType.Float32)).Message, StringComparison.Ordinal);
        Assert.Contains("aligned", Assert.Throws<ArgumentException>(() => WeightMatrix.Create(66, 2, 2, TensorDType.Float32)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightMatrix.Create(64, 0, 2, TensorDType.Float32));
        Assert.Throws<ArgumentOutOfRangeException>(() => WeightMatrix.Create(64, 2, 0, TensorDType.BFloat16));
        var m = WeightMatrix.Create(64, 3, 5, TensorDType.BFloat16);
        Assert.Equal((3, 5, TensorDType.BFloat16, 30L), (m.Rows, m.Cols, m.DType, m.ByteCount));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(13, 1)]
    [InlineData(13, 2)]
    public void DoesNotAllocateAfterWarmUp(int tokens, int threads)
    {
        using var w = new MatMulTestData(1000, 300, TensorDType.BFloat16, seed: 2);
        var x = MatMulTestData.Activations(3, tokens * 300);
        var y = new float[tokens * 1000];
        for (int i = 0; i < 200; i++)
        {
            MatMul.Multiply(x, tokens, w.Matrix, y, threads);
        }

        Thread.Sleep(300);
        MatMul.Multiply(x, tokens, w.Matrix, y, threads);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++)
        {
            MatMul.Multiply(x, tokens, w.Matrix, y, threads);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static float[] Poisoned(int n)
    {
        var y = new float[n];
        y.AsSpan().Fill(float.NaN);
        return y;
    }

    private static void AssertBitsEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            int e = BitConverter.SingleToInt32Bits(expected[i]), a = BitConverter.SingleToInt32Bits(actual[i]);
            Assert.True(e == a, $"{what}: element {i}: {expected[i]:R} (0x{e:X8}) vs {actual[i]:R} (0x{a:X8})");
        }
    }
}
