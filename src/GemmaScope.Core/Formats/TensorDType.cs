namespace GemmaScope.Formats;

/// <summary>Element types a weight file may store. Everything is converted to the SAE's working precision on load.</summary>
public enum TensorDType
{
    /// <summary>IEEE binary32.</summary>
    Float32,

    /// <summary>IEEE binary16.</summary>
    Float16,

    /// <summary>bfloat16: the upper 16 bits of a binary32.</summary>
    BFloat16,

    /// <summary>IEEE binary64.</summary>
    Float64,
}

internal static class TensorDTypeExtensions
{
    public static int Size(this TensorDType t) => t switch
    {
        TensorDType.Float32 => 4,
        TensorDType.Float16 => 2,
        TensorDType.BFloat16 => 2,
        TensorDType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };
}
