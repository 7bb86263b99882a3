using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Benchmarks;

/// <summary>
/// Accuracy checks printed with the table (not timed): our encode against ORT's graph on the same weights, sparse
/// decode against ORT's dense f·W_dec, and bf16 against fp32 (reconstruction change as a fraction of the input
/// variance, L0, flipped activation decisions) on random data of the benchmark distribution.
/// </summary>
internal static class Checks
{
    public static string Run(int dSae = 16384, int tokens = 64)
    {
        var sb = new StringBuilder();
        var w = Workloads.Get(dSae);
        var fp32 = Workloads.Sae(dSae, bf16: false, threads: 2);
        var bf16 = Workloads.Sae(dSae, bf16: true, threads: 2);
        var x = Workloads.Activations(tokens);
        int dIn = Workloads.DIn;

        var f32 = fp32.Encode(x);
        var fOrt = new float[tokens * dSae];
        using (var xv = OrtValue.CreateTensorValueFromMemory(x, [tokens, dIn]))
        using (var fv = OrtValue.CreateTensorValueFromMemory(fOrt, [tokens, dSae]))
        using (var run = new RunOptions())
        {
            Workloads.Ort("jumprelu", dSae, 2).Run(run, ["x"], [xv], ["f"], [fv]);
        }

        double maxDiff = 0;
        int decisionDiff = 0;
        for (int i = 0; i < f32.Length; i++)
        {
            if ((f32[i] == 0) != (fOrt[i] == 0))
            {
                decisionDiff++;
            }
            else
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(f32[i] - fOrt[i]));
            }
        }

        sb.AppendLine(CultureInfo.InvariantCulture, $"- fp32 encode vs ORT JumpReLU graph ({tokens} tokens × {dSae}): max |Δf| {maxDiff:g3} where both agree on activity; {decisionDiff} of {f32.Length} activity decisions differ (pre-activation within rounding of θ).");

        // Sparse decode of token 0 vs ORT dense decode of the same features.
        var sparse = fp32.EncodeSparse(x.AsSpan(0, dIn));
        var xs = new float[dIn];
        fp32.DecodeSparse(sparse[0].Indices, sparse[0].Values, xs);
        var fd = new float[dSae];
        sparse.ToDense(fd);
        var xo = new float[dIn];
        using (var fv = OrtValue.CreateTensorValueFromMemory(fd, [1, dSae]))
        using (var yv = OrtValue.CreateTensorValueFromMemory(xo, [1, dIn]))
        using (var run = new RunOptions())
        {
            Workloads.Ort("decode", dSae, 2).Run(run, ["x"], [fv], ["y"], [yv]);
        }

        double num = 0, den = 0;
        for (int i = 0; i < dIn; i++)
        {
            xo[i] += w.BDec[i];
            num += (xs[i] - xo[i]) * (double)(xs[i] - xo[i]);
            den += xo[i] * (double)xo[i];
        }

        sb.AppendLine(CultureInfo.InvariantCulture, $"- sparse decode (L0 {sparse[0].Count}) vs ORT dense f·W_dec + b_dec: relative L2 error {Math.Sqrt(num / den):g3}.");

        // bf16 against fp32.
        var fb = bf16.Encode(x);
        var r32 = fp32.Decode(f32);
        var rb = bf16.Decode(fb);
        double mean = x.Average(v => (double)v), var = x.Sum(v => (v - mean) * (v - mean));
        double fvu32 = 0, fvub = 0, change = 0;
        long l032 = 0, l0b = 0, flips = 0;
        for (int i = 0; i < x.Length; i++)
        {
            fvu32 += (x[i] - r32[i]) * (double)(x[i] - r32[i]);
            fvub += (x[i] - rb[i]) * (double)(x[i] - rb[i]);
            change += (r32[i] - rb[i]) * (double)(r32[i] - rb[i]);
        }

        for (int i = 0; i < f32.Length; i++)
        {
            l032 += f32[i] != 0 ? 1 : 0;
            l0b += fb[i] != 0 ? 1 : 0;
            flips += (f32[i] != 0) != (fb[i] != 0) ? 1 : 0;
        }

        sb.AppendLine(CultureInfo.InvariantCulture, $"- bf16 vs fp32 weights ({tokens} random tokens, random weights): FVU {fvu32 / var:F4} (fp32) vs {fvub / var:F4} (bf16); ‖x̂_bf16 − x̂_fp32‖² / Σ(x − x̄)² = {change / var:g3}; mean L0 {(double)l032 / tokens:F1} vs {(double)l0b / tokens:F1}; {flips} of {f32.Length} activity decisions flip ({100.0 * flips / f32.Length:F3} %).");
        return sb.ToString();
    }
}
