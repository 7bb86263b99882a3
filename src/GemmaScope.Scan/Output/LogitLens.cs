using System.Runtime.Intrinsics;
using GemmaScope.Onnx;

namespace GemmaScope.Scan;

/// <summary>
/// Logit lens of decoder directions: logits = E · (d / √(mean(d²) + ε) ⊙ (1 + w)), i.e. the direction d through Gemma's
/// final RMSNorm (gain 1 + w) and the tied unembedding E [vocab × d_model]; the final softcap is monotonic and left out.
/// The top and bottom k tokens per feature, ties to the lower token id. Dots use a fixed 8-lane order with no FMA, so the
/// values are the same bits on every x64 machine and thread count (work is split over features, never over a dot).
/// </summary>
internal static class LogitLens
{
    public sealed record Result(int[] TopIds, float[] TopValues, int[] BottomIds, float[] BottomValues);

    public static Result?[] Compute(UnembeddingWeights u, ScanSae sae, IReadOnlyList<int> features, int k)
    {
        int d = u.ModelWidth;
        if (sae.DecoderRow(0).Length != d)
        {
            return new Result?[features.Count]; // a decoder into another space (attn.hook_z): no logit lens
        }

        var results = new Result?[features.Count];
        const int Block = 32;
        int blocks = (features.Count + Block - 1) / Block;
        Parallel.For(0, blocks, b =>
        {
            int f0 = b * Block, n = Math.Min(Block, features.Count - f0);
            var dirs = new float[n * d];
            for (int i = 0; i < n; i++)
            {
                Normalize(sae.DecoderRow(features[f0 + i]), u, dirs.AsSpan(i * d, d));
            }

            var tops = new TopK[n];
            var bottoms = new TopK[n];
            for (int i = 0; i < n; i++)
            {
                tops[i] = new TopK(k, largest: true);
                bottoms[i] = new TopK(k, largest: false);
            }

            for (int v = 0; v < u.VocabSize; v++)
            {
                var e = u.Embedding.AsSpan(v * d, d);
                for (int i = 0; i < n; i++)
                {
                    float logit = Dot(e, dirs.AsSpan(i * d, d));
                    tops[i].Offer(v, logit);
                    bottoms[i].Offer(v, logit);
                }
            }

            for (int i = 0; i < n; i++)
            {
                results[f0 + i] = new Result(tops[i].Ids(), tops[i].Values(), bottoms[i].Ids(), bottoms[i].Values());
            }
        });
        return results;
    }

    private static void Normalize(float[] dir, UnembeddingWeights u, Span<float> dst)
    {
        double ms = 0;
        foreach (var x in dir)
        {
            ms += (double)x * x;
        }

        double scale = 1 / Math.Sqrt((ms / dir.Length) + u.RmsNormEpsilon);
        for (int i = 0; i < dir.Length; i++)
        {
            dst[i] = (float)(dir[i] * scale * (1.0 + u.FinalNormWeight[i]));
        }
    }

    // Σ a[i]·b[i]: four 8-lane accumulators over 32-element steps, lanes summed in order, then the scalar tail.
    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var s0 = Vector256<float>.Zero;
        var s1 = Vector256<float>.Zero;
        var s2 = Vector256<float>.Zero;
        var s3 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 32 <= a.Length; i += 32)
        {
            s0 += Vector256.Create(a.Slice(i, 8)) * Vector256.Create(b.Slice(i, 8));
            s1 += Vector256.Create(a.Slice(i + 8, 8)) * Vector256.Create(b.Slice(i + 8, 8));
            s2 += Vector256.Create(a.Slice(i + 16, 8)) * Vector256.Create(b.Slice(i + 16, 8));
            s3 += Vector256.Create(a.Slice(i + 24, 8)) * Vector256.Create(b.Slice(i + 24, 8));
        }

        var s = (s0 + s1) + (s2 + s3);
        float sum = 0;
        for (int l = 0; l < 8; l++)
        {
            sum += s.GetElement(l);
        }

        for (; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }

    private sealed class TopK(int k, bool largest)
    {
        private readonly int[] _ids = new int[k];
        private readonly float[] _values = new float[k];
        private int _n;

        private bool Before(float v1, int id1, float v2, int id2) => (largest ? v1 > v2 : v1 < v2) || (v1 == v2 && id1 < id2);

        public void Offer(int id, float v)
        {
            if (k == 0 || (_n == k && !Before(v, id, _values[k - 1], _ids[k - 1])))
            {
                return;
            }

            int i = _n < k ? _n++ : k - 1;
            while (i > 0 && Before(v, id, _values[i - 1], _ids[i - 1]))
            {
                _ids[i] = _ids[i - 1];
                _values[i] = _values[i - 1];
                i--;
            }

            _ids[i] = id;
            _values[i] = v;
        }

        public int[] Ids() => _ids.AsSpan(0, _n).ToArray();

        public float[] Values() => _values.AsSpan(0, _n).ToArray();
    }
}
