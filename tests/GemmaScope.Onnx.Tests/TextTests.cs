using GemmaScope.Onnx;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Tests;

public class TextTests
{
    private static Tokenizer LoadTokenizer(bool addBos)
    {
        using var stream = File.OpenRead(Path.Combine(TestData.FixtureDir, "tokenizer.model"));
        return SentencePieceTokenizer.Create(stream, addBos, false);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TextRunsThroughTheSentencePieceModelWithBosAndReturnsTokenStrings(bool tokenizerAddsBos)
    {
        // ids from sentencepiece itself (tools/onnx-fixtures/make_tiny_spm.py prints them), BOS prepended as Gemma does
        int[] expectedIds = [2, 31, 194, 180, 22, 21, 179];
        using var model = GemmaModel.Load(TestData.ModelPath("genai"), LoadTokenizer(tokenizerAddsBos));
        var site = HookPoint.ResidPost(3);

        var run = model.Run("The Eiffel Tower is in Paris", capture: [site]);

        Assert.Equal(expectedIds, run.Ids().ToArray());
        var tokens = run.Tokens()!;
        Assert.Equal(expectedIds.Length, tokens.Count);
        Assert.Equal("The Eiffel Tower is in Paris", string.Concat(tokens.Skip(1)).Replace('▁', ' '));
        var expected = TestData.Reference.Forward(expectedIds);
        TestData.AssertClose(run.Activations(site), expected.Hooks[site.Name], 2e-5, "text run");

        var batch = model.RunBatch(["The cat sat", "Paris is the capital of France"], capture: [site]);
        Assert.Equal(2, batch.BatchSize);
        for (int b = 0; b < 2; b++)
        {
            TestData.AssertClose(batch.Activations(site, b), TestData.Reference.Forward(batch.Ids(b).ToArray()).Hooks[site.Name], 2e-5, $"text batch {b}");
        }

        var story = model.Generate("Once upon a time", new GenerationOptions { MaxNewTokens = 5, EosId = null });
        Assert.Equal(5, story.NewIds.Count);
        Assert.NotNull(story.Text);
    }
}
