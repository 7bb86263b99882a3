using System.Diagnostics;
using System.Globalization;

namespace GemmaScope;

/// <summary>
/// The active features of one token: indices in increasing order and their values (all &gt; 0). A view for hot paths
/// (no allocation); it cannot be stored in a field or a notebook variable: <see cref="SparseFeatureBatch.Token"/> gives
/// the storable <see cref="TokenFeatures"/>.
/// </summary>
public readonly ref struct SparseFeatures
{
    /// <summary>Creates a view over parallel index and value spans.</summary>
    /// <param name="indices">Feature indices, increasing.</param>
    /// <param name="values">Their activations.</param>
    public SparseFeatures(ReadOnlySpan<int> indices, ReadOnlySpan<float> values)
    {
        if (indices.Length != values.Length)
        {
            throw new ArgumentException($"indices ({indices.Length}) and values ({values.Length}) differ in length");
        }

        Indices = indices;
        Values = values;
    }

    /// <summary>Active feature indices, in increasing order.</summary>
    public ReadOnlySpan<int> Indices { get; }

    /// <summary>Activations of <see cref="Indices"/>.</summary>
    public ReadOnlySpan<float> Values { get; }

    /// <summary>Number of active features (L0).</summary>
    public int Count => Indices.Length;

    /// <summary>The <paramref name="k"/> strongest features, strongest first (ties: lower index first).</summary>
    public (int Feature, float Value)[] TopK(int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        k = Math.Min(k, Count);
        var idx = new int[k];
        var val = new float[k];
        int n = TopK(Indices, Values, idx, val);
        var result = new (int, float)[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = (idx[i], val[i]);
        }

        return result;
    }

    /// <summary>
    /// Writes the strongest min(k, count) entries of (<paramref name="indices"/>, <paramref name="values"/>), strongest first,
    /// where k is the destination length; returns how many were written. Partial insertion sort: O(count · k), no allocation.
    /// </summary>
    public static int TopK(ReadOnlySpan<int> indices, ReadOnlySpan<float> values, Span<int> topIndices, Span<float> topValues)
    {
        int k = Math.Min(topIndices.Length, topValues.Length);
        int n = 0;
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (n == k && (k == 0 || v <= topValues[k - 1]))
            {
                continue;
            }

            int pos = n < k ? n++ : k - 1;
            while (pos > 0 && topValues[pos - 1] < v)
            {
                topValues[pos] = topValues[pos - 1];
                topIndices[pos] = topIndices[pos - 1];
                pos--;
            }

            topValues[pos] = v;
            topIndices[pos] = indices[i];
        }

        return n;
    }
}

