using System.Diagnostics;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

namespace GemmaScope.Scan.Tests;

/// <summary>
/// The tiny Gemma 2 checkpoint (4 layers, d_model 48, vocab 256), its fitted 128-feature SAE at blocks.2.hook_resid_post,
/// a random 37-feature SAE at blocks.1.hook_resid_post (not a multiple of any vector width), and a seeded word corpus.
/// One model for the whole test assembly (loading builds an ONNX graph).
/// </summary>
public sealed class ScanFixture : IDisposable
{
    public static readonly string Here = AppContext.BaseDirectory;
    public static readonly string ModelDir = Path.Combine(Here, "Fixtures", "tiny-gemma2");
    public static readonly string SaePath = Path.Combine(Here, "Fixtures", "tiny-gemma2-sae", "params.npz");
    public const string SaeHook = "blocks.2.hook_resid_post";

    public ScanFixture()
    {
        Model = GemmaModel.FromPretrained(ModelDir);
        Tokenizer = (GemmaTokenizer)Model.Tokenizer!;
        Sae = JumpReLUSae.Load(SaePath, new SaeLoadOptions { Config = new SaeConfig { HookName = SaeHook } });
        Random = RandomSae(37, 48, seed: 7);
        Root = Directory.CreateTempSubdirectory("gemmascope-scan-tests-").FullName;
        Corpus = Path.Combine(Root, "corpus.txt");
        File.WriteAllLines(Corpus, Words(36, seed: 1));
    }

    public GemmaModel Model { get; }

    public GemmaTokenizer Tokenizer { get; }

    public JumpReLUSae Sae { get; }

    public JumpReLUSae Random { get; }

    public string Root { get; }

    public string Corpus { get; }

    public ScanSae[] Saes() => [ScanSae.From(Sae), ScanSae.From(Random, "random-l1", HookPoint.ResidPost(1))];

    public static ScanOptions SmallOptions => new() { ContextLength = 16, BatchSize = 4, TopK = 6, QuantileGroups = 3, ExamplesPerGroup = 2, ExampleWindow = 8, CheckpointEveryBatches = 4, LogitLensTokens = 4, HistogramBins = 20 };

    public string NewDir(string name) => Directory.CreateDirectory(Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    public static IEnumerable<string> Words(int lines, int seed)
    {
        var rng = new System.Random(seed);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "Paris", "tower", "river", "light", "green", "blue", "over", "under", "quickly", "house", "tree", "king", "queen", "Eiffel"];
        for (int i = 0; i < lines; i++)
        {
            int n = rng.Next(3, 22);
            yield return string.Join(' ', Enumerable.Range(0, n).Select(_ => words[rng.Next(words.Length)]));
        }
    }

    /// <summary>A random SAE (<see cref="SaeReference.Random"/>'s weights) whose features fire on a fair share of tokens (about 17 of 37 per token at blocks.1.hook_resid_post).</summary>
    public static JumpReLUSae RandomSae(int features, int d, int seed)
    {
        var (_, wEnc, wDec, bEnc, bDec, thr) = SaeReference.Random(d, features, seed);
        return JumpReLUSae.FromArrays(wEnc, wDec, bEnc, bDec, thr, d);
    }

    /// <summary>The gemmascope CLI next to the tests (a project reference).</summary>
    public static ProcessStartInfo Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(Here, "gemmascope.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    public static (int Code, string Out, string Err) RunCli(params string[] args)
    {
        var r = ProcessRunner.Run("dotnet", [Path.Combine(Here, "gemmascope.dll"), .. args]);
        return (r.ExitCode, r.Stdout, r.Stderr);
    }

    public void Dispose()
    {
        Model.Dispose();
        Sae.Dispose();
        Random.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition("scan")]
public sealed class ScanCollection : ICollectionFixture<ScanFixture>;
