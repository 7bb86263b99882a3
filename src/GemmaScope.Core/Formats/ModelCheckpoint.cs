using GemmaScope.Models;

namespace GemmaScope.Formats;

/// <summary>
/// A Hugging Face Gemma 2 or Gemma 3 checkpoint folder: <c>config.json</c> plus <c>model.safetensors</c>, or
/// <c>model.safetensors.index.json</c> (<see cref="ShardIndex"/>) and the shards it names. On <see cref="Open"/> every
/// shard is memory-mapped (nothing but headers is read) and every tensor the configuration implies is checked for
/// presence, dtype and shape before anything else happens. Tensors are looked up by canonical Gemma 2 style names
/// (<c>model.layers.{l}.self_attn.q_proj.weight</c>, …): an image-text <c>gemma3</c> checkpoint's <c>language_model.</c>
/// prefix is stripped, and its vision tower is never read. Symbolic links (a Hugging Face cache snapshot) are followed.
/// Reading is thread-safe; pointers and spans are valid until <see cref="Dispose"/>, which must not race with them.
/// </summary>
public sealed class ModelCheckpoint : IDisposable
{
    /// <summary>The configuration file of a checkpoint folder.</summary>
    public const string ConfigFile = "config.json";

    /// <summary>The weights file of an unsharded checkpoint.</summary>
    public const string SingleFile = "model.safetensors";

    private readonly List<SafeTensorsFile> _files = [];
    private readonly Dictionary<string, (SafeTensorsFile File, SafeTensorInfo Info)> _tensors = new(StringComparer.Ordinal);

    private ModelCheckpoint(string folder, GemmaArchitecture arch)
    {
        Folder = folder;
        Architecture = arch;
    }

    /// <summary>The checkpoint folder (full path, as given: symbolic links not resolved).</summary>
    public string Folder { get; }

    /// <summary>The architecture read from <c>config.json</c>.</summary>
    public GemmaArchitecture Architecture { get; }

    /// <summary>Full paths of the mapped safetensors files, in the order they were opened (shards in ordinal order).</summary>
    public IReadOnlyList<string> Files { get; private set; } = [];

    /// <summary>Bytes of every weight the forward reads (<see cref="GemmaArchitecture.ExpectedTensors"/>) as stored.</summary>
    public long WeightBytes { get; private set; }

    /// <summary>Opens and validates a checkpoint folder.</summary>
    /// <param name="folder">The folder holding <c>config.json</c> and the safetensors weights.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException"><c>config.json</c> is missing, or both <c>model.safetensors</c> and the index are.</exception>
    /// <exception cref="CheckpointFormatException">
    /// The checkpoint is malformed or disagrees with <c>config.json</c> (unsupported model type, malformed index, a shard the
    /// index names missing or not holding its tensor, a truncated shard, a missing tensor, a wrong shape or dtype); the
    /// message names the file and the tensor or field, the expected and the actual value.
    /// </exception>
    public static ModelCheckpoint Open(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        folder = Path.GetFullPath(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Checkpoint folder '{folder}' does not exist.");
        }

        var arch = GemmaArchitecture.FromConfig(Path.Combine(folder, ConfigFile));
        var ck = new ModelCheckpoint(folder, arch);
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

    /// <summary>Whether the checkpoint has a tensor of this canonical name.</summary>
    /// <param name="canonicalName">e.g. <c>model.layers.0.mlp.up_proj.weight</c>.</param>
    public bool Contains(string canonicalName) => _tensors.ContainsKey(canonicalName);

    /// <summary>A tensor's dtype, shape, file and offset (its <see cref="SafeTensorInfo.Name"/> is the name stored in the file).</summary>
    /// <param name="canonicalName">e.g. <c>model.layers.0.mlp.up_proj.weight</c>.</param>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    public SafeTensorInfo Info(string canonicalName) => Entry(canonicalName).Info;

    /// <summary>The first byte of a tensor's data inside the mapping (little-endian, row-major), valid until <see cref="Dispose"/>.</summary>
    /// <param name="canonicalName">e.g. <c>model.layers.0.mlp.up_proj.weight</c>.</param>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="ObjectDisposedException">The checkpoint, or the tensor's file (<see cref="ReleaseFilesExcept"/>), was disposed.</exception>
    public nint Address(string canonicalName)
    {
        var (file, info) = Entry(canonicalName);
        return file.Address(info.Name);
    }

    /// <summary>A tensor's data bytes (little-endian, row-major), valid until <see cref="Dispose"/>.</summary>
    /// <param name="canonicalName">e.g. <c>model.layers.0.mlp.up_proj.weight</c>.</param>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="NotSupportedException">The tensor is 2 GiB or larger (a float32 embedding of 256,000 × 2,304): use <see cref="Address"/>.</exception>
    /// <exception cref="ObjectDisposedException">The checkpoint, or the tensor's file, was disposed.</exception>
    public ReadOnlySpan<byte> Bytes(string canonicalName)
    {
        var (file, info) = Entry(canonicalName);
        return file.Bytes(info.Name);
    }

    /// <summary>
    /// Unmaps every file not in <paramref name="keep"/> (for instance the shards of a bf16 checkpoint once a float32 copy
    /// is made), so its pages leave the resident set. Tensors in them then throw <see cref="ObjectDisposedException"/>.
    /// Must not race with reads.
    /// </summary>
    /// <param name="keep">Full paths, as <see cref="Files"/> and <see cref="SafeTensorInfo.File"/> give them, of the files to keep mapped.</param>
    public void ReleaseFilesExcept(IReadOnlySet<string> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        foreach (var f in _files)
        {
            if (!keep.Contains(f.Path))
            {
                f.Dispose();
            }
        }
    }

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (var f in _files)
        {
            f.Dispose();
        }
    }