/// <summary>
/// Sparse features of a batch of tokens in compressed-row form: token t's features are
/// <c>Indices[Offsets[t]..Offsets[t + 1]]</c> with values at the same positions. Immutable. Enumerating it gives each
/// token's storable <see cref="TokenFeatures"/>, as <see cref="Token"/> does.
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class SparseFeatureBatch : IEnumerable<TokenFeatures>
{
    private readonly int[] _offsets;
    private readonly int[] _indices;
    private readonly float[] _values;

    /// <summary>Creates a batch from compressed-row arrays; they are validated and copied, so later changes do not affect it.</summary>
    /// <param name="featureCount">The SAE's width (d_sae).</param>
    /// <param name="offsets">tokens + 1 offsets, starting at 0, non-decreasing.</param>
    /// <param name="indices">Feature indices, increasing within each token.</param>
    /// <param name="values">Values, parallel to <paramref name="indices"/>.</param>
    public SparseFeatureBatch(int featureCount, int[] offsets, int[] indices, float[] values)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentNullException.ThrowIfNull(values);
        if (offsets.Length == 0 || offsets[0] != 0 || offsets[^1] != indices.Length || indices.Length != values.Length)
        {
            throw new ArgumentException("offsets must start at 0 and end at indices.Length, and values must match indices in length");
        }

        for (int t = 0; t + 1 < offsets.Length; t++)
        {
            if (offsets[t + 1] < offsets[t])
            {
                throw new ArgumentException($"offsets decrease at token {t}");
            }

            for (int k = offsets[t]; k < offsets[t + 1]; k++)
            {
                if ((uint)indices[k] >= (uint)featureCount || (k > offsets[t] && indices[k] <= indices[k - 1]))
                {
                    throw new ArgumentException($"token {t}: feature indices must be increasing and in [0, {featureCount}); found {indices[k]} at position {k}");
                }
            }
        }

        FeatureCount = featureCount;
        _offsets = (int[])offsets.Clone();
        _indices = (int[])indices.Clone();
        _values = (float[])values.Clone();
    }

    private SparseFeatureBatch(int featureCount, int[] offsets, int[] indices, float[] values, bool trusted)
    {
        _ = trusted;
        FeatureCount = featureCount;
        _offsets = offsets;
        _indices = indices;
        _values = values;
    }

    /// <summary>Wraps arrays the library has just built (valid by construction, owned by no one else).</summary>
    internal static SparseFeatureBatch FromTrusted(int featureCount, int[] offsets, int[] indices, float[] values) =>
        new(featureCount, offsets, indices, values, trusted: true);

    /// <summary>Number of tokens.</summary>
    public int TokenCount => _offsets.Length - 1;

    /// <summary>The SAE's width (d_sae).</summary>
    public int FeatureCount { get; }

    /// <summary>tokens + 1 offsets into <see cref="Indices"/> and <see cref="Values"/>.</summary>
    public ReadOnlySpan<int> Offsets => _offsets;

    /// <summary>All tokens' feature indices, token after token.</summary>
    public ReadOnlySpan<int> Indices => _indices;

    /// <summary>All tokens' feature values, parallel to <see cref="Indices"/>.</summary>
    public ReadOnlySpan<float> Values => _values;

    /// <summary>
    /// The active features of token <paramref name="token"/>: an allocation-free view (a ref struct), which cannot be stored
    /// in a field, a list or a lambda; <see cref="Token"/> (or enumerating the batch) gives a storable <see cref="TokenFeatures"/>.
    /// </summary>
    public SparseFeatures this[int token]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)token, (uint)TokenCount, nameof(token));
            int s = _offsets[token], e = _offsets[token + 1];
            return new SparseFeatures(_indices.AsSpan(s, e - s), _values.AsSpan(s, e - s));
        }
    }

    /// <summary>
    /// The active features of token <paramref name="token"/> as a storable object (copies of its indices and values),
    /// for notebook variables and fields; <c>batch[t]</c> is the allocation-free view.
    /// </summary>
    public TokenFeatures Token(int token)
    {
        var f = this[token];
        return new TokenFeatures(token, f.Indices.ToArray(), f.Values.ToArray());
    }

    /// <summary>Each token's features, storable (<see cref="Token"/> of 0, 1, …): <c>foreach (var f in batch)</c>, LINQ, <c>batch.ToList()</c>.</summary>
    public IEnumerator<TokenFeatures> GetEnumerator()
    {
        for (int t = 0; t < TokenCount; t++)
        {
            yield return Token(t);
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>One feature's value at every token (0 where it is inactive), e.g. for a heatmap.</summary>
    /// <param name="feature">Feature index in [0, <see cref="FeatureCount"/>).</param>
    public float[] Feature(int feature)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)feature, (uint)FeatureCount, nameof(feature));
        var column = new float[TokenCount];
        for (int t = 0; t < column.Length; t++)
        {
            int s = _offsets[t], n = _offsets[t + 1] - s;
            int k = Array.BinarySearch(_indices, s, n, feature);
            column[t] = k >= 0 ? _values[k] : 0f;
        }

        return column;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"SparseFeatureBatch({TokenCount} tokens × {FeatureCount} features, mean L0 {MeanL0:F1})");

    /// <summary>Number of active features of token <paramref name="token"/>.</summary>
    public int L0(int token) => this[token].Count;

    /// <summary>Mean L0 over the batch.</summary>
    public double MeanL0 => TokenCount == 0 ? 0 : (double)_indices.Length / TokenCount;

    /// <summary>Writes the dense [tokens × d_sae] form into <paramref name="dense"/>.</summary>
    public void ToDense(Span<float> dense)
    {
        long need = (long)TokenCount * FeatureCount;
        if (dense.Length != need)
        {
            throw new ArgumentException($"destination has {dense.Length} floats; {TokenCount} tokens × {FeatureCount} features need {need}", nameof(dense));
        }

        dense.Clear();
        for (int t = 0; t < TokenCount; t++)
        {
            var row = dense.Slice(t * FeatureCount, FeatureCount);
            for (int k = _offsets[t]; k < _offsets[t + 1]; k++)
            {
                row[_indices[k]] = _values[k];
            }
        }
    }
}

/// <summary>
/// A reusable, caller-owned destination for <see cref="JumpReLUSae.EncodeSparse(ReadOnlySpan{float}, SparseFeatureBuffer)"/>:
/// the same compressed-row layout as <see cref="SparseFeatureBatch"/>, but overwritten by each encode and grown only
/// when a batch needs more room, so encoding many SAEs per forward pass allocates nothing once the buffers are warm.
/// Not thread-safe: one buffer per concurrent caller. Its spans are valid until the next encode into it;
/// <see cref="ToBatch"/> takes an immutable copy.
/// </summary>
public sealed class SparseFeatureBuffer
{
    private int[] _offsets = [0];
    private int[] _indices = [];
    private float[] _values = [];
    private int _tokens;
    private int _count;

