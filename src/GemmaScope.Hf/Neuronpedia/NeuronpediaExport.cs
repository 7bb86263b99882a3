using System.Globalization;
using System.IO.Compression;
using System.Text.Json;

namespace GemmaScope.Hf;

/// <summary>
/// The explanations of one Neuronpedia SAE (source), read from its export files <c>batch-N.jsonl.gz</c>.
/// Obtain it from <see cref="NeuronpediaClient.GetExportAsync"/> or <see cref="Read"/>.
/// </summary>
/// <remarks>Immutable; thread-safe.</remarks>
public sealed class NeuronpediaExport
{
    private NeuronpediaExport(string neuronpediaId, string folder, int batchCount, List<FeatureExplanation> explanations)
    {
        NeuronpediaId = neuronpediaId;
        Folder = folder;
        BatchCount = batchCount;
        Explanations = explanations.AsReadOnly();
        var first = new Dictionary<int, string>();
        foreach (var e in explanations)
        {
            first.TryAdd(e.Index, e.Description);
        }

        Descriptions = first.AsReadOnly();
    }

    /// <summary>The Neuronpedia SAE id, <c>{modelId}/{sourceId}</c>.</summary>
    public string NeuronpediaId { get; }

    /// <summary>The folder the batch files were read from.</summary>
    public string Folder { get; }

    /// <summary>How many <c>batch-N.jsonl.gz</c> files were read.</summary>
    public int BatchCount { get; }

    /// <summary>Every explanation record, in file order (a feature may have several).</summary>
    public IReadOnlyList<FeatureExplanation> Explanations { get; }

    /// <summary>Feature index → description (the first explanation of each feature in file order); the form the HTML views take.</summary>
    public IReadOnlyDictionary<int, string> Descriptions { get; }

    /// <summary><c>{id}: N explanations of M features from K batches</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{NeuronpediaId}: {Explanations.Count} explanations of {Descriptions.Count} features from {BatchCount} batches");

    /// <summary>
    /// Reads the <c>batch-N.jsonl.gz</c> files of one folder (e.g. <c>…/v1/gemma-2-2b/20-gemmascope-res-16k/explanations</c>).
    /// </summary>
    /// <param name="folder">The folder holding the batch files.</param>
    /// <param name="neuronpediaId"><c>{modelId}/{sourceId}</c>: every record must name it.</param>
    /// <exception cref="NeuronpediaException">
    /// No batch file, a gap in the batch numbers, or a malformed record (not JSON, a missing or mistyped field, a negative index, another
    /// SAE's record): the message names the file, the line and the field. Malformed records are errors, not skipped.
    /// </exception>
    public static NeuronpediaExport Read(string folder, string neuronpediaId)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var (modelId, sourceId) = NeuronpediaClient.SplitId(neuronpediaId);
        var batches = BatchFiles(folder);
        if (batches.Count == 0)
        {
            throw new NeuronpediaException($"No Neuronpedia export of {neuronpediaId} in {folder}: expected files batch-0.jsonl.gz, batch-1.jsonl.gz, ….");
        }

        var all = new List<FeatureExplanation>();
        foreach (var file in batches)
        {
            ReadBatch(file, modelId, sourceId, all);
        }

        return new NeuronpediaExport(neuronpediaId, folder, batches.Count, all);
    }

    /// <summary>The batch files of a folder in batch order; a gap in the numbers is an error (a partial download).</summary>
    internal static List<string> BatchFiles(string folder)
    {
        var found = new SortedDictionary<int, string>();
        if (Directory.Exists(folder))
        {
            foreach (var path in Directory.EnumerateFiles(folder, "batch-*.jsonl.gz"))
            {
                var name = Path.GetFileName(path);
                var number = name["batch-".Length..^".jsonl.gz".Length];
                if (int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                {
                    found[n] = path;
                }
            }
        }

        var list = new List<string>(found.Count);
        var expected = 0;
        foreach (var (n, path) in found)
        {
            if (n != expected)
            {
                throw new NeuronpediaException($"The Neuronpedia export in {folder} has batch-{n}.jsonl.gz but no batch-{expected}.jsonl.gz: it is incomplete.");
            }

            list.Add(path);
            expected++;
        }

        return list;
    }

    internal static void ReadBatch(string file, string modelId, string sourceId, List<FeatureExplanation> into)
    {
        using var stream = File.OpenRead(file);
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var lineNumber = 0;
        try
        {
            while (reader.ReadLine() is { } line)
            {
                lineNumber++;
                if (line.Length == 0)
                {
                    continue;
                }

                into.Add(ParseRecord(line, modelId, sourceId, $"{file}, line {lineNumber}"));
            }
        }
        catch (InvalidDataException e)
        {
            throw new NeuronpediaException($"{file} is not a valid gzip file (after line {lineNumber}): {e.Message}", innerException: e);
        }
    }

    internal static FeatureExplanation ParseRecord(string json, string modelId, string sourceId, string where)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new NeuronpediaException($"{where}: not a JSON record ({e.Message}).", innerException: e);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new NeuronpediaException($"{where}: expected a JSON object, found {root.ValueKind}.");
            }

            var model = RequiredString(root, "modelId", where);
            var source = RequiredString(root, "layer", where);
            if (model != modelId || source != sourceId)
            {
                throw new NeuronpediaException($"{where}: the record is of {model}/{source}, expected {modelId}/{sourceId}.");
            }

            var index = ReadIndex(root, where);
            return new FeatureExplanation(
                model, source, index, RequiredString(root, "description", where),
                OptionalString(root, "typeName", where), OptionalString(root, "explanationModelName", where));
        }
    }

    // Exports write the index as a string ("123"), the API too; a number is accepted as well.
    internal static int ReadIndex(JsonElement obj, string where)
    {
        if (!obj.TryGetProperty("index", out var value))
        {
            throw new NeuronpediaException($"{where}: field 'index' is missing.");
        }

        var ok = value.ValueKind switch
        {
            JsonValueKind.String => int.TryParse(value.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1,
            JsonValueKind.Number => value.TryGetInt32(out var n) && n >= 0 ? n : -1,
            _ => -1,
        };
        if (ok < 0)
        {
            throw new NeuronpediaException($"{where}: field 'index' must be a non-negative integer, found {value.GetRawText()}.");
        }

        return ok;
    }

    internal static string RequiredString(JsonElement obj, string name, string where)
    {
        if (!obj.TryGetProperty(name, out var value))
        {
            throw new NeuronpediaException($"{where}: field '{name}' is missing.");
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw new NeuronpediaException($"{where}: field '{name}' must be a string, found {value.ValueKind}.");
        }

        return value.GetString()!;
    }

    internal static string? OptionalString(JsonElement obj, string name, string where)
    {
        if (!obj.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : throw new NeuronpediaException($"{where}: field '{name}' must be a string or null, found {value.ValueKind}.");
    }
}
