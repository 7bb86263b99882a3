using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace GemmaScope.Model.Benchmarks;

/// <summary>What ran the benchmarks: CPU model, cores, the ISA paths in use, memory, runtime and ORT versions.</summary>
internal static class MachineInfo
{
    public static string Describe(int threads)
    {
        string model = "unknown", flags = "";
        if (File.Exists("/proc/cpuinfo"))
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal) && model == "unknown")
                {
                    model = line[(line.IndexOf(':') + 1)..].Trim();
                }
                else if (line.StartsWith("flags", StringComparison.Ordinal) && flags.Length == 0)
                {
                    flags = line[(line.IndexOf(':') + 1)..];
                }
            }
        }

        var have = flags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        string isa = string.Join(", ", new[] { "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16" }.Where(have.Contains));
        string mem = File.Exists("/proc/meminfo") ? File.ReadLines("/proc/meminfo").First().Replace("MemTotal:", "", StringComparison.Ordinal).Trim() : "?";
        string lscpu = Lscpu();
        return $"CPU: {model} ({Environment.ProcessorCount} logical CPUs{lscpu}); ISA flags: {isa}; .NET Vector512 accelerated: {Vector512.IsHardwareAccelerated}; " +
               $"threads: {threads} (ORT intra-op and the bandwidth probe); RAM {mem}; {RuntimeInformation.FrameworkDescription}; " +
               $"ONNX Runtime {typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version}; {RuntimeInformation.OSDescription}";
    }

    private static string Lscpu()
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("lscpu") { RedirectStandardOutput = true };
            using var p = System.Diagnostics.Process.Start(psi)!;
            string text = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            var parts = new List<string>();
            foreach (var line in text.Split('\n'))
            {
                foreach (var key in new[] { "CPU family:", "Model:", "L2 cache:", "L3 cache:", "Hypervisor vendor:" })
                {
                    if (line.StartsWith(key, StringComparison.Ordinal))
                    {
                        parts.Add(key.TrimEnd(':') + " " + line[key.Length..].Trim());
                    }
                }
            }

            return parts.Count == 0 ? "" : "; lscpu: " + string.Join(", ", parts);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "";
        }
    }
}