    /// <summary>Creates an empty buffer; <paramref name="tokenCapacity"/> and <paramref name="featureCapacity"/> pre-size it.</summary>
    /// <param name="tokenCapacity">Tokens per batch to make room for.</param>
    /// <param name="featureCapacity">Active features per batch (all tokens) to make room for.</param>
    public SparseFeatureBuffer(int tokenCapacity = 0, int featureCapacity = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokenCapacity);
        ArgumentOutOfRangeException.ThrowIfNegative(featureCapacity);
        _offsets = new int[tokenCapacity + 1];
        _indices = new int[featureCapacity];
        _values = new float[featureCapacity];
    }

    /// <summary>Number of tokens of the last encode.</summary>
    public int TokenCount => _tokens;

    /// <summary>The SAE's width (d_sae) of the last encode (0 before any).</summary>
    public int FeatureCount { get; private set; }

    /// <summary>tokens + 1 offsets into <see cref="Indices"/> and <see cref="Values"/>.</summary>
    public ReadOnlySpan<int> Offsets => _offsets.AsSpan(0, _tokens + 1);

    /// <summary>All tokens' feature indices, token after token.</summary>
    public ReadOnlySpan<int> Indices => _indices.AsSpan(0, _count);

    /// <summary>All tokens' feature values, parallel to <see cref="Indices"/>.</summary>
    public ReadOnlySpan<float> Values => _values.AsSpan(0, _count);

    /// <summary>The active features of token <paramref name="token"/>.</summary>
    public SparseFeatures this[int token]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)token, (uint)_tokens, nameof(token));
            int s = _offsets[token], e = _offsets[token + 1];
            return new SparseFeatures(_indices.AsSpan(s, e - s), _values.AsSpan(s, e - s));
        }
    }

    /// <summary>An immutable copy of the current contents.</summary>
    public SparseFeatureBatch ToBatch() =>
        SparseFeatureBatch.FromTrusted(FeatureCount, Offsets.ToArray(), Indices.ToArray(), Values.ToArray());

    internal Span<int> PrepareOffsets(int featureCount, int tokens)
    {
        FeatureCount = featureCount;
        _tokens = 0;
        _count = 0;
        if (_offsets.Length < tokens + 1)
        {
            _offsets = new int[tokens + 1];
        }

        _offsets[0] = 0;
        _tokens = tokens;
        return _offsets.AsSpan(0, tokens + 1);
    }

    internal (int[] Indices, float[] Values) PrepareEntries(int count)
    {
        if (_indices.Length < count)
        {
            // Grow with headroom so a slowly rising L0 does not reallocate on every call.
            int n = Math.Max(count, (int)Math.Min(Array.MaxLength, _indices.Length * 2L));
            _indices = new int[n];
            _values = new float[n];
        }

        return (_indices, _values);
    }

    internal void Commit(int count) => _count = count;
}

/// <summary>
/// The active features of one token, storable (unlike the <see cref="SparseFeatures"/> view): indices in increasing
/// order and their values. Immutable; from <see cref="SparseFeatureBatch.Token"/>.
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class TokenFeatures
{
    private readonly int[] _indices;
    private readonly float[] _values;

    internal TokenFeatures(int token, int[] indices, float[] values)
    {
        TokenIndex = token;
        _indices = indices;
        _values = values;
        Indices = Array.AsReadOnly(indices);
        Values = Array.AsReadOnly(values);
    }

    /// <summary>The token's position in its batch.</summary>
    public int TokenIndex { get; }

    /// <summary>Active feature indices, in increasing order.</summary>
    public IReadOnlyList<int> Indices { get; }

    /// <summary>Activations of <see cref="Indices"/>.</summary>
    public IReadOnlyList<float> Values { get; }

    /// <summary>Number of active features (L0).</summary>
    public int Count => _indices.Length;

    /// <summary>The value of feature <paramref name="feature"/> at this token, 0 when inactive.</summary>
    public float this[int feature]
    {
        get
        {
            int k = Array.BinarySearch(_indices, feature);
            return k >= 0 ? _values[k] : 0f;
        }
    }

    /// <summary>The view form, for APIs that take <see cref="SparseFeatures"/>.</summary>
    public SparseFeatures AsSpan() => new(_indices, _values);

    /// <summary>The <paramref name="k"/> strongest features, strongest first (ties: lower index first).</summary>
    public (int Feature, float Value)[] TopK(int k) => AsSpan().TopK(k);

    /// <summary>Position, L0 and up to five strongest features.</summary>
    public override string ToString()
    {
        var top = TopK(5);
        var parts = string.Join(", ", top.Select(p => string.Create(CultureInfo.InvariantCulture, $"#{p.Feature} {p.Value:G4}")));
        return string.Create(CultureInfo.InvariantCulture, $"token {TokenIndex}: L0 {Count}{(Count == 0 ? "" : ", top " + parts)}{(Count > top.Length ? ", …" : "")}");
    }
}
