using GemmaScope.Onnx;
using GemmaScope.Tokenizers;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Onnx.Tests;

public class TextTests
{
    private static Tokenizer LoadTokenizer(string kind, bool addBos)
    {
        string path = Path.Combine(TinyModels.Gemma2Weights, "tokenizer.model");
        if (kind == "gemma")
        {
            return GemmaTokenizer.FromSentencePieceModel(path, new GemmaTokenizerOptions { AddBeginningOfSentence = addBos });
        }

        using var stream = File.OpenRead(path);
        return SentencePieceTokenizer.Create(stream, addBos, false);
    }

    [Theory]
    [InlineData("gemma", true)] // GemmaScope.Tokenizers
    [InlineData("mltokenizers", true)] // Microsoft.ML.Tokenizers' own SentencePiece tokenizer
    [InlineData("mltokenizers", false)]
    public void TextRunsThroughTheSentencePieceModelWithBosAndReturnsTokenStrings(string kind, bool tokenizerAddsBos)
    {
        // ids from sentencepiece itself (tools/onnx-fixtures/make_tiny_spm.py prints them), BOS prepended as Gemma does
        int[] expectedIds = [2, 31, 194, 180, 22, 21, 179];
        using var model = GemmaModel.Load(TestData.ModelPath("genai"), LoadTokenizer(kind, tokenizerAddsBos));
        var site = HookPoint.ResidPost(3);

        var run = model.Run("The Eiffel Tower is in Paris", capture: [site]);

        Assert.Equal(expectedIds, run.Ids().ToArray());
        var tokens = run.Tokens()!;
        Assert.Equal(expectedIds.Length, tokens.Count);
        Assert.Equal("The Eiffel Tower is in Paris", string.Concat(tokens.Skip(1)).Replace('▁', ' '));
        var expected = TinyModels.Gemma2Reference.Forward(expectedIds);
        Approx.Close(run.Activations(site), expected.Hooks[site.Name], 2e-5, "text run");

        var batch = model.RunBatch(["The cat sat", "Paris is the capital of France"], capture: [site]);
        Assert.Equal(2, batch.BatchSize);
        for (int b = 0; b < 2; b++)
        {
            Approx.Close(batch.Activations(site, b), TinyModels.Gemma2Reference.Forward(batch.Ids(b).ToArray()).Hooks[site.Name], 2e-5, $"text batch {b}");
        }

        var story = model.Generate("Once upon a time", new GenerationOptions { MaxNewTokens = 5, EosId = null });
        Assert.Equal(5, story.NewIds.Count);
        Assert.NotNull(story.Text);
    }
}

public class TextToFeaturesTests
{
    [Fact]
    public void CapturedActivationsGoThroughACoreSaeAndMatchTheInGraphSplicesFeatures()
    {
        var tokenizer = GemmaTokenizer.FromSentencePieceModel(Path.Combine(TinyModels.Gemma2Weights, "tokenizer.model"));
        using var model = GemmaModel.Load(TestData.ModelPath("torch"), tokenizer);
        var site = HookPoint.ResidPost(2);
        var tensors = TestSaes.Random(model.Width(site), 64, seed: 77);
        using var sae = JumpReLUSae.FromArrays(tensors.EncoderWeights.Span, tensors.DecoderWeights.Span, tensors.EncoderBias.Span,
            tensors.DecoderBias.Span, tensors.Threshold.Span, tensors.InputSize);

        var run = model.Run("The Eiffel Tower is in Paris", capture: [site],
            interventions: new Interventions { Splice = [new SaeSplice(site, tensors) { UseErrorTerm = true, CaptureFeatures = true }] });
        var acts = run.Activations(site);
        var dense = sae.Encode(acts); // GemmaScope.Core's kernels on the captured activations
        var inGraph = run.Features(site); // ONNX Runtime inside the edited graph (BOS left out)

        Assert.Equal(dense.Length, inGraph.Length);
        int fired = 0;
        for (int t = 1; t < run.TokenCount(); t++)
        {
            for (int j = 0; j < 64; j++)
            {
                float a = dense[(t * 64) + j], b = inGraph[(t * 64) + j];
                Assert.True(Math.Abs(a - b) <= 1e-4f * (1 + Math.Abs(a)), $"token {t} feature {j}: core {a}, graph {b}");
                fired += a > 0 ? 1 : 0;
            }
        }

        Assert.True(fired > 0, "some features must fire");
        var sparse = sae.EncodeSparse(acts);
        Assert.NotNull(sparse);
        Assert.Equal("▁Paris", run.Tokens()![^1].Replace(' ', '▁'));
    }
}

public class LoadedSaeInterventionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(SaePrecision.Float32)]
    [InlineData(SaePrecision.BFloat16)]
    public void ALoadedSaeSplicesAndSteersLikeItsArrays(SaePrecision precision)
    {
        using var model = GemmaModel.Load(TestData.ModelPath("torch"));
        var site = HookPoint.ResidPost(1);
        var arrays = TestSaes.Random(model.Width(site), 96, seed: 5);
        using (var built = JumpReLUSae.FromArrays(arrays.EncoderWeights.Span, arrays.DecoderWeights.Span, arrays.EncoderBias.Span,
            arrays.DecoderBias.Span, arrays.Threshold.Span, arrays.InputSize))
        {
            built.Save(_dir.File("sae"));
        }

        using var sae = JumpReLUSae.Load(_dir.File("sae"), new SaeLoadOptions { Precision = precision });
        var bound = SaeTensors.From(sae);
        if (precision == SaePrecision.Float32)
        {
            Assert.Equal(0, sae.CopiedBytes);
        }

        // The reference for the loaded SAE is the same splice built from the SAE's own (possibly bf16-rounded) float32 values.
        var wEnc = new float[arrays.InputSize * 96];
        var wDec = new float[arrays.InputSize * 96];
        sae.CopyEncoderWeights(wEnc);
        sae.CopyDecoderWeights(wDec);
        var expectedTensors = SaeTensors.Create(arrays.InputSize, 96, wEnc, arrays.EncoderBias, arrays.Threshold, wDec, arrays.DecoderBias);
        int[] ids = [2, 40, 41, 42, 43, 44, 45, 46, 47];
        var expected = model.Run(ids, interventions: new Interventions
        {
            Splice = [new SaeSplice(site, expectedTensors)],
            Steer = [Steering.Feature(site, expectedTensors, 7, 4f)],
        });
        var actual = model.Run(ids, interventions: new Interventions
        {
            Splice = [new SaeSplice(site, sae)],
            Steer = [Steering.Feature(site, sae, 7, 4f)],
        });
        var clean = model.Run(ids);
        Assert.Equal(expected.Logits().ToArray(), actual.Logits().ToArray());
        Assert.NotEqual(clean.Logits().ToArray(), actual.Logits().ToArray());
        Assert.Equal(arrays.InputSize, bound.InputSize);
    }
}
