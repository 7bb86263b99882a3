using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Text;
using GemmaScope.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Model.Benchmarks;

/// <summary>
/// Sanity checks printed with the results, so a fast number cannot come from wrong work: the GEMM baseline's outputs
/// equal a float64 x·Wᵀ over the safetensors bytes (its external-data offsets are right); the model's activations
/// and logits are finite and O(1); stop-at-layer returns the same activations as the full graph; generation with
/// and without the KV cache picks the same tokens.
/// </summary>
internal static class Checks
{
    public static string Run()
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        string ckpt = Bench.Checkpoint(bf16: false);
        var index = GemmGraph.ReadIndex(ckpt);

        // 1. Baseline GEMMs at 2 tokens vs float64 over the mapped file.
        using (var so = new SessionOptions { IntraOpNumThreads = Bench.Threads })
        using (var session = new InferenceSession(GemmGraph.Write(ckpt), so))
        {
            const int T = 2, D = CheckpointGenerator.DModel;
            var rng = new Random(5);
            float[] Rand(long n)
            {
                var a = new float[n];
                for (int i = 0; i < a.Length; i++)
                {
                    a[i] = (rng.NextSingle() * 2) - 1;
                }

                return a;
            }

            var xd = Rand(T * D);
            var inputs = new Dictionary<string, OrtValue>(StringComparer.Ordinal)
            {
                ["x_d"] = OrtValue.CreateTensorValueFromMemory(xd, [T, D]),
                ["x_z"] = OrtValue.CreateTensorValueFromMemory(Rand(T * 2048), [T, 2048]),
                ["x_ff"] = OrtValue.CreateTensorValueFromMemory(Rand(T * CheckpointGenerator.DFf), [T, CheckpointGenerator.DFf]),
                ["q"] = OrtValue.CreateTensorValueFromMemory(Rand(8 * T * 256), [8, T, 256]),
                ["kt"] = OrtValue.CreateTensorValueFromMemory(Rand(8 * 256 * T), [8, 256, T]),
                ["p"] = OrtValue.CreateTensorValueFromMemory(Rand(8 * T * T), [8, T, T]),
                ["v"] = OrtValue.CreateTensorValueFromMemory(Rand(8 * T * 256), [8, T, 256]),
            };
            string[] outs = ["y_lm_head", "y3_self_attn.q_proj"];
            using var results = session.Run(new RunOptions(), inputs.Keys.ToArray(), inputs.Values.ToArray(), outs);
            double worst = 0;
            for (int o = 0; o < outs.Length; o++)
            {
                var y = results[o].GetTensorDataAsSpan<float>();
                string weight = o == 0 ? "model.embed_tokens.weight" : "model.layers.3.self_attn.q_proj.weight";
                var (file, _, shape, offset, length) = index[weight];
                using var mmf = MemoryMappedFile.CreateFromFile(Path.Combine(ckpt, file), FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
                using var view = mmf.CreateViewAccessor(offset, length, MemoryMappedFileAccess.Read);
                int rows = (int)shape[0], cols = (int)shape[1];
                foreach (int t in new[] { 0, T - 1 })
                {
                    foreach (int r in new[] { 0, 1, rows / 3, rows - 1 })
                    {
                        double dot = 0;
                        for (int c = 0; c < cols; c++)
                        {
                            dot += (double)xd[(t * D) + c] * view.ReadSingle(((long)r * cols + c) * 4);
                        }

                        worst = Math.Max(worst, Math.Abs(y[(t * rows) + r] - dot) / (Math.Abs(dot) + 1e-3));
                    }
                }
            }

            foreach (var v in inputs.Values)
            {
                v.Dispose();
            }

            sb.AppendLine(ci, $"- GEMM baseline vs float64 x·Wᵀ over the safetensors bytes (LM head, layer 3 q_proj; 16 entries): worst relative error {worst:E1}");
        }

        // 2–4. The model.
        using var model = ModelHost.Open(ckpt);
        var ids = Bench.Ids(24, seed: 7);
        int layers = model.LayerCount;
        var sites = Enumerable.Range(0, layers).Select(HookPoint.ResidPost).ToArray();
        var run = model.Run(ids, sites);
        var logits = run.Logits();
        bool finite = true;
        double lsq = 0;
        foreach (float v in logits)
        {
            finite &= float.IsFinite(v);
            lsq += (double)v * v;
        }

        sb.Append(ci, $"- model, 24 tokens: logits finite: {finite}, rms {Math.Sqrt(lsq / logits.Length):F2}; resid_post rms by layer:");
        foreach (var s in sites)
        {
            double q = 0;
            var a = run.Activations(s);
            foreach (float v in a)
            {
                q += (double)v * v;
            }

            sb.Append(ci, $" {Math.Sqrt(q / a.Length):F2}");
        }

        sb.AppendLine();
        var mid = HookPoint.ResidPost((layers / 2) - 1);
        var stopped = model.Run(ids, [mid], logits: false).Activations(mid);
        var full = run.Activations(mid);
        double diff = 0;
        for (int i = 0; i < full.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(stopped[i] - full[i]));
        }

        sb.AppendLine(ci, $"- stop at layer {layers / 2} (logits: false) vs full graph, {mid.Name}: max |difference| {diff:E1}");
        var prompt = Bench.Ids(Bench.DecodePrompt, seed: 2);
        var kv = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 4, EosId = null, UseKvCache = true });
        var nokv = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 4, EosId = null, UseKvCache = false });
        sb.AppendLine(ci, $"- generation, 4 greedy tokens: KV cache used {kv.UsedKvCache}, same tokens as without the cache: {kv.NewIds.SequenceEqual(nokv.NewIds)}");
        return sb.ToString();
    }
}
