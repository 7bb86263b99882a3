using GemmaScope.Onnx.Runtime;

namespace GemmaScope.Onnx.Tests;

public class CrossEntropyTests
{
    [Theory]
    [InlineData(37, 5)]
    [InlineData(1000, 9)]
    public void PerTokenLossMatchesFloat64(int vocab, int tokens)
    {
        var rng = new Random(vocab);
        var logits = new float[vocab * tokens];
        for (int i = 0; i < logits.Length; i++)
        {
            logits[i] = (float)((rng.NextDouble() * 60) - 30);
        }

        var ids = Enumerable.Range(0, tokens).Select(_ => rng.Next(vocab)).ToArray();
        var loss = Enumerable.Repeat(float.NaN, tokens - 1).ToArray();
        CrossEntropy.PerToken(logits, vocab, ids, loss, new float[vocab]);

        var expected = CaptureTests.ReferenceLoss(Approx.Widen(logits), ids, vocab);
        Approx.Close(loss, expected, 1e-6, "loss");
    }

    [Fact]
    public void TargetOutsideTheVocabularyIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CrossEntropy.PerToken(new float[8], 4, [0, 9], new float[1], new float[4]));
        Assert.Contains("9", e.Message, StringComparison.Ordinal);
    }
}
