#!/usr/bin/env dotnet
// Splice an SAE into Gemma 2, steer with a feature, clamp one, and generate: the interventions of GemmaScope.Onnx, offline
// on the tiny Gemma 2 fixture (random weights, so the text is noise; the mechanics are the real ones).
//   dotnet run samples/steering.cs
#:package GemmaScope.Onnx@0.2.0

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

var options = new GenerationOptions { MaxNewTokens = 12 };
Console.WriteLine($"\ngreedy:  {model.Generate("Once upon a time", options).Text}");
Console.WriteLine($"steered: {model.Generate("Once upon a time", options, new Interventions { Steer = [Steering.Feature(site, sae, 41, 30f)] }).Text}");
return 0;

