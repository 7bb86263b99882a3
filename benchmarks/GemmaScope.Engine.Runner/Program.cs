using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using GemmaScope;
using GemmaScope.Engine;

// runner <checkpoint folder> <threads> <ids file: one id per line> <decode tokens> <out folder> [capture layer]
// Times FromPretrained-to-first-token, a prefill of the ids (min and median of 3), and greedy decode steps with the KV cache;
// writes the captured blocks.{layer}.hook_resid_post rows and the last row's logits as little-endian float32 for comparison.
if (args.Length < 5)
{
    Console.Error.WriteLine("usage: runner <folder> <threads> <ids file> <decode tokens> <out folder> [capture layer]");
    return 2;
}

string folder = args[0], outDir = args[4];
int threads = int.Parse(args[1], CultureInfo.InvariantCulture), decode = int.Parse(args[3], CultureInfo.InvariantCulture);
int[] ids = File.ReadAllLines(args[2]).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToArray();
Directory.CreateDirectory(outDir);

var sw = Stopwatch.StartNew();
using var engine = GemmaEngine.Open(folder, new GemmaEngineOptions { Threads = threads });
double openMs = sw.Elapsed.TotalMilliseconds;
engine.Forward(new ForwardRequest { Sequences = [[ids[0]]], Logits = LogitsMode.LastRow });
double firstTokenMs = sw.Elapsed.TotalMilliseconds;

int layer = args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : engine.Architecture.Layers / 2;
var capture = new Capture(HookPoint.ResidPost(layer));
var prefill = new List<double>();
ForwardResult? result = null;
for (int i = 0; i < 3; i++)
{
    sw.Restart();
    result = engine.Forward(new ForwardRequest { Sequences = [ids], Logits = LogitsMode.LastRow, Hooks = capture });
    prefill.Add(sw.Elapsed.TotalMilliseconds);
}

WriteFloats(Path.Combine(outDir, $"resid_post_{layer}.f32"), capture.Rows!);
WriteFloats(Path.Combine(outDir, "logits_last.f32"), result!.LastLogits(0).ToArray());

// Greedy decode with the KV cache: the prompt, then one token per step.
using var cache = engine.CreateCache();
var step = engine.Forward(new ForwardRequest { Sequences = [ids], Caches = [cache], Logits = LogitsMode.LastRow });
var decodeMs = new List<double>();
var generated = new List<int>();
for (int t = 0; t < decode; t++)
{
    int next = ArgMax(step.LastLogits(0));
    generated.Add(next);
    sw.Restart();
    step = engine.Forward(new ForwardRequest { Sequences = [[next]], Caches = [cache], Logits = LogitsMode.LastRow });
    decodeMs.Add(sw.Elapsed.TotalMilliseconds);
}

prefill.Sort();
decodeMs.Sort();
var status = File.ReadAllLines("/proc/self/status").Where(l => l.StartsWith("VmHWM", StringComparison.Ordinal) || l.StartsWith("RssAnon", StringComparison.Ordinal) || l.StartsWith("RssFile", StringComparison.Ordinal));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{{\"cpu\": \"{Environment.ProcessorCount} logical CPUs, {RuntimeInformation.ProcessArchitecture}\", \"threads\": {threads}, \"tokens\": {ids.Length}, \"open_ms\": {openMs:F1}, \"first_token_ms\": {firstTokenMs:F1}, " +
    $"\"prefill_ms_min\": {prefill[0]:F1}, \"prefill_ms_median\": {prefill[1]:F1}, \"decode_ms_median\": {(decodeMs.Count > 0 ? decodeMs[decodeMs.Count / 2] : 0):F1}, " +
    $"\"decode_ms_min\": {(decodeMs.Count > 0 ? decodeMs[0] : 0):F1}, \"generated\": [{string.Join(", ", generated)}], \"status\": \"{string.Join("; ", status).Replace("\t", " ", StringComparison.Ordinal)}\"}}"));
return 0;

static int ArgMax(ReadOnlySpan<float> v)
{
    int best = 0;
    for (int i = 1; i < v.Length; i++)
    {
        if (v[i] > v[best])
        {
            best = i;
        }
    }

    return best;
}

static void WriteFloats(string path, float[] values) => File.WriteAllBytes(path, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

/// <summary>Copies the rows of one hook point.</summary>
internal sealed class Capture(HookPoint point) : IForwardHooks
{
    public float[]? Rows { get; private set; }

    public bool Wants(HookPoint p) => p == point;

    public void OnHook(HookPoint p, in HookSite site, Span<float> rows) => Rows = rows.ToArray();
}
