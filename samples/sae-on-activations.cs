#!/usr/bin/env dotnet
// Load a Gemma Scope-format SAE, encode a few tokens of activations, show what fired.
// Runs offline on the small SAE embedded in samples/data (made by tools/fixtures/make_sae_fixtures.py).
//   dotnet run samples/sae-on-activations.cs [params.npz|folder] [activations.npy]
#:package GemmaScope.Core@0.2.0-*

using GemmaScope;
using GemmaScope.Formats;

var here = AppContext.GetData("EntryPointFileDirectoryPath") as string ?? Path.Combine(Environment.CurrentDirectory, "samples");
var saePath = args.Length > 0 ? args[0] : Path.Combine(here, "data", "demo-sae", "params.npz");
var actsPath = args.Length > 1 ? args[1] : Path.Combine(here, "data", "demo-activations.npy");

using var sae = JumpReLUSae.Load(saePath);
var (x, shape) = Npy.ReadFloat32(actsPath);
if (shape.Length != 2 || shape[1] != sae.InputSize)
{
    Console.Error.WriteLine($"{actsPath}: expected [tokens, {sae.InputSize}], got [{string.Join(", ", shape)}]");
    return 1;
}

int tokens = shape[0];
Console.WriteLine($"{sae}");
Console.WriteLine($"{tokens} tokens of activations from {Path.GetFileName(actsPath)}\n");

var features = sae.EncodeSparse(x);
var xhat = new float[x.Length];
sae.DecodeSparse(features, xhat);

for (int t = 0; t < tokens; t++)
{
    var f = features[t];
    var row = x.AsSpan(t * sae.InputSize, sae.InputSize);
    var rec = xhat.AsSpan(t * sae.InputSize, sae.InputSize);
    double err = 0, norm = 0;
    for (int i = 0; i < row.Length; i++)
    {
        err += (row[i] - rec[i]) * (row[i] - rec[i]);
        norm += row[i] * row[i];
    }

    var top = string.Join("  ", f.TopK(5).Select(p => $"#{p.Feature}={p.Value:F3}"));
    Console.WriteLine($"token {t}: L0 {f.Count,3}  relative error {Math.Sqrt(err / norm):F4}  top: {top}");
}

Console.WriteLine($"\nmean L0 {features.MeanL0:F2}");
return 0;
