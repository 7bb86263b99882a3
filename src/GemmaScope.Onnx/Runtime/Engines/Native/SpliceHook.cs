using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using GemmaScope.Engine;

namespace GemmaScope.Onnx.Runtime.Engines.Native;

/// <summary>
/// An <see cref="SaeSplice"/> on the native engine's rows, with the graph splice's semantics (GraphEdits.InsertSae):
/// pre = x·W_enc + b_enc; f = pre where pre &gt; θ and pre &gt; 0, else 0 (the SAE's Core encode kernel);
/// f' = f with clamped features set; x̂ = f'·W_dec + b_dec; with the error term out = x̂ + (x − (f·W_dec + b_dec));
/// rows whose token is BOS (when excluded) pass unchanged and report features 0.
/// </summary>
internal sealed class SpliceHook
{
    // An SAE given as bare tensors is built once into a JumpReLUSae (a float32 copy) so its encode runs on Core's kernels.
    private static readonly ConditionalWeakTable<SaeTensors, JumpReLUSae> Built = [];

    private readonly SaeSplice _splice;
    private readonly JumpReLUSae _sae;
    private readonly int _bosId;

    public SpliceHook(SaeSplice splice, int bosId)
    {
        _splice = splice;
        _bosId = bosId;
        _sae = splice.Sae.Source ?? Built.GetValue(splice.Sae, Build);
    }

    public int FeatureCount => _sae.FeatureCount;

    /// <summary>Splices every applicable row in place; the [rows, d_sae] features (before clamps) when they are captured, else null.</summary>
    public float[]? Apply(in HookSite site, Span<float> rows)
    {
        int d = _sae.InputSize, m = _sae.FeatureCount, total = site.TotalRows;
        var take = new List<int>(total);
        for (int r = 0; r < total; r++)
        {
            if (!_splice.ExcludeBos || site.TokenId(r) != _bosId)
            {
                take.Add(r);
            }
        }

        float[]? captured = _splice.CaptureFeatures ? new float[(long)total * m] : null;
        int n = take.Count;
        if (n == 0)
        {
            return captured;
        }

        // Gather the applicable rows, encode them as one batch, decode, scatter back.
        var x = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            rows.Slice(take[i] * d, d).CopyTo(x.AsSpan(i * d, d));
        }

        var f = new float[(long)n * m];
        _sae.Encode(x, f);
        if (captured is not null)
        {
            for (int i = 0; i < n; i++)
            {
                f.AsSpan(i * m, m).CopyTo(captured.AsSpan(take[i] * m, m));
            }
        }

        var clean = new float[n * d];
        _sae.Decode(f, clean);
        float[] output = clean;
        if (_splice.Clamp.Count > 0)
        {
            var clamped = (float[])f.Clone();
            for (int i = 0; i < n; i++)
            {
                foreach (var c in _splice.Clamp)
                {
                    clamped[((long)i * m) + c.Feature] = c.Value;
                }
            }

            output = new float[n * d];
            _sae.Decode(clamped, output);
        }

        if (_splice.UseErrorTerm)
        {
            // out = x̂ + (x − clean), in this order, as the graph computes it (x̂ is clean itself without clamps).
            var error = new float[n * d];
            TensorPrimitives.Subtract(x, clean, error);
            TensorPrimitives.Add(output, error, output);
        }

        for (int i = 0; i < n; i++)
        {
            output.AsSpan(i * d, d).CopyTo(rows.Slice(take[i] * d, d));
        }

        return captured;
    }

    private static JumpReLUSae Build(SaeTensors t) =>
        JumpReLUSae.FromArrays(t.EncoderWeights.Span, t.DecoderWeights.Span, t.EncoderBias.Span, t.DecoderBias.Span, t.Threshold.Span, t.InputSize);
}
