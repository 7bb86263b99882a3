using System.Text.Json;

namespace GemmaScope.Formats;

/// <summary>
/// A sharded checkpoint's <c>model.safetensors.index.json</c>: which shard file holds each tensor. The one parser of this
/// file for every package (hub download, checkpoint loading, command line), so all of them accept and refuse the same files.
/// </summary>
public sealed class ShardIndex
{
    /// <summary>The index's file name in a checkpoint folder.</summary>
    public const string FileName = "model.safetensors.index.json";

    // Real indexes are tens of kilobytes; this bounds what a hostile file can make the parser allocate.
    private const long MaxBytes = 64L << 20;

    private ShardIndex(string path, Dictionary<string, string> weightMap, List<string> shards)
    {
        Path = path;
        WeightMap = weightMap;
        Shards = shards.AsReadOnly();
    }

    /// <summary>Full path of the index file.</summary>
    public string Path { get; }

    /// <summary>Stored tensor name → shard file name (a plain file name in the index's folder, ending in <c>.safetensors</c>).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>The distinct shard file names, in ordinal order.</summary>
    public IReadOnlyList<string> Shards { get; }

    /// <summary>
    /// Reads and checks an index: a JSON object with a non-empty <c>weight_map</c> object whose every value is a plain file
    /// name (no folder, no <c>..</c>) ending in <c>.safetensors</c>. Other members (<c>metadata</c>) are ignored.
    /// </summary>
    /// <param name="path">The index file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The index is too large, not JSON, or its <c>weight_map</c> is missing, empty or names an unsafe or non-safetensors file; the message names the file and the entry.</exception>
    public static ShardIndex Parse(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: file not found", path);
        }

        long length;
        using (var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            length = probe.Length; // a symbolic link's own length is not the file's
        }

        if (length > MaxBytes)
        {
            throw new CheckpointFormatException(path, null, $"has {length} bytes; an index is expected to be far below {MaxBytes}", $"<= {MaxBytes} bytes", $"{length} bytes");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, null, $"the safetensors index is not valid JSON: {e.Message}", null, null, e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            {
                throw CheckpointFormatException.JsonField(path, "weight_map", "the safetensors index has no \"weight_map\" object (tensor name -> shard file)", "{\"weight_map\": {tensor: shard}}", null);
            }

            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            var shards = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String || entry.Value.GetString() is not { } shard)
                {
                    throw new CheckpointFormatException(path, entry.Name, $"weight_map[\"{entry.Name}\"] is a JSON {entry.Value.ValueKind}; expected a shard file name", "a shard file name", entry.Value.GetRawText());
                }

                if (!IsPlainFileName(shard))
                {
                    throw new CheckpointFormatException(path, entry.Name, $"weight_map[\"{entry.Name}\"] = '{shard}' is not a safe relative path: a shard is a file name in the checkpoint folder", "a shard file name", shard);
                }

                if (!shard.EndsWith(".safetensors", StringComparison.Ordinal))
                {
                    throw new CheckpointFormatException(path, entry.Name, $"weight_map[\"{entry.Name}\"] = '{shard}' is not a .safetensors file", "a .safetensors file name", shard);
                }

                if (!weightMap.TryAdd(entry.Name, shard))
                {
                    throw new CheckpointFormatException(path, entry.Name, $"weight_map names tensor '{entry.Name}' twice");
                }

                shards.Add(shard);
            }

            if (weightMap.Count == 0)
            {
                throw CheckpointFormatException.JsonField(path, "weight_map", "the safetensors index has an empty weight_map", "at least one tensor", "none");
            }

            return new ShardIndex(path, weightMap, [.. shards]);
        }
    }

    // One path component that stays in the folder on every OS: no separators, no '.'/'..', no control or reserved characters.
    private static bool IsPlainFileName(string name)
    {
        if (name.Length == 0 || name.Length > 255 || name is "." or "..")
        {
            return false;
        }

        foreach (char c in name)
        {
            if (c is '/' or '\\' or ':' or '*' or '?' or '"' or '<' or '>' or '|' || char.IsControl(c))
            {
                return false;
            }
        }

        return true;
    }
}
