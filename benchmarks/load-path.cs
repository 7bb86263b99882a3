#:project ../src/GemmaScope.Onnx/GemmaScope.Onnx.csproj
#:property TreatWarningsAsErrors=false
#:property PublishAot=false

// Load-path measurement for GemmaModel.FromPretrained: weights bound with SessionOptions.AddInitializer over the memory
// map (the default) vs ONNX external data pointing into the safetensors files, and a bf16 checkpoint (widened once).
// Each configuration runs in a fresh child process so its peak RSS (VmHWM) is its own.
//   dotnet run benchmarks/load-path.cs -- gen <dir> [layers]      writes fp32/ and bf16/ Gemma-2-2B-shaped checkpoints
//   flock /tmp/bench.lock dotnet run benchmarks/load-path.cs -- all <dir>
// Random weights (a repeated random block; values do not matter for load time and memory).
using System.Buffers.Binary;
using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using GemmaScope.Onnx;

if (args.Length >= 2 && args[0] == "gen")
{
    int layers = args.Length > 2 ? int.Parse(args[2]) : 4;
    Gen(Path.Combine(args[1], "fp32"), layers, bf16: false);
    Gen(Path.Combine(args[1], "bf16"), layers, bf16: true);
    return;
}

if (args.Length >= 3 && args[0] == "one")
{
    One(args[1], args[2]);
    return;
}

if (args.Length >= 3 && args[0] == "speed")
{
    // prefill of 128 tokens (median of 3 after a warm-up) and per-token decode with the KV cache, in this process
    foreach (var mode in args[2].Split(','))
    {
        using var model = GemmaModel.FromPretrained(Path.Combine(args[1], mode.StartsWith("bf16", StringComparison.Ordinal) ? "bf16" : "fp32"), Options(mode));
        var rng = new Random(5);
        var ids = Enumerable.Range(0, 128).Select(i => i == 0 ? 2 : rng.Next(4, 256000)).ToArray();
        model.Run(ids);
        var times = new List<double>();
        for (int r = 0; r < 3; r++)
        {
            var sw = Stopwatch.StartNew();
            model.Run(ids);
            times.Add(sw.Elapsed.TotalSeconds);
        }

        times.Sort();
        var o = new GenerationOptions { MaxNewTokens = 1, EosId = null };
        model.Generate(ids[..16], o with { MaxNewTokens = 4 });
        var s1 = Stopwatch.StartNew();
        model.Generate(ids[..16], o);
        double one = s1.Elapsed.TotalSeconds;
        var s2 = Stopwatch.StartNew();
        model.Generate(ids[..16], o with { MaxNewTokens = 17 });
        double many = s2.Elapsed.TotalSeconds;
        var (hwm, _) = Memory();
        Console.WriteLine($"| {mode} | {times[1] * 1000:F0} | {(many - one) / 16 * 1000:F0} | {hwm / 1e9:F2} |");
    }

    return;
}

