namespace GemmaScope.Formats;

/// <summary>
/// A memory-mapped safetensors file whose header has been validated as the reference implementation does (UTF-8 JSON,
/// known dtypes, offsets that agree with shapes, no holes, overlaps or unindexed bytes, nothing past the end of the file).
/// Nothing but the header is read on open; tensor data stays in the page cache until used. Reading is thread-safe;
/// <see cref="Address"/> and <see cref="Bytes"/> are valid until <see cref="Dispose"/>, which must not race with them.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private readonly MappedFile _file;
    private readonly Dictionary<string, RawTensor> _raw;
    private readonly Dictionary<string, SafeTensorInfo> _tensors;

    private SafeTensorsFile(MappedFile file, Dictionary<string, RawTensor> raw, Dictionary<string, string> metadata)
    {
        _file = file;
        _raw = raw;
        Metadata = metadata;
        _tensors = new Dictionary<string, SafeTensorInfo>(raw.Count, StringComparer.Ordinal);
        foreach (var (name, t) in raw)
        {
            _tensors[name] = new SafeTensorInfo(name, t.DType, Array.AsReadOnly(t.Shape), file.Path, t.Data - file.Pointer, t.ByteCount);
        }
    }

    /// <summary>Full path of the file (as opened; a symbolic link is not resolved).</summary>
    public string Path => _file.Path;

    /// <summary>File length in bytes.</summary>
    public long Length => _file.Length;

    /// <summary>Every tensor of the file by its stored name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => _tensors;

    /// <summary>The header's <c>__metadata__</c> string pairs (empty when it has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Maps a file and validates its header.</summary>
    /// <param name="path">The safetensors file; a symbolic link (as in a Hugging Face cache snapshot) is followed.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is not safetensors, is truncated, or its header is malformed; the message names the file and the tensor.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var file = MappedFile.Open(path, FormatErrors.Checkpoint);
        try
        {
            if (!SafeTensors.LooksLikeSafeTensors(file))
            {
                throw new CheckpointFormatException(file.Path, null, "not a safetensors file (or truncated before the end of its header)", "8-byte header length then a JSON header", $"{file.Length} bytes");
            }

            var (tensors, metadata) = SafeTensors.ReadAll(file);
            return new SafeTensorsFile(file, tensors, metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The first byte of a tensor's data inside the mapping (8-byte aligned in files written by the reference writer, not page aligned).</summary>
    /// <param name="name">The stored tensor name.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <exception cref="ObjectDisposedException">The file was disposed.</exception>
    public nint Address(string name)
    {
        var t = Raw(name);
        ObjectDisposedException.ThrowIf(_file.IsDisposed, this); // the data pointer would dangle
        return (nint)t.Data;
    }

    /// <summary>A tensor's data bytes, little-endian, row-major.</summary>
    /// <param name="name">The stored tensor name.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <exception cref="NotSupportedException">The tensor is 2 GiB or larger (a span cannot hold it): use <see cref="Address"/>.</exception>
    /// <exception cref="ObjectDisposedException">The file was disposed.</exception>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var info = Info(name);
        if (info.ByteCount > int.MaxValue)
        {
            throw new NotSupportedException($"{Path}, tensor '{name}': {info.ByteCount} bytes do not fit in a span (2 GiB at most); read it through Address.");
        }

        return new ReadOnlySpan<byte>((void*)Address(name), (int)info.ByteCount);
    }

    /// <summary>A tensor's description.</summary>
    /// <param name="name">The stored tensor name.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    public SafeTensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    internal RawTensor Raw(string name) =>
        _raw.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'.");

    internal bool IsDisposed => _file.IsDisposed;

    /// <summary>Unmaps the file.</summary>
    public void Dispose() => _file.Dispose();
}
