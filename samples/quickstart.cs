#!/usr/bin/env dotnet
// GemmaScope.NET quickstart, the main job: text → Gemma 2 built from its Hugging Face checkpoint and run under ONNX
// Runtime → activations at a Gemma Scope hook point → JumpReLU SAE features, per token. Offline by default on embedded
// fixtures: a tiny Gemma 2 in Hugging Face's layout (config.json, model.safetensors, tokenizer.model; random weights, the
// real architecture) and an SAE fitted to its layer-2 residual stream. The same code path loads the real model.
//   dotnet run samples/quickstart.cs ["your text"] [checkpoint-folder params.npz layer]
// With google/gemma-2-2b downloaded (config.json, *.safetensors, tokenizer.json) and a Gemma Scope SAE, pass the folder,
// the SAE's params.npz and the layer it reads (hook_resid_post).
#:package GemmaScope.Onnx@0.2.0-*

using GemmaScope;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

var here = AppContext.GetData("EntryPointFileDirectoryPath") as string ?? Path.Combine(Environment.CurrentDirectory, "samples");
var tinyCheckpoint = Path.Combine(here, "..", "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2-hf", "single");
if (args.Length is not (0 or 1 or 4))
{
    Console.Error.WriteLine("usage: dotnet run samples/quickstart.cs [\"text\" [checkpoint-folder params.npz layer]]");
    return 2;
}

if (args.Length < 4 && !Directory.Exists(tinyCheckpoint))
{
    // A copy outside the repository has no embedded fixtures: say what to pass instead of failing on a missing folder.
    Console.Error.WriteLine($"The tiny demo checkpoint is not here ({Path.GetFullPath(tinyCheckpoint)}): this copy is outside the GemmaScope.NET repository.");
    Console.Error.WriteLine("Pass a Gemma 2 checkpoint folder (config.json, *.safetensors, tokenizer.json, e.g. google/gemma-2-2b downloaded),");
    Console.Error.WriteLine("a Gemma Scope SAE's params.npz and the layer whose hook_resid_post it reads:");
    Console.Error.WriteLine("  dotnet run quickstart.cs \"your text\" path/to/gemma-2-2b path/to/params.npz 20");
    return 2;
}

string text = args.Length > 0 ? args[0] : "The Eiffel Tower is in Paris, and the cat sat on the mat.";
string checkpoint = args.Length > 3 ? args[1] : tinyCheckpoint;
string saePath = args.Length > 3 ? args[2] : Path.Combine(here, "data", "tiny-gemma2-sae", "params.npz");
int layer = args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 2;

using var model = GemmaModel.FromPretrained(checkpoint);   // config.json + safetensors (+ tokenizer) → ONNX graph in memory
var tokenizer = model.Tokenizer as GemmaTokenizer
    ?? throw new InvalidOperationException($"'{checkpoint}' has no tokenizer.json or tokenizer.model.");
var site = HookPoint.ResidPost(layer);
using var sae = JumpReLUSae.Load(saePath, new SaeLoadOptions { Config = new SaeConfig { HookName = site.Name } });

var run = model.Run(text, capture: [site], logits: false); // no logits asked: the graph stops after layer `layer`
var acts = run.Activations(site);                 // [tokens × d_model]
var features = sae.EncodeSparse(acts);
var xhat = new float[acts.Length];
sae.DecodeSparse(features, xhat);
var tokens = run.Tokens()!;

Console.WriteLine($"model {Path.GetFileName(Path.GetFullPath(checkpoint))} ({model.LayerCount} layers), {site.Name}, {sae}");
Console.WriteLine($"text: \"{text}\" → {tokens.Count} tokens\n");
for (int t = 0; t < tokens.Count; t++)
{
    if (run.Ids()[t] == tokenizer.BeginningOfSentenceId)
    {
        Console.WriteLine($"{t,3} {Quote(tokens[t]),-12} (BOS: Gemma Scope SAEs were not trained on it; skipped)");
        continue;
    }

    var f = features[t];
    var x = acts.Slice(t * sae.InputSize, sae.InputSize);
    var r = xhat.AsSpan(t * sae.InputSize, sae.InputSize);
    double err = 0, norm = 0;
    for (int i = 0; i < x.Length; i++)
    {
        err += (x[i] - r[i]) * (x[i] - r[i]);
        norm += x[i] * x[i];
    }

    var top = string.Join("  ", f.TopK(4).Select(p => $"#{p.Feature}={p.Value:F2}"));
    Console.WriteLine($"{t,3} {Quote(tokens[t]),-12} L0 {f.Count,3}  rel.err {Math.Sqrt(err / norm):F3}  {top}");
}

double meanL0 = 0;
int counted = 0;
for (int t = 0; t < tokens.Count; t++)
{
    if (run.Ids()[t] != tokenizer.BeginningOfSentenceId)
    {
        meanL0 += features.L0(t);
        counted++;
    }
}

Console.WriteLine($"\nmean L0 (without BOS) {meanL0 / Math.Max(1, counted):F2}");
return 0;

static string Quote(string s) => "'" + s.Replace("\n", "\\n", StringComparison.Ordinal) + "'";