if (args.Length >= 2 && args[0] == "all")
{
    var self = Environment.ProcessPath!;
    var dll = Assembly.GetEntryAssembly()!.Location;
    long fp32Bytes = Directory.GetFiles(Path.Combine(args[1], "fp32"), "*.safetensors").Sum(f => new FileInfo(f).Length);
    Console.WriteLine($"checkpoint fp32 weight bytes: {fp32Bytes / 1e9:F2} GB; CPU: {Cpu()}");
    Console.WriteLine("| configuration | FromPretrained s | first run (session) s | 2nd hook set s | peak RSS GB | peak / fp32 bytes | RSS after 2 sessions GB | of which anonymous GB | file-backed GB |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
    foreach (var mode in new[] { "fp32-initializers", "fp32-external", "fp32-initializers-noprepack", "bf16-initializers", "bf16-initializers-noprepack" })
    {
        // file-based apps run as an apphost; under "dotnet app.dll" the entry assembly is passed again
        var psi = self.EndsWith("dotnet", StringComparison.Ordinal)
            ? new ProcessStartInfo(self, [dll, "one", args[1], mode]) { RedirectStandardOutput = true }
            : new ProcessStartInfo(self, ["one", args[1], mode]) { RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        string line = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        var parts = line.Split(' ');
        if (parts.Length < 5)
        {
            Console.WriteLine($"| {mode} | failed: {line} |");
            continue;
        }

        double peak = double.Parse(parts[3]);
        Console.WriteLine($"| {mode} | {parts[0]} | {parts[1]} | {parts[2]} | {peak:F2} | {peak * 1e9 / fp32Bytes:F2} | {parts[4]} | {parts[5]} | {parts[6]} |");
    }

    return;
}

Console.Error.WriteLine("usage: gen <dir> [layers] | all <dir>");

static GemmaModelOptions Options(string mode)
{
    var options = new GemmaModelOptions
    {
        IntraOpThreads = 2,
        ConfigureSession = mode.EndsWith("noprepack", StringComparison.Ordinal) ? so => so.AddSessionConfigEntry("session.disable_prepacking", "1") : null,
    };
    var prop = typeof(GemmaModelOptions).GetProperty("WeightBinding", BindingFlags.NonPublic | BindingFlags.Instance)!;
    prop.SetValue(options, Enum.Parse(prop.PropertyType, mode.Contains("external", StringComparison.Ordinal) ? "ExternalData" : "Initializers"));
    return options;
}

static void One(string dir, string mode)
{
    var options = Options(mode);
    string path = Path.Combine(dir, mode.StartsWith("bf16", StringComparison.Ordinal) ? "bf16" : "fp32");
    var ids = new int[] { 2, 651, 18894, 22643, 603, 575, 235248, 1 };
    var sw = Stopwatch.StartNew();
    using var model = GemmaModel.FromPretrained(path, options);
    double load = sw.Elapsed.TotalSeconds;
    sw.Restart();
    model.Run(ids);
    double first = sw.Elapsed.TotalSeconds;
    sw.Restart();
    model.Run(ids, capture: [HookPoint.ResidPost(1)], logits: false);
    double second = sw.Elapsed.TotalSeconds;
    var (hwm, rss) = Memory();
    Console.WriteLine($"{load:F2} {first:F2} {second:F2} {hwm / 1e9:F2} {rss / 1e9:F2} {Status("RssAnon:") / 1e9:F2} {Status("RssFile:") / 1e9:F2}");
}

static long Status(string key)
{
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith(key, StringComparison.Ordinal))
        {
            return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
    }

    return 0;
}

static (long Hwm, long Rss) Memory()
{
    long hwm = 0, rss = 0;
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
        {
            hwm = long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        else if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            rss = long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
    }

    return (hwm, rss);
}

static string Cpu() => File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?";

static void Gen(string dir, int layers, bool bf16)
{
    const int d = 2304, ff = 9216, heads = 8, kv = 4, hd = 256, vocab = 256000;
    Directory.CreateDirectory(dir);
    var config = new Dictionary<string, object>
    {
        ["architectures"] = new[] { "Gemma2ForCausalLM" }, ["model_type"] = "gemma2", ["hidden_size"] = d, ["intermediate_size"] = ff,
        ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads, ["num_key_value_heads"] = kv, ["head_dim"] = hd,
        ["vocab_size"] = vocab, ["query_pre_attn_scalar"] = 256, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0,
        ["attn_logit_softcapping"] = 50.0, ["final_logit_softcapping"] = 30.0, ["sliding_window"] = 4096,
        ["hidden_activation"] = "gelu_pytorch_tanh", ["tie_word_embeddings"] = true, ["torch_dtype"] = bf16 ? "bfloat16" : "float32",
    };
    File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config));
    var tensors = new List<(string Name, long[] Shape)> { ("model.embed_tokens.weight", [vocab, d]) };
    for (int l = 0; l < layers; l++)
    {
        string p = $"model.layers.{l}.";
        tensors.Add((p + "input_layernorm.weight", [d]));
        tensors.Add((p + "mlp.down_proj.weight", [d, ff]));
        tensors.Add((p + "mlp.gate_proj.weight", [ff, d]));
        tensors.Add((p + "mlp.up_proj.weight", [ff, d]));
        tensors.Add((p + "post_attention_layernorm.weight", [d]));
        tensors.Add((p + "post_feedforward_layernorm.weight", [d]));
        tensors.Add((p + "pre_feedforward_layernorm.weight", [d]));
        tensors.Add((p + "self_attn.k_proj.weight", [kv * hd, d]));
        tensors.Add((p + "self_attn.o_proj.weight", [d, heads * hd]));
        tensors.Add((p + "self_attn.q_proj.weight", [heads * hd, d]));
        tensors.Add((p + "self_attn.v_proj.weight", [kv * hd, d]));
    }

    tensors.Add(("model.norm.weight", [d]));
    int size = bf16 ? 2 : 4;
    using var header = new MemoryStream();
    using (var w = new Utf8JsonWriter(header))
    {
        w.WriteStartObject();
        long off = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * size;
            w.WriteStartObject(name);
            w.WriteString("dtype", bf16 ? "BF16" : "F32");
            w.WriteStartArray("shape");
            foreach (var s in shape)
            {
                w.WriteNumberValue(s);
            }

            w.WriteEndArray();
            w.WriteStartArray("data_offsets");
            w.WriteNumberValue(off);
            w.WriteNumberValue(off + bytes);
            w.WriteEndArray();
            w.WriteEndObject();
            off += bytes;
        }

        w.WriteEndObject();
    }

    while (header.Length % 8 != 0)
    {
        header.WriteByte((byte)' ');
    }

    var rng = new Random(1);
    var block = new float[1 << 20];
    for (int i = 0; i < block.Length; i++)
    {
        block[i] = (float)((rng.NextDouble() * 2) - 1) * 0.03f;
    }

    var blockBytes = new byte[block.Length * size];
    for (int i = 0; i < block.Length; i++)
    {
        if (bf16)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(blockBytes.AsSpan(i * 2), (ushort)(BitConverter.SingleToUInt32Bits(block[i]) >> 16));
        }
        else
        {
            BinaryPrimitives.WriteSingleLittleEndian(blockBytes.AsSpan(i * 4), block[i]);
        }
    }

    using var fs = new FileStream(Path.Combine(dir, "model.safetensors"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
    Span<byte> len = stackalloc byte[8];
    BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
    fs.Write(len);
    header.Position = 0;
    header.CopyTo(fs);
    foreach (var (_, shape) in tensors)
    {
        long bytes = shape.Aggregate(1L, (a, b) => a * b) * size;
        int start = rng.Next(blockBytes.Length / 2) & ~7;
        while (bytes > 0)
        {
            int n = (int)Math.Min(bytes, blockBytes.Length - start);
            fs.Write(blockBytes, start, n);
            bytes -= n;
            start = 0;
        }
    }
}