    private (SafeTensorsFile File, SafeTensorInfo Info) Entry(string canonicalName)
    {
        ArgumentNullException.ThrowIfNull(canonicalName);
        return _tensors.TryGetValue(canonicalName, out var e)
            ? e
            : throw new KeyNotFoundException($"Checkpoint '{Folder}' has no tensor '{canonicalName}' (names are canonical Gemma 2 style: model.layers.{{l}}.…).");
    }

    private void MapFiles()
    {
        string index = Path.Combine(Folder, ShardIndex.FileName);
        string single = Path.Combine(Folder, SingleFile);
        if (File.Exists(index))
        {
            var shardIndex = ShardIndex.Parse(index);
            var opened = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var shard in shardIndex.Shards)
            {
                string path = Path.Combine(Folder, shard);
                if (!File.Exists(path))
                {
                    string example = shardIndex.WeightMap.First(kv => kv.Value == shard).Key;
                    throw new CheckpointFormatException(index, example, $"the index names shard '{shard}', which is not in the checkpoint folder (incomplete download?)", $"file '{path}'", "missing");
                }

                opened[shard] = OpenFile(path);
            }

            foreach (var (name, shard) in shardIndex.WeightMap)
            {
                var file = opened[shard];
                if (!file.Tensors.TryGetValue(name, out var info))
                {
                    throw new CheckpointFormatException(file.Path, name, $"the index places this tensor in '{shard}' but the shard does not hold it", "a tensor of that name", "absent");
                }

                Register(file, info);
            }
        }
        else if (File.Exists(single))
        {
            var file = OpenFile(single);
            foreach (var info in file.Tensors.Values)
            {
                Register(file, info);
            }
        }
        else
        {
            throw new FileNotFoundException($"Checkpoint folder '{Folder}' has neither {SingleFile} nor {ShardIndex.FileName}.", single);
        }

        Files = _files.Select(f => f.Path).ToArray();
    }

    private SafeTensorsFile OpenFile(string path)
    {
        var file = SafeTensorsFile.Open(path);
        _files.Add(file);
        return file;
    }

    // Image-text checkpoints store the text model under a prefix; the forward reads it by its text-only name. Tensors
    // outside it (vision tower, projector) are left unregistered and never touched.
    private void Register(SafeTensorsFile file, SafeTensorInfo info)
    {
        if (Architecture.CanonicalTensorName(info.Name) is { } name)
        {
            _tensors[name] = (file, info);
        }
    }

    private void Validate()
    {
        string where = File.Exists(Path.Combine(Folder, ShardIndex.FileName)) ? Path.Combine(Folder, ShardIndex.FileName) : Path.Combine(Folder, SingleFile);
        long bytes = 0;
        foreach (var (name, shape) in Architecture.ExpectedTensors())
        {
            if (!_tensors.TryGetValue(name, out var entry))
            {
                var p = Architecture.TextWeightPrefixes;
                string prefixes = p.Count == 0 ? "" : $" (read under the prefix {string.Join(" or ", p.Select(x => $"'{x}'"))} in place of 'model.')";
                throw new CheckpointFormatException(where, name, $"missing tensor: the {Architecture.ModelType} forward needs it{prefixes}", $"shape [{string.Join(", ", shape)}]", "absent");
            }

            var t = entry.File.Raw(entry.Info.Name);
            if (!t.Shape.AsSpan().SequenceEqual(shape))
            {
                throw new CheckpointFormatException(entry.File.Path, name, "shape disagrees with config.json", $"[{string.Join(", ", shape)}]", t.ShapeText);
            }

            if (t.DType is not (TensorDType.Float32 or TensorDType.BFloat16 or TensorDType.Float16))
            {
                throw new CheckpointFormatException(entry.File.Path, name, "unsupported weight dtype", "F32, BF16 or F16", t.DTypeText);
            }

            bytes += t.ByteCount;
        }

        WeightBytes = bytes;
    }
}
