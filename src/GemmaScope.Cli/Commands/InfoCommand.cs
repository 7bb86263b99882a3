using System.Buffers.Binary;
using System.CommandLine;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GemmaScope.Cli.Output;

namespace GemmaScope.Cli.Commands;

/// <summary><c>gemmascope info FILE|FOLDER</c>: format, tensors (dtype, shape), configuration, size on disk and in memory.</summary>
internal static partial class InfoCommand
{
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "An SAE or transcoder: params.npz, a .safetensors file, or a folder holding one (and cfg.json or config.json)." };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of text." };
        var command = new Command("info", "Describe an SAE or transcoder file: format, tensor shapes and dtypes, configuration, size on disk and in memory.") { path, json };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => Task.FromResult(Run(p.GetValue(path)!, p.GetValue(json)))));
        return command;
    }

    private static int Run(string path, bool json)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
        {
            throw new FileNotFoundException($"No such file or folder: {path}");
        }

        // Loading validates everything (shapes, dtypes, finite values) and resolves a folder to its weight file.
        using var loaded = JumpReLUSae.LoadAny(path);
        var transcoder = loaded as JumpReLUTranscoder;
        var file = loaded.SourcePath ?? path;
        var (format, tensors) = ReadTensors(file);
        var c = loaded.Config;

        // The memory lines are an SAE's, as they always were (a transcoder's output shows its precision only).
        var sae = transcoder is null ? loaded : null;
        long? inMemory = sae is null ? null : sae.MappedBytes + sae.CopiedBytes;
        if (json)
        {
            var o = new Dictionary<string, object?>
            {
                ["file"] = Path.GetFullPath(file),
                ["format"] = format,
                ["fileBytes"] = new FileInfo(file).Length,
                ["tensors"] = tensors.Select(t => new Dictionary<string, object> { ["name"] = t.Name, ["dtype"] = t.DType, ["shape"] = t.Shape }),
                ["kind"] = transcoder is null ? "sae" : "transcoder",
                ["inputSize"] = loaded.InputSize,
                ["outputSize"] = loaded.OutputSize,
                ["featureCount"] = loaded.FeatureCount,
                ["precision"] = loaded.Precision.ToString(),
                ["memoryBytes"] = inMemory,
                ["mappedBytes"] = sae?.MappedBytes,
                ["copiedBytes"] = sae?.CopiedBytes,
                ["config"] = new Dictionary<string, object?>
                {
                    ["architecture"] = c.Architecture,
                    ["hookName"] = c.HookName,
                    ["outputHookName"] = transcoder is null ? c.HookName : c.OutputHookName,
                    ["hookLayer"] = c.HookLayer,
                    ["modelName"] = c.ModelName,
                    ["neuronpediaId"] = c.NeuronpediaId,
                    ["applyBDecToInput"] = c.ApplyBDecToInput,
                    ["normalizeActivations"] = c.NormalizeActivations,
                },
            };
            Console.Out.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }

        var w = Console.Out;
        w.WriteLine($"file       {Path.GetFullPath(file)}");
        w.WriteLine($"format     {format}");
        w.WriteLine($"on disk    {Units.Bytes(new FileInfo(file).Length)}");
        var first = true;
        foreach (var t in tensors)
        {
            w.WriteLine($"{(first ? "tensors" : string.Empty),-10} {t.Name,-10} {t.DType,-9} [{string.Join(", ", t.Shape)}]");
            first = false;
        }

        if (transcoder is { } tc)
        {
            w.WriteLine($"transcoder d_in {tc.InputSize}, d_sae {tc.FeatureCount}, d_out {tc.OutputSize}, {c.Architecture}{(tc.HasSkipConnection ? ", skip connection x·W_skip" : "")}");
            w.WriteLine($"reads      {c.HookName ?? "(not recorded)"}");
            w.WriteLine($"writes     {tc.OutputHookName ?? "(not recorded)"}");
        }
        else
        {
            w.WriteLine($"sae        d_in {loaded.InputSize}, d_sae {loaded.FeatureCount}, {c.Architecture}");
            w.WriteLine($"hook       {c.HookName ?? "(not recorded: pass it where the SAE is applied)"}");
        }
        if (c.ModelName is not null)
        {
            w.WriteLine($"model      {c.ModelName}");
        }

        if (c.NeuronpediaId is not null)
        {
            w.WriteLine($"neuronpedia {c.NeuronpediaId}");
        }

        w.WriteLine($"input      apply_b_dec_to_input {c.ApplyBDecToInput.ToString().ToLowerInvariant()}, normalize_activations {c.NormalizeActivations}");
        w.WriteLine(sae is null
            ? $"in memory  as {loaded.Precision}"
            : $"in memory  {Units.Bytes(inMemory!.Value)} as {sae.Precision} (memory-mapped {Units.Bytes(sae.MappedBytes)}, copied {Units.Bytes(sae.CopiedBytes)})");
        return ExitCodes.Ok;
    }

    internal sealed record TensorInfo(string Name, string DType, long[] Shape);

    // Headers only: the weights were validated when loaded.
    private static (string Format, List<TensorInfo> Tensors) ReadTensors(string file)
    {
        using var stream = File.OpenRead(file);
        Span<byte> magic = stackalloc byte[4];
        stream.ReadExactly(magic);
        stream.Position = 0;
        if (magic.SequenceEqual("PK\u0003\u0004"u8))
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
            var list = new List<TensorInfo>();
            var stored = true;
            foreach (var entry in zip.Entries.OrderBy(e => e.FullName, StringComparer.Ordinal))
            {
                stored &= entry.CompressedLength == entry.Length;
                using var member = entry.Open();
                var header = new byte[10];
                member.ReadExactly(header);
                var length = header[6] == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(8)) : (int)ReadV2Length(member, header);
                var text = new byte[length];
                member.ReadExactly(text);
                var dict = Encoding.ASCII.GetString(text);
                var descr = DescrPattern().Match(dict).Groups[1].Value;
                var shape = ShapePattern().Match(dict).Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                list.Add(new TensorInfo(Path.GetFileNameWithoutExtension(entry.FullName), NumpyDType(descr), shape));
            }

            return ($"npz (numpy savez, {(stored ? "stored" : "deflated")} members)", list);
        }

        var lengthBytes = new byte[8];
        stream.ReadExactly(lengthBytes);
        var n = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        var json = new byte[n];
        stream.ReadExactly(json);
        using var doc = JsonDocument.Parse(json);
        var tensors = new List<TensorInfo>();
        foreach (var p in doc.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            tensors.Add(new TensorInfo(p.Name, p.Value.GetProperty("dtype").GetString()!, [.. p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())]));
        }

        return ("safetensors", tensors);
    }

    private static uint ReadV2Length(Stream member, byte[] header)
    {
        // Version 2/3: a 4-byte length at offset 8; two of its bytes are already in the 10-byte prefix.
        var rest = new byte[2];
        member.ReadExactly(rest);
        return BinaryPrimitives.ReadUInt32LittleEndian([header[8], header[9], rest[0], rest[1]]);
    }

    private static string NumpyDType(string descr) => descr.TrimStart('<', '>', '|', '=') switch
    {
        "f4" => "float32",
        "f2" => "float16",
        "f8" => "float64",
        "u2" => "uint16",
        "V2" => "bfloat16",
        var other => other,
    };

    [GeneratedRegex(@"'descr':\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
