#!/usr/bin/env dotnet
// Splice an SAE into Gemma 2, steer with a feature, clamp one, and generate: the interventions of GemmaScope.Onnx, offline
// on the tiny Gemma 2 fixture (random weights, so the text is noise; the mechanics are the real ones). It prints how far
// steering moves the next-token distribution (KL) at several strengths, and greedy text with and without steering.
//   dotnet run samples/steering.cs
#:package GemmaScope.Onnx@0.2.0-*

using GemmaScope;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

var here = AppContext.GetData("EntryPointFileDirectoryPath") as string ?? Path.Combine(Environment.CurrentDirectory, "samples");
var fixtures = Path.Combine(here, "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2");
var tokenizer = GemmaTokenizer.Load(Path.Combine(fixtures, "tokenizer.model"));
using var model = GemmaModel.Load(Path.Combine(fixtures, "external", "model.onnx"), tokenizer);   // "with past": KV cache
using var sae = JumpReLUSae.Load(Path.Combine(here, "data", "tiny-gemma2-sae", "params.npz"));
var site = HookPoint.ResidPost(2);
const string text = "The cat sat on the mat";

var clean = model.Run(text);
var spliced = model.Run(text, interventions: new Interventions { Splice = [new SaeSplice(site, sae)] });
var withError = model.Run(text, interventions: new Interventions { Splice = [new SaeSplice(site, sae) { UseErrorTerm = true }] });
var steered = model.Run(text, interventions: new Interventions { Steer = [Steering.Feature(site, sae, 41, 30f)] });
var ablated = model.Run(text, interventions: new Interventions
{
    Splice = [new SaeSplice(site, sae) { UseErrorTerm = true, Clamp = [new FeatureClamp(41, 0f)] }],
});

Console.WriteLine($"mean next-token loss (nats) on \"{text}\":");
Console.WriteLine($"  clean                          {clean.MeanLoss():F4}");
Console.WriteLine($"  SAE spliced                    {spliced.MeanLoss():F4}");
Console.WriteLine($"  SAE spliced + error term       {withError.MeanLoss():F4}   (equals clean: x̂ + (x − x̂) = x)");
Console.WriteLine($"  steered +30·W_dec[41]          {steered.MeanLoss():F4}");
Console.WriteLine($"  feature 41 clamped to 0        {ablated.MeanLoss():F4}");

// How much steering moves the model: KL(clean ‖ steered) of the next-token distribution after the last token, by strength.
// The tiny model's residual stream is large next to one decoder row, so small strengths barely move it.
Console.WriteLine($"\nKL(clean ‖ steered) of the next token after \"{text}\", feature 41 at {site.Name}:");
foreach (var strength in new[] { 8f, 30f, 200f, 1000f })
{
    var s = model.Run(text, interventions: new Interventions { Steer = [Steering.Feature(site, sae, 41, strength)] });
    Console.WriteLine($"  strength {strength,6}   KL {NextTokenKl(clean, s):F4} nats");
}

const float Strength = 200f;
var options = new GenerationOptions { MaxNewTokens = 12 };
var greedy = model.Generate("Once upon a time", options).Text;
var steeredText = model.Generate("Once upon a time", options, new Interventions { Steer = [Steering.Feature(site, sae, 41, Strength)] }).Text;
Console.WriteLine($"\ngreedy:             {greedy}");
Console.WriteLine($"steered ×{Strength}:      {steeredText}");
Console.WriteLine(greedy == steeredText ? "(the same text: raise the strength)" : "(steering changed the text)");
return 0;

// Σ p log(p / q) over the vocabulary, p and q the softmax of the last row's logits of each run.
static double NextTokenKl(RunResult p, RunResult q)
{
    int vocab = p.VocabSize;
    var a = p.Logits()[^vocab..];
    var b = q.Logits()[^vocab..];
    double ma = double.NegativeInfinity, mb = double.NegativeInfinity;
    for (int i = 0; i < vocab; i++)
    {
        ma = Math.Max(ma, a[i]);
        mb = Math.Max(mb, b[i]);
    }

    double za = 0, zb = 0;
    for (int i = 0; i < vocab; i++)
    {
        za += Math.Exp(a[i] - ma);
        zb += Math.Exp(b[i] - mb);
    }

    double kl = 0;
    for (int i = 0; i < vocab; i++)
    {
        double lpa = a[i] - ma - Math.Log(za), lpb = b[i] - mb - Math.Log(zb);
        kl += Math.Exp(lpa) * (lpa - lpb);
    }

    return kl;
}

