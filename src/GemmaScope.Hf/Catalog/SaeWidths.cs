namespace GemmaScope.Hf;

/// <summary>The dictionary widths Gemma Scope uses in its folder names (<c>width_16k</c> …).</summary>
/// <remarks>Immutable; thread-safe.</remarks>
public static class SaeWidths
{
    private static readonly (string Name, int Size)[] Table =
    [
        ("4k", 4096),
        ("16k", 16384),
        ("32k", 32768),
        ("65k", 65536),
        ("131k", 131072),
        ("262k", 262144),
        ("524k", 524288),
        ("1m", 1048576),
    ];

    /// <summary>All width names in increasing size: 4k, 16k, 32k, 65k, 131k, 262k, 524k, 1m.</summary>
    public static IReadOnlyList<string> Names { get; } = Array.ConvertAll(Table, t => t.Name);

    /// <summary>The number of features of a width name such as <c>"16k"</c> (16384) or <c>"1m"</c> (1048576).</summary>
    /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>.</exception>
    public static int FeatureCount(string width)
    {
        ArgumentNullException.ThrowIfNull(width);
        foreach (var (name, size) in Table)
        {
            if (name == width)
            {
                return size;
            }
        }

        throw new ArgumentException(
            $"Unknown Gemma Scope width '{width}'; expected one of {string.Join(", ", Names)}.", nameof(width));
    }

    /// <summary>The width name of a feature count (16384 -> "16k"), or null when Gemma Scope has no such width.</summary>
    public static string? NameOf(int featureCount)
    {
        foreach (var (name, size) in Table)
        {
            if (size == featureCount)
            {
                return name;
            }
        }

        return null;
    }
}
