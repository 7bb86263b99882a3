// TEMPORARY STAND-INS (forward engineer): see StandIns.Models.TEMPORARY.cs. Delete with it when "structure" and "gemm" land.
#pragma warning disable CS1591, CA1707
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Text.Json;
using GemmaScope.Formats;
using GemmaScope.Models;

namespace GemmaScope.Formats
{
    public sealed record SafeTensorInfo(string Name, TensorDType DType, IReadOnlyList<long> Shape, string File, long DataOffset, long ByteCount);

    public sealed unsafe class ModelCheckpoint : IDisposable
    {
        private readonly List<(MemoryMappedFile Map, MemoryMappedViewAccessor View, nint Base)> _maps = [];
        private readonly Dictionary<string, SafeTensorInfo> _infos = new(StringComparer.Ordinal);
        private readonly Dictionary<string, nint> _bases = new(StringComparer.Ordinal);

        private ModelCheckpoint(string folder, GemmaArchitecture arch)
        {
            Folder = folder;
            Architecture = arch;
        }

        public string Folder { get; }

        public GemmaArchitecture Architecture { get; }

        public long WeightBytes { get; private set; }

        public static ModelCheckpoint Open(string folder)
        {
            var arch = GemmaArchitecture.FromConfig(Path.Combine(folder, "config.json"));
            var c = new ModelCheckpoint(folder, arch);
            try
            {
                string index = Path.Combine(folder, "model.safetensors.index.json");
                var files = new List<string>();
                if (File.Exists(index))
                {
                    using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
                    foreach (var e in doc.RootElement.GetProperty("weight_map").EnumerateObject())
                    {
                        string f = e.Value.GetString()!;
                        if (!files.Contains(f))
                        {
                            files.Add(f);
                        }
                    }
                }
                else
                {
                    files.Add("model.safetensors");
                }

                foreach (var f in files)
                {
                    c.Map(Path.Combine(folder, f));
                }

                foreach (var (name, shape) in arch.ExpectedTensors())
                {
                    var info = c.Info(name);
                    if (!info.Shape.SequenceEqual(shape))
                    {
                        throw new SaeFormatException(info.File, name, "shape", string.Join("x", shape), string.Join("x", info.Shape));
                    }
                }

                return c;
            }
            catch
            {
                c.Dispose();
                throw;
            }
        }

        private void Map(string path)
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, false);
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            _maps.Add((map, view, (nint)p));
            long n = *(long*)p;
            using var doc = JsonDocument.Parse(new ReadOnlySpan<byte>(p + 8, (int)n).ToArray());
            foreach (var e in doc.RootElement.EnumerateObject())
            {
                if (e.Name == "__metadata__")
                {
                    continue;
                }

                string? canonical = Architecture.CanonicalTensorName(e.Name);
                if (canonical is null)
                {
                    continue;
                }

                var dt = e.Value.GetProperty("dtype").GetString() switch
                {
                    "F32" => TensorDType.Float32,
                    "BF16" => TensorDType.BFloat16,
                    "F16" => TensorDType.Float16,
                    "F64" => TensorDType.Float64,
                    var other => throw new SaeFormatException(path, e.Name, "dtype", "F32/BF16/F16", other),
                };
                var shape = e.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                var off = e.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                _infos[canonical] = new SafeTensorInfo(canonical, dt, shape, path, 8 + n + off[0], off[1] - off[0]);
                _bases[canonical] = (nint)p;
                WeightBytes += off[1] - off[0];
            }
        }

        public SafeTensorInfo Info(string canonicalName) =>
            _infos.TryGetValue(canonicalName, out var i) ? i : throw new SaeFormatException(Folder, canonicalName, "tensor missing", "present", "missing");

        public nint Address(string canonicalName) => _bases[canonicalName] + (nint)Info(canonicalName).DataOffset;

        public ReadOnlySpan<byte> Bytes(string canonicalName) => new((void*)Address(canonicalName), (int)Info(canonicalName).ByteCount);

        public void Dispose()
        {
            foreach (var (map, view, _) in _maps)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
                map.Dispose();
            }

            _maps.Clear();
        }
    }
}

namespace GemmaScope.Kernels
{
    public readonly unsafe struct WeightMatrix
    {
        private WeightMatrix(nint address, int rows, int cols, TensorDType dtype)
        {
            Address = address;
            Rows = rows;
            Cols = cols;
            DType = dtype;
        }

        public nint Address { get; }

        public int Rows { get; }

        public int Cols { get; }

        public TensorDType DType { get; }

        public static WeightMatrix Create(nint address, int rows, int cols, TensorDType dtype) => new(address, rows, cols, dtype);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal float At(long r, int c) => DType switch
        {
            TensorDType.Float32 => ((float*)Address)[(r * Cols) + c],
            TensorDType.BFloat16 => BitConverter.Int32BitsToSingle(((ushort*)Address)[(r * Cols) + c] << 16),
            TensorDType.Float16 => (float)((Half*)Address)[(r * Cols) + c],
            _ => throw new NotSupportedException(),
        };
    }

    public static class MatMul
    {
        public static void Multiply(ReadOnlySpan<float> x, int tokens, in WeightMatrix w, Span<float> y, int threads = 0)
        {
            int n = w.Cols, m = w.Rows;
            for (int t = 0; t < tokens; t++)
            {
                var xr = x.Slice(t * n, n);
                for (int o = 0; o < m; o++)
                {
                    float acc = 0;
                    for (int i = 0; i < n; i++)
                    {
                        acc += xr[i] * w.At(o, i);
                    }

                    y[(t * m) + o] = acc;
                }
            }
        }
    }
}
