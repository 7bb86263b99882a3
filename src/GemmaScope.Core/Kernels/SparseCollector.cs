namespace GemmaScope.Kernels;

/// <summary>
/// The active features one kernel part found, as (token, feature, value) triples in the order found: for each token,
/// features increase (a part walks its columns left to right). Arrays grow and are reused, so steady-state calls do not
/// allocate here.
/// </summary>
internal sealed class SparseCollector
{
    private int[] _tokens = new int[256];
    private int[] _features = new int[256];
    private float[] _values = new float[256];

    public int Count { get; private set; }

    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);

    public ReadOnlySpan<int> Features => _features.AsSpan(0, Count);

    public ReadOnlySpan<float> Values => _values.AsSpan(0, Count);

    public void Clear() => Count = 0;

    public void Add(int token, int feature, float value)
    {
        if (Count == _tokens.Length)
        {
            int n = _tokens.Length * 2;
            Array.Resize(ref _tokens, n);
            Array.Resize(ref _features, n);
            Array.Resize(ref _values, n);
        }

        _tokens[Count] = token;
        _features[Count] = feature;
        _values[Count] = value;
        Count++;
    }
}
