using System.IO.MemoryMappedFiles;

namespace GemmaScope.Formats;

/// <summary>
/// A read-only memory map of a whole file, with bounds-checked access. Weight tensors that are stored as little-endian
/// float32 are used in place from the map, so loading a 300 MB SAE costs page-table work, not a copy.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;

    private MappedFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, long length, FormatError error)
    {
        Path = path;
        Error = error;
        _map = map;
        _view = view;
        _base = basePtr;
        Length = length;
    }

    public string Path { get; }

    public long Length { get; }

    /// <summary>Makes the exception for a malformed file: an SAE's or a checkpoint's.</summary>
    public FormatError Error { get; }

    /// <summary>True once <see cref="Dispose"/> ran: pointers into the map dangle.</summary>
    public bool IsDisposed { get; private set; }

    public byte* Pointer => _base != null ? _base : throw new ObjectDisposedException(Path);

    public static MappedFile Open(string path, FormatError? error = null)
    {
        error ??= FormatErrors.Sae;
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"{full}: file not found", full);
        }

        // Size the open file, not the path: in a huggingface_hub cache the path is a symlink into blobs/.
        var stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.None);
        long length = stream.Length;
        if (length == 0)
        {
            stream.Dispose();
            return new MappedFile(full, null, null, null, 0, error);
        }

        MemoryMappedFile? map = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            return new MappedFile(full, map, view, p, length, error);
        }
        catch
        {
            if (map is null)
            {
                stream.Dispose();
            }

            map?.Dispose();
            throw;
        }
    }

    /// <summary>Bytes [offset, offset + count), or a format exception (<see cref="Error"/>) if that runs past the end.</summary>
    public ReadOnlySpan<byte> Slice(long offset, long count, string? what = null)
    {
        if (offset < 0 || count < 0 || offset > Length || count > Length - offset)
        {
            throw Error(Path, what, "data lies outside the file (truncated or lying header)",
                $"bytes [{offset}, {offset + count}) within the file", $"file length {Length}");
        }

        if (count > int.MaxValue)
        {
            throw Error(Path, what, "a single header or member is too large to read as one span", "< 2 GiB", $"{count} bytes");
        }

        return new ReadOnlySpan<byte>(_base + offset, (int)count);
    }

    public void CheckRange(long offset, long count, string? what)
    {
        if (offset < 0 || count < 0 || offset > Length || count > Length - offset)
        {
            throw Error(Path, what, "data lies outside the file (truncated or lying header)",
                $"bytes [{offset}, {offset + count}) within the file", $"file length {Length}");
        }
    }

    public void Dispose()
    {
        if (IsDisposed)
        {
            return;
        }

        IsDisposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }

        _map?.Dispose();
        _base = null;
    }
}
