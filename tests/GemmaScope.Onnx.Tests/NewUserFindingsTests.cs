using System.Globalization;
using System.Text.RegularExpressions;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

namespace GemmaScope.Onnx.Tests;

/// <summary>Issue 20, new-user findings 4, 6 and 8, on the tiny Gemma 2 checkpoint.</summary>
public class NewUserFindingsTests
{
    private static string Single => TinyModels.Gemma2Checkpoint("single");

    [Fact]
    public void BosIsShownAsBosInRunTokensAsTheTokenizerShowsIt()
    {
        using var model = GemmaModel.FromPretrained(Single);
        var run = model.Run("The cat sat");
        var tokens = run.Tokens()!;
        Assert.Equal(2, run.Ids()[0]);
        Assert.Equal("<bos>", tokens[0]);
        var tokenizer = (GemmaTokenizer)model.Tokenizer!;
        Assert.Equal("<bos>", tokenizer.IdToToken(tokenizer.BeginningOfSentenceId));
        Assert.All(tokens.Skip(1), t => Assert.NotEqual("<bos>", t));
    }

    [Fact]
    public void RunResultToStringOnABatchGivesEachSequencesLossNotSequence0sAsTheMean()
    {
        using var model = GemmaModel.FromPretrained(Single);
        var run = model.RunBatch(["The cat sat on the mat", "Once upon"]);
        string a = run.MeanLoss(0).ToString("F4", CultureInfo.InvariantCulture), b = run.MeanLoss(1).ToString("F4", CultureInfo.InvariantCulture);
        Assert.NotEqual(a, b);
        var text = run.ToString();
        Assert.Contains(a, text, StringComparison.Ordinal);
        Assert.Contains(b, text, StringComparison.Ordinal);
        Assert.DoesNotContain($"mean loss {a}", text, StringComparison.Ordinal);
    }

    [Fact]
    public void FromPretrainedWithARepositoryIdPointsToFromPretrainedAsync()
    {
        var e = Assert.Throws<DirectoryNotFoundException>(() => GemmaModel.FromPretrained("google/gemma-2-2b"));
        Assert.Contains("FromPretrainedAsync(\"google/gemma-2-2b\")", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSteeringSamplesStrengthChangesTheGreedyTextOfTheTinyModel()
    {
        // samples/steering.cs must show the effect it is about: its generation strength changes the text there
        var sample = File.ReadAllText(RepoRoot.File("samples", "steering.cs"));
        var m = Regex.Match(sample, @"const float Strength = ([0-9.]+)f;");
        Assert.True(m.Success, "samples/steering.cs names its generation strength in 'const float Strength = …f;'");
        float strength = float.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Contains("NextTokenKl", sample, StringComparison.Ordinal); // and prints a measure of the effect

        var fixtures = TinyModels.Gemma2Weights;
        using var model = GemmaModel.Load(Path.Combine(fixtures, "external", "model.onnx"), GemmaTokenizer.Load(Path.Combine(fixtures, "tokenizer.model")));
        using var sae = JumpReLUSae.Load(RepoRoot.File("samples", "data", "tiny-gemma2-sae", "params.npz"));
        var options = new GenerationOptions { MaxNewTokens = 12 };
        var greedy = model.Generate("Once upon a time", options).Text;
        var steered = model.Generate("Once upon a time", options, new Interventions { Steer = [Steering.Feature(HookPoint.ResidPost(2), sae, 41, strength)] }).Text;
        Assert.NotEqual(greedy, steered);
    }
}
