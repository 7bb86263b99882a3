using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

public class SamplingTests
{
    [Fact]
    public void NucleusKeepsOnlyTheMostLikelyTokensAndFrequenciesFollowTheProbabilities()
    {
        // p = [0.5, 0.3, 0.15, 0.05] at temperature 1
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        var rng = new Random(3);
        var counts = new int[4];
        var probs = new float[4];
        for (int i = 0; i < 20000; i++)
        {
            counts[Sampling.Sample(logits, 1f, 0.8f, rng, probs, new float[4], new int[4])]++;
        }

        // top-p 0.8 keeps tokens 0 and 1 (0.5 + 0.3), renormalised to 0.625 / 0.375
        Assert.Equal(0, counts[2] + counts[3]);
        Assert.InRange(counts[0] / 20000.0, 0.60, 0.65);

        Array.Clear(counts);
        for (int i = 0; i < 20000; i++)
        {
            counts[Sampling.Sample(logits, 1f, 1f, rng, probs, new float[4], new int[4])]++;
        }

        Assert.InRange(counts[3] / 20000.0, 0.04, 0.06);
        Assert.Equal(3, Sampling.ArgMax(logits.Reverse().ToArray()));
    }
}
