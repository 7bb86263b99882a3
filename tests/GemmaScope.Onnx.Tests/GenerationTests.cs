using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

public class GenerationTests
{
    [Theory]
    [InlineData("genai")] // GroupQueryAttention with past/present
    [InlineData("external")] // torch.onnx "with past" export (Optimum's signature), weights in external data
    [InlineData("built")] // the graph FromPretrained builds from the checkpoint
    [NativeData]
    public void WithKvCacheEqualsRecomputingThePrefixWithAndWithoutInterventions(string layout)
    {
        using var model = TestData.Open(layout);
        var prompt = TokenIds.Random(5, seed: 40);
        var site = HookPoint.ResidPost(1);
        var sae = TestSaes.Random(model.Width(site), 40, seed: 41);
        // Sampled at a high temperature with one seed: the random tiny model's greedy output repeats its input token,
        // which would make equal sequences prove little; equal samples need equal logits at every step.
        var o = new GenerationOptions { MaxNewTokens = 12, EosId = null, Temperature = 8f, Seed = 3 };
        var row = SaeTensors.DecoderRow(sae, 1).ToArray();
        var callback = new Interventions
        {
            Hooks = [new ActivationHook(site, (x, tokens, width) =>
            {
                for (int i = 0; i < tokens * width; i++)
                {
                    x[i] += 20f * row[i % width];
                }
            })],
        };
        var steer = new Interventions { Steer = [Steering.Feature(site, sae, 1, 20f)] };
        Assert.Equal(
            model.Generate(prompt, o, steer).NewIds,
            model.Generate(prompt, o, callback).NewIds);
        Assert.NotEqual(
            model.Generate(prompt, o).NewIds,
            model.Generate(prompt, o, steer).NewIds);
        TestData.AssertCachedGenerationEqualsRecomputing(model, prompt, o, Interventions.None, steer, callback, new Interventions { Splice = [new SaeSplice(site, sae)] });
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("built")]
    [NativeData]
    public void GreedyGenerationFollowsTheReferenceArgmax(string layout)
    {
        using var model = TestData.Open(layout);
        var prompt = TokenIds.Random(4, seed: 42);
        var result = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 8, EosId = null });
        Assert.Equal(layout != "torch", result.UsedKvCache); // the torch export has no past/present; built graphs and the native engine keep a KV cache
        Assert.Equal(TinyModels.Gemma2Reference.Greedy(prompt, 8), result.NewIds);
    }

    [Theory]
    [InlineData("genai")]
    [NativeData]
    public async Task SamplingIsReproducibleWithASeedAndStreamingYieldsTheSameTokens(string layout)
    {
        using var model = TestData.Open(layout);
        var prompt = TokenIds.Random(3, seed: 43);
        var o = new GenerationOptions { MaxNewTokens = 10, Temperature = 40f, TopP = 0.95f, Seed = 7, EosId = null };
        var a = model.Generate(prompt, o);
        var b = model.Generate(prompt, o);
        Assert.Equal(a.NewIds, b.NewIds);
        var streamed = new List<int>();
        await foreach (var t in model.GenerateStreaming(prompt, o))
        {
            streamed.Add(t.Id);
        }

        Assert.Equal(a.NewIds, streamed);
        var greedy = model.Generate(prompt, o with { Temperature = 0 });
        Assert.NotEqual(greedy.NewIds, a.NewIds);
    }

    [Theory]
    [InlineData("genai")]
    [NativeData]
    public void GenerationStopsAtEos(string layout)
    {
        using var model = TestData.Open(layout);
        var prompt = TokenIds.Random(4, seed: 44);
        var free = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 6, EosId = null });
        var stopped = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 6, EosId = free.NewIds[2] });
        int firstStop = free.NewIds.ToList().IndexOf(free.NewIds[2]);
        Assert.Equal(free.NewIds.Take(firstStop + 1), stopped.NewIds);
    }
}
