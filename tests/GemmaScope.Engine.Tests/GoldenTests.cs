using System.Runtime.InteropServices;

namespace GemmaScope.Engine.Tests;

/// <summary>
/// Against transformers 5.17 itself (tests/fixtures/transformers-golden, tools/golden/make_transformers_golden.py): the
/// checkpoints it saved (fp32, fp32 sharded, bf16; configs in transformers 5's spelling) and the float64 activations of
/// its own modules at every site it recorded, for two sequences, in one packed call. Names map to ours as: TransformerLens
/// names as they are; attn.q_proj/k_proj are hook_q/hook_k where there is no QK-norm (Gemma 2); attn.q_norm/k_norm are
/// hook_q/hook_k of Gemma 3; ln1.output and ln_final.output (norm outputs with gain) are no hook points (the next hooks
/// and the logits cover them).
/// </summary>
public class GoldenTests
{
    private const double Tol = 2e-5;

    [Theory]
    [InlineData("gemma2", "fp32", "fp32")]
    [InlineData("gemma2", "fp32-sharded", "fp32")]
    [InlineData("gemma2", "bf16", "bf16")]
    [InlineData("gemma3", "fp32", "fp32")]
    [InlineData("gemma3", "fp32-sharded", "fp32")]
    [InlineData("gemma3", "bf16", "bf16")]
    public void EveryRecordedSiteAndTheLogitsEqualTransformers(string model, string layout, string variant)
    {
        string root = Path.Combine(TinyModels.Fixtures, "transformers-golden", model);
        // the golden file also holds I64 ids and generations, which Core's reader rightly refuses: the test-side reader reads them
        var golden = TestSafeTensors.Read(Path.Combine(root, "reference.safetensors"));
        using var engine = GemmaEngine.Open(Path.Combine(root, layout), new GemmaEngineOptions { Threads = 2 });
        var seqs = new List<int[]>();
        for (int i = 0; golden.ContainsKey($"ids.s{i}"); i++)
        {
            seqs.Add([.. MemoryMarshal.Cast<byte, long>(golden[$"ids.s{i}"].Bytes).ToArray().Select(x => (int)x)]);
        }

        Assert.True(seqs.Count >= 2);
        var hooks = RecordingHooks.All();
        var result = engine.Forward(new ForwardRequest { Sequences = seqs, Hooks = hooks, Logits = LogitsMode.AllRows });
        int compared = 0, heads = engine.Architecture.Heads;
        foreach (var (name, tensor) in golden)
        {
            string prefix = $"{variant}.s";
            if (!name.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            int dot = name.IndexOf('.', prefix.Length);
            int s = int.Parse(name[prefix.Length..dot], System.Globalization.CultureInfo.InvariantCulture);
            string site = Ours(name[(dot + 1)..], engine.Architecture.QkNorm);
            if (site.Length == 0)
            {
                continue;
            }

            var expected = MemoryMarshal.Cast<byte, double>(tensor.Bytes).ToArray();
            int start = result.RowStart(s), n = result.RowCount(s);
            if (site == "logits")
            {
                int vocab = engine.Architecture.Vocab;
                Approx.Close(result.Logits.AsSpan(start * vocab, n * vocab), expected, Tol, $"{model} {layout} s{s} logits", vocab);
            }
            else
            {
                var (rows, width, keys) = hooks.Seen[site];
                if (keys > 0)
                {
                    // transformers' [T, heads × T] against our packed [rows, heads × MaxKeys]: this sequence's keys
                    var mine = new float[n * heads * n];
                    for (int i = 0; i < n * heads; i++)
                    {
                        rows.AsSpan((((start * heads) + i) * keys), n).CopyTo(mine.AsSpan(i * n, n));
                    }

                    Approx.Close(mine, expected, Tol, $"{model} {layout} s{s} {site}", n);
                }
                else
                {
                    Approx.Close(rows.AsSpan(start * width, n * width), expected, Tol, $"{model} {layout} s{s} {site}", width);
                }
            }

            compared++;
        }

        // every layer's 20 or so sites for each sequence
        Assert.True(compared >= seqs.Count * engine.Architecture.Layers * 16, $"only {compared} tensors compared");
    }

    private static string Ours(string theirs, bool qkNorm) => theirs switch
    {
        "logits" => "logits",
        _ when theirs.EndsWith(".ln1.output", StringComparison.Ordinal) || theirs == "ln_final.output" => "",
        _ when theirs.EndsWith(".attn.q_proj", StringComparison.Ordinal) => qkNorm ? "" : theirs.Replace(".attn.q_proj", ".attn.hook_q", StringComparison.Ordinal),
        _ when theirs.EndsWith(".attn.k_proj", StringComparison.Ordinal) => qkNorm ? "" : theirs.Replace(".attn.k_proj", ".attn.hook_k", StringComparison.Ordinal),
        _ when theirs.EndsWith(".attn.q_norm", StringComparison.Ordinal) => theirs.Replace(".attn.q_norm", ".attn.hook_q", StringComparison.Ordinal),
        _ when theirs.EndsWith(".attn.k_norm", StringComparison.Ordinal) => theirs.Replace(".attn.k_norm", ".attn.hook_k", StringComparison.Ordinal),
        _ => theirs,
    };
}
