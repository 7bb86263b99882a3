using System.Globalization;
using System.Runtime.InteropServices;
using GemmaScope.Formats;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace GemmaScope.Onnx.Building;

/// <summary>How a built graph's large weights reach ONNX Runtime.</summary>
internal enum WeightBinding
{
    /// <summary>
    /// <c>SessionOptions.AddInitializer</c> with OrtValues over the memory-mapped safetensors (float32) or over one
    /// float32 copy in native memory (bf16/f16). Shared by every session of the model; the default.
    /// </summary>
    Initializers,

    /// <summary>ONNX external data pointing into the safetensors files (float32 checkpoints only); each session reads them itself.</summary>
    ExternalData,
}

/// <summary>
/// The large weights of a checkpoint as ONNX Runtime values, and the small ones (norm gains) as float32 arrays.
/// float32 tensors are used in place from the memory map; bf16/f16 ones are widened once into native memory
/// (cost: 4 bytes per parameter, twice the bf16 file size; the bf16 pages are only read once).
/// Owns the checkpoint's maps and the widened copies; immutable after construction, safe to share between sessions.
/// </summary>
internal sealed unsafe class CheckpointWeights : IDisposable
{
    private readonly ModelCheckpoint _ck;
    private readonly Dictionary<string, OrtValue> _values = new(StringComparer.Ordinal);
    private readonly List<nint> _native = [];
    private readonly HashSet<string> _inPlace = new(StringComparer.Ordinal);

    public CheckpointWeights(ModelCheckpoint checkpoint, WeightBinding binding)
    {
        _ck = checkpoint;
        Binding = binding;
    }

    public WeightBinding Binding { get; }

    public ModelCheckpoint Checkpoint => _ck;

    /// <summary>The external-data folder for sessions (computed before any shard is unmapped).</summary>
    public string DataRoot { get; private set; } = "";

    /// <summary>Bytes of float32 copies made for non-float32 checkpoints.</summary>
    public long WidenedBytes { get; private set; }

    /// <summary>The graph's declaration of a large weight: float32, [out, in] as stored, data outside the graph.</summary>
    public TensorProto Declare(string name)
    {
        if (DataRoot.Length == 0)
        {
            DataRoot = ExternalData.Root(_ck);
        }

        var t = _ck.Info(name);
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        proto.Dims.Add(t.Shape);
        if (Binding == WeightBinding.ExternalData && t.DType != TensorDType.Float32)
        {
            throw new NotSupportedException($"{t.File}, tensor '{name}': external-data binding needs float32 weights; this one is {DTypeText(t.DType)}.");
        }

        // The declaration points into the safetensors file (relative to the checkpoint's data root, symlinks resolved).
        // With Initializers binding ONNX Runtime uses the bound OrtValue instead and never reads it (the path must
        // still exist: ONNX Runtime checks it at load).
        proto.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = ExternalData.Location(DataRoot, t.File) });
        proto.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = t.DataOffset.ToString(CultureInfo.InvariantCulture) });
        proto.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = (t.ElementCount * 4).ToString(CultureInfo.InvariantCulture) });
        if (Binding == WeightBinding.Initializers)
        {
            Value(name);
        }

        return proto;
    }

    /// <summary>A small weight as float32 (copied).</summary>
    public float[] Small(string name)
    {
        var t = _ck.Info(name);
        var result = new float[t.ElementCount];
        fixed (float* dst = result)
        {
            ToFloat32(t, (void*)_ck.Address(name), dst);
        }

        return result;
    }

    /// <summary>The OrtValue bound to a large weight (created on first use).</summary>
    public OrtValue Value(string name)
    {
        lock (_values)
        {
            if (_values.TryGetValue(name, out var v))
            {
                return v;
            }

            var t = _ck.Info(name);
            var src = (void*)_ck.Address(name);
            float* data;
            if (t.DType == TensorDType.Float32)
            {
                data = (float*)src;
                _inPlace.Add(t.File);
            }
            else
            {
                data = (float*)NativeMemory.AlignedAlloc((nuint)(t.ElementCount * 4), 64);
                _native.Add((nint)data);
                WidenedBytes += t.ElementCount * 4;
                ToFloat32(t, src, data);
            }

            v = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [.. t.Shape], (nint)data, t.ElementCount * 4);
            _values[name] = v;
            return v;
        }
    }

    /// <summary>
    /// Called once the graph is built (every value bound): unmaps the shards no bound value points into, e.g. a bf16
    /// checkpoint after widening, so only the float32 copy stays resident.
    /// </summary>
    public void ReleaseUnusedFiles()
    {
        if (Binding == WeightBinding.Initializers)
        {
            lock (_values)
            {
                _ck.ReleaseFilesExcept(_inPlace);
            }
        }
    }

    public bool IsBound(string name)
    {
        lock (_values)
        {
            return _values.ContainsKey(name);
        }
    }

    private static void ToFloat32(SafeTensorInfo t, void* data, float* dst)
    {
        long n = t.ElementCount;
        switch (t.DType)
        {
            case TensorDType.Float32:
                Buffer.MemoryCopy(data, dst, n * 4, n * 4);
                break;
            case TensorDType.BFloat16:
                BFloat16Widen.Run((ushort*)data, dst, n);
                break;
            case TensorDType.Float16:
                var src = (Half*)data;
                for (long i = 0; i < n; i++)
                {
                    dst[i] = (float)src[i];
                }

                break;
            default:
                throw new CheckpointFormatException(t.File, t.Name, "unsupported weight dtype", "F32, BF16 or F16", DTypeText(t.DType));
        }
    }

    private static string DTypeText(TensorDType d) => d switch
    {
        TensorDType.Float32 => "float32",
        TensorDType.Float16 => "float16",
        TensorDType.BFloat16 => "bfloat16",
        TensorDType.Float64 => "float64",
        _ => d.ToString(),
    };

    public void Dispose()
    {
        lock (_values)
        {
            foreach (var v in _values.Values)
            {
                v.Dispose();
            }

            _values.Clear();
            foreach (var p in _native)
            {
                NativeMemory.AlignedFree((void*)p);
            }

            _native.Clear();
        }

        _ck.Dispose();
    }
}
