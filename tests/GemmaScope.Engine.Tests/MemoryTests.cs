using System.Globalization;

namespace GemmaScope.Engine.Tests;

/// <summary>
/// Opening a checkpoint maps it: weights are read from the page cache (RssFile), not copied into anonymous memory.
/// Measured from /proc/self/status on a 4-layer checkpoint of 134 MB written here (fp32, random weights), after the
/// engine's code is jitted on the tiny model. Bound: RssAnon grows by at most 0.1 × the weight bytes (13 MB) from
/// before open to after a forward of 8 tokens. The control opens the same file with RoundWeightsToBFloat16, which does
/// hold a copy (half the bytes), and must exceed 0.4 ×: the measurement sees a copy when there is one.
/// </summary>
public sealed class MemoryTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void AnonymousMemoryAfterOpenAndForwardStaysSmallAndACopyWouldShow()
    {
        if (!File.Exists("/proc/self/status"))
        {
            return; // Linux only: there is nothing to read elsewhere
        }

        long weightBytes = WriteCheckpoint(_dir.Path, vocab: 32768, d: 512, ff: 2048, layers: 4, heads: 4, kvHeads: 2, headDim: 128);
        var ids = TokenIds.Random(8, 1);
        using (var warm = GemmaEngine.Open(TinyModels.Gemma2Checkpoint("single")))
        {
            warm.Forward(new ForwardRequest { Sequences = [ids], Hooks = RecordingHooks.All() });
        }

        long mapped = Grow(() =>
        {
            var engine = GemmaEngine.Open(_dir.Path, new GemmaEngineOptions { Threads = 2 });
            Assert.Equal(0, engine.OwnedWeightBytes);
            engine.Forward(new ForwardRequest { Sequences = [ids] });
            return engine;
        });
        Assert.True(mapped <= weightBytes / 10, $"RssAnon grew by {mapped:N0} bytes for {weightBytes:N0} bytes of weights (bound 0.1×)");

        long copied = Grow(() =>
        {
            var engine = GemmaEngine.Open(_dir.Path, new GemmaEngineOptions { Threads = 2, RoundWeightsToBFloat16 = true });
            Assert.Equal(weightBytes / 2, engine.OwnedWeightBytes + (2L * 512 * (1 + (4 * 4)))); // the norm gains stay float32
            engine.Forward(new ForwardRequest { Sequences = [ids] });
            return engine;
        });
        Assert.True(copied >= weightBytes * 4 / 10, $"the bf16 copy grew RssAnon by only {copied:N0} bytes");
    }

    // RssAnon after run() with its engine still open, minus before; both after a full GC. Disposes the engine after.
    private static long Grow(Func<GemmaEngine> run)
    {
        Collect();
        long before = RssAnon();
        using var engine = run();
        Collect();
        return RssAnon() - before;
    }

    private static void Collect()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    private static long RssAnon()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
            {
                return long.Parse(line["RssAnon:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("/proc/self/status has no RssAnon");
    }

    // A Gemma 2 checkpoint of random fp32 weights, streamed to disk in 1 MB pieces (no large managed buffer whose
    // freed pages the engine could reuse unnoticed). Returns the weight bytes.
    private static long WriteCheckpoint(string dir, int vocab, int d, int ff, int layers, int heads, int kvHeads, int headDim)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), $$"""
            {"model_type": "gemma2", "vocab_size": {{vocab}}, "hidden_size": {{d}}, "intermediate_size": {{ff}},
             "num_hidden_layers": {{layers}}, "num_attention_heads": {{heads}}, "num_key_value_heads": {{kvHeads}},
             "head_dim": {{headDim}}, "query_pre_attn_scalar": {{headDim}}, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
             "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0, "sliding_window": 4096,
             "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": true, "torch_dtype": "float32"}
            """);
        var (head, offset) = TestSafeTensors.F32Head(CheckpointTensors.Gemma2(vocab, d, ff, layers, heads, kvHeads, headDim));
        using var f = File.Create(Path.Combine(dir, "model.safetensors"));
        f.Write(head);
        var chunk = new float[1 << 18];
        uint state = 12345;
        for (long left = offset / 4; left > 0; left -= chunk.Length)
        {
            int n = (int)Math.Min(left, chunk.Length);
            for (int i = 0; i < n; i++)
            {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                chunk[i] = ((state >> 8) * (1f / (1 << 24))) - 0.5f; // uniform in [−0.5, 0.5): random, never zeros
            }

            f.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.AsSpan(0, n)));
        }

        return offset;
    }
}
