using System.Text.Json;
using GemmaScope.Formats;

namespace GemmaScope.Onnx.Building;

/// <summary>
/// A Hugging Face checkpoint folder: <c>config.json</c> plus <c>model.safetensors</c>, or
/// <c>model.safetensors.index.json</c> and the shards it names. Every shard is memory-mapped (nothing is read until
/// used) and every tensor the configuration implies is checked for presence, dtype and shape before anything else
/// happens. Owns the maps: tensors stay valid until <see cref="Dispose"/>. Not thread-safe to dispose during use.
/// </summary>
internal sealed unsafe class Checkpoint : IDisposable
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    private readonly List<MappedFile> _files = [];
    private string? _dataRoot;
    private readonly Dictionary<string, (RawTensor Tensor, MappedFile File)> _tensors = new(StringComparer.Ordinal);

    private Checkpoint(string folder, GemmaArchitecture arch)
    {
        Folder = folder;
        Architecture = arch;
    }

    public string Folder { get; }

    public GemmaArchitecture Architecture { get; }

    /// <summary>Opens and validates a checkpoint folder.</summary>
    public static Checkpoint Open(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Checkpoint folder '{folder}' does not exist.");
        }

        var arch = GemmaArchitecture.FromConfig(Path.Combine(folder, "config.json"));
        var ck = new Checkpoint(folder, arch);
        try
        {
            ck.MapFiles();
            ck.Validate();
            return ck;
        }
        catch
        {
            ck.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The folder ONNX Runtime resolves external data against: the deepest folder holding both the checkpoint folder and
    /// every shard's real file. In a huggingface_hub cache the shards are symlinks into <c>blobs/</c>, and ONNX Runtime
    /// refuses external data whose resolved path leaves its folder.
    /// </summary>
    public string DataRoot
    {
        get
        {
            if (_dataRoot is null)
            {
                string root = RealPath(Folder);
                foreach (var f in _files)
                {
                    string dir = Path.GetDirectoryName(RealPath(f.Path))!;
                    while (!IsUnder(dir, root))
                    {
                        root = Path.GetDirectoryName(root) ?? root;
                        if (root == Path.GetPathRoot(root))
                        {
                            break;
                        }
                    }
                }

                _dataRoot = root;
            }

            return _dataRoot;
        }
    }

    /// <summary>A shard's path relative to <see cref="DataRoot"/>, symlinks resolved.</summary>
    public string DataLocation(string file) => Path.GetRelativePath(DataRoot, RealPath(file));

    private static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    // Resolves symbolic links in every component of a path (as ONNX Runtime's path check does).
    private static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        string current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            for (int hops = 0; hops < 40; hops++)
            {
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.LinkTarget is not { } target)
                {
                    break;
                }

                next = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target));
            }

            current = next;
        }

        return current;
    }

    /// <summary>The tensor, its file's full path and the byte offset of its data in that file.</summary>
    public (RawTensor Tensor, string File, long Offset) Get(string name)
    {
        var (t, f) = _tensors[name];
        return (t, f.Path, t.Data - f.Pointer);
    }

    private void MapFiles()
    {
        string index = Path.Combine(Folder, IndexFile);
        string single = Path.Combine(Folder, SingleFile);
        if (File.Exists(index))
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(File.ReadAllBytes(index));
            }
            catch (JsonException e)
            {
                throw new SaeFormatException(index, null, "the safetensors index is not valid JSON", null, e.Message, e);
            }

            var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                {
                    throw new SaeFormatException(index, "weight_map", "the safetensors index has no weight_map object", "{\"weight_map\": {tensor: shard}}");
                }

                foreach (var e in map.EnumerateObject())
                {
                    var shard = e.Value.ValueKind == JsonValueKind.String ? e.Value.GetString()! : "";
                    if (shard.Length == 0 || Path.GetFileName(shard) != shard)
                    {
                        throw new SaeFormatException(index, e.Name, "weight_map entry is not a file name in the checkpoint folder", "a shard file name", e.Value.GetRawText());
                    }

                    shardOf[e.Name] = shard;
                }
            }

            var opened = new Dictionary<string, (Dictionary<string, RawTensor> Tensors, MappedFile File)>(StringComparer.Ordinal);
            foreach (var shard in shardOf.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                string path = Path.Combine(Folder, shard);
                if (!File.Exists(path))
                {
                    string example = shardOf.First(kv => kv.Value == shard).Key;
                    throw new SaeFormatException(index, example, $"the index names shard '{shard}', which is not in the checkpoint folder (incomplete download?)", $"file '{path}'", "missing");
                }

                opened[shard] = OpenShard(path);
            }

            foreach (var (name, shard) in shardOf)
            {
                var (tensors, file) = opened[shard];
                if (!tensors.TryGetValue(name, out var t))
                {
                    throw new SaeFormatException(file.Path, name, $"the index places this tensor in '{shard}' but the shard does not hold it", "a tensor of that name", "absent");
                }

                Register(name, t, file);
            }
        }
        else if (File.Exists(single))
        {
            var (tensors, file) = OpenShard(single);
            foreach (var (name, t) in tensors)
            {
                Register(name, t, file);
            }
        }
        else
        {
            throw new FileNotFoundException($"Checkpoint folder '{Folder}' has neither {SingleFile} nor {IndexFile}.", single);
        }
    }

    // Image-text checkpoints store the text model under a prefix; the forward reads it by its text-only name. Tensors
    // outside it (vision tower, projector) are left unregistered and never touched.
    private void Register(string stored, RawTensor t, MappedFile file)
    {
        if (Architecture.CanonicalTensorName(stored) is { } name)
        {
            _tensors[name] = (t, file);
        }
    }

    private (Dictionary<string, RawTensor> Tensors, MappedFile File) OpenShard(string path)
    {
        var file = MappedFile.Open(path);
        _files.Add(file);
        if (!SafeTensors.LooksLikeSafeTensors(file))
        {
            throw new SaeFormatException(path, null, "not a safetensors file (or truncated before the end of its header)", "8-byte header length then a JSON header", $"{file.Length} bytes");
        }

        return (SafeTensors.ReadAll(file).Tensors, file);
    }

    private void Validate()
    {
        string where = File.Exists(Path.Combine(Folder, IndexFile)) ? Path.Combine(Folder, IndexFile) : Path.Combine(Folder, SingleFile);
        foreach (var (name, shape) in Architecture.ExpectedTensors())
        {
            if (!_tensors.TryGetValue(name, out var entry))
            {
                string prefixes = Architecture.TextWeightPrefixes.Length == 0 ? "" : $" (read under the prefix {string.Join(" or ", Architecture.TextWeightPrefixes.Select(p => $"'{p}'"))} in place of 'model.')";
                throw new SaeFormatException(where, name, $"missing tensor: the {Architecture.ModelType} forward needs it{prefixes}", $"shape [{string.Join(", ", shape)}]", "absent");
            }

            var t = entry.Tensor;
            if (!t.Shape.AsSpan().SequenceEqual(shape))
            {
                throw new SaeFormatException(entry.File.Path, name, "shape disagrees with config.json", $"[{string.Join(", ", shape)}]", t.ShapeText);
            }

            if (t.DType is not (TensorDType.Float32 or TensorDType.BFloat16 or TensorDType.Float16))
            {
                throw new SaeFormatException(entry.File.Path, name, "unsupported weight dtype", "F32, BF16 or F16", t.DTypeText);
            }
        }
    }

    /// <summary>
    /// Unmaps every shard none of whose tensors is used in place (a bf16 checkpoint once widened), so its pages leave
    /// the resident set. <see cref="Get"/> must not be called for their tensors afterwards.
    /// </summary>
    public void ReleaseFilesExcept(IReadOnlySet<string> inUse)
    {
        for (int i = _files.Count - 1; i >= 0; i--)
        {
            if (!inUse.Contains(_files[i].Path))
            {
                _files[i].Dispose();
                _files.RemoveAt(i);
            }
        }
    }

    public void Dispose()
    {
        foreach (var f in _files)
        {
            f.Dispose();
        }

        _files.Clear();
    }
}
