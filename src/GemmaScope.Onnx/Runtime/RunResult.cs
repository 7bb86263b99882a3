using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;

namespace GemmaScope.Onnx;

/// <summary>
/// The outputs of one <see cref="GemmaModel"/> run over a batch of sequences: captured activations, logits, per-token
/// loss and (with a tokenizer) token strings. Every accessor returns only the real tokens of the sequence asked for
/// (whether the engine padded the batch or packed it). Immutable; the spans are views of its arrays.
/// </summary>
[DebuggerDisplay("{ToString(),nq}")]
public sealed class RunResult
{
    private readonly Dictionary<HookPoint, (float[] Data, int Width)> _activations;
    private readonly Dictionary<HookPoint, (float[] Data, int Width)> _edited;
    private readonly Dictionary<HookPoint, (float[] Data, int Width)> _features;
    private readonly float[]? _logits;
    private readonly float[][]? _loss;
    private readonly int[][] _ids;
    private readonly string[][]? _tokens;
    private readonly int[] _rowStart;
    private readonly int? _headDim;

    internal RunResult(Dictionary<HookPoint, (float[] Data, int Width)> activations, Dictionary<HookPoint, (float[] Data, int Width)> edited, Dictionary<HookPoint, (float[] Data, int Width)> features, float[]? logits, int vocab, int[] rowStart,
        int[][] ids, float[][]? loss, string[][]? tokens, int? headDim)
    {
        _rowStart = rowStart;
        _headDim = headDim;
        _activations = activations;
        _edited = edited;
        _features = features;
        _logits = logits;
        VocabSize = vocab;
        _ids = ids;
        _loss = loss;
        _tokens = tokens;
    }

    /// <summary>Number of sequences in the batch.</summary>
    public int BatchSize => _ids.Length;

    /// <summary>Whether logits (and loss) were computed; false for a run with <c>logits: false</c>.</summary>
    public bool HasLogits => _logits is not null;

    /// <summary>The vocabulary size (last dimension of the logits); 0 when <see cref="HasLogits"/> is false.</summary>
    public int VocabSize { get; }

    /// <summary>The hook points captured in this run.</summary>
    public IReadOnlyCollection<HookPoint> Captured => _activations.Keys;

    /// <summary>Number of real tokens of sequence <paramref name="sequence"/>.</summary>
    public int TokenCount(int sequence = 0) => Ids(sequence).Length;

    /// <summary>The token ids of a sequence (BOS included when it was added).</summary>
    public ReadOnlySpan<int> Ids(int sequence = 0) => _ids[CheckSequence(sequence)];

    /// <summary>Token strings of a sequence, one per id; null when the model was loaded without a tokenizer.</summary>
    public IReadOnlyList<string>? Tokens(int sequence = 0) => _tokens?[CheckSequence(sequence)];

    /// <summary>Width of a captured site's rows (d_model for residual/attn_out/mlp_out, heads × head_dim for attn.hook_z).</summary>
    public int Width(HookPoint site) => Get(site).Width;

    /// <summary>
    /// The activations at <paramref name="site"/> for one sequence, row-major [tokens × width]: the value the hook point
    /// receives, with the edits of every earlier site applied (TransformerLens order) but not those at this site
    /// (see <see cref="EditedActivations"/>). A span for hot paths; <see cref="GetActivations"/> gives a storable copy.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The site was not captured in this run.</exception>
    public ReadOnlySpan<float> Activations(HookPoint site, int sequence = 0)
    {
        var (data, width) = Get(site);
        int s = CheckSequence(sequence);
        return data.AsSpan(_rowStart[s] * width, _ids[s].Length * width);
    }

    /// <summary>
    /// The activations at <paramref name="site"/> after the interventions at that site (splice, steering, callback): what the
    /// rest of the model reads. Equal to <see cref="Activations"/> when nothing edits the site.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The site was not captured in this run.</exception>
    public ReadOnlySpan<float> EditedActivations(HookPoint site, int sequence = 0)
    {
        var (data, width) = Get(site);
        if (_edited.TryGetValue(site, out var e))
        {
            (data, width) = e;
        }

        int s = CheckSequence(sequence);
        return data.AsSpan(_rowStart[s] * width, _ids[s].Length * width);
    }

    /// <summary>
    /// One head of a per-head hook point (<c>attn.hook_z</c>, <c>hook_q</c>, <c>hook_k</c>, <c>hook_v</c>, <c>hook_rot_q</c>,
    /// <c>hook_rot_k</c>) as a [tokens, head_dim] view of the captured rows (no copy): TransformerLens's
    /// <c>cache["blocks.3.attn.hook_z"][0, :, head]</c>. Key and value hooks have the KV heads.
    /// </summary>
    /// <param name="site">A captured per-head hook point.</param>
    /// <param name="head">The head, from 0.</param>
    /// <param name="sequence">Which sequence of the batch.</param>
    /// <param name="edited">True for the value after the site's own interventions (<see cref="EditedActivations"/>).</param>
    /// <exception cref="ArgumentException">The site is not per-head, or the engine does not know head_dim (an exported ONNX graph).</exception>
    public ReadOnlyTensorSpan<float> HeadActivations(HookPoint site, int head, int sequence = 0, bool edited = false)
    {
        ArgumentNullException.ThrowIfNull(site);
        if (site.Kind is not (HookKind.AttnZ or HookKind.AttnQ or HookKind.AttnK or HookKind.AttnV or HookKind.AttnRotQ or HookKind.AttnRotK))
        {
            throw new ArgumentException($"{site.Name} has no heads; per-head views exist for attn.hook_z, hook_q, hook_k, hook_v, hook_rot_q and hook_rot_k.", nameof(site));
        }

        int headDim = _headDim ?? throw new ArgumentException($"head_dim of this model is unknown (an exported ONNX graph); slice {site.Name}'s rows yourself.", nameof(site));
        var (data, width) = Get(site);
        if (edited && _edited.TryGetValue(site, out var e))
        {
            (data, width) = e;
        }

        int heads = width / headDim;
        if ((uint)head >= (uint)heads)
        {
            throw new ArgumentOutOfRangeException(nameof(head), head, $"{site.Name} has {heads} heads of {headDim}.");
        }

        int s = CheckSequence(sequence);
        return new ReadOnlyTensorSpan<float>(data, (_rowStart[s] * width) + (head * headDim), [_ids[s].Length, headDim], [width, 1]);
    }

    /// <summary>A storable copy of <see cref="Activations"/>, with its width, hook name and token strings.</summary>
    /// <exception cref="KeyNotFoundException">The site was not captured in this run.</exception>
    public ActivationBatch GetActivations(HookPoint site, int sequence = 0) =>
        new(Activations(site, sequence), Width(site), site.Name, Tokens(sequence));

    /// <summary>A storable copy of <see cref="EditedActivations"/>, with its width, hook name and token strings.</summary>
    /// <exception cref="KeyNotFoundException">The site was not captured in this run.</exception>
    public ActivationBatch GetEditedActivations(HookPoint site, int sequence = 0) =>
        new(EditedActivations(site, sequence), Width(site), site.Name, Tokens(sequence));

    /// <summary>
    /// Encodes the activations captured at the SAE's own hook point (<see cref="SaeConfig.HookName"/>) to sparse
    /// features: <c>model.Run(text, capture: [HookPoint.Of(sae)]).EncodeSparse(sae)</c>. Widths are checked.
    /// </summary>
    /// <param name="sae">An SAE that knows its hook point.</param>
    /// <param name="sequence">Which sequence of the batch.</param>
    /// <exception cref="ArgumentException">The SAE has no usable hook name, or its width is not the site's.</exception>
    /// <exception cref="KeyNotFoundException">The SAE's site was not captured in this run.</exception>
    public SparseFeatureBatch EncodeSparse(JumpReLUSae sae, int sequence = 0)
    {
        ArgumentNullException.ThrowIfNull(sae);
        return sae.EncodeSparse(GetActivations(HookPoint.Of(sae), sequence));
    }

    /// <summary>Feature activations of the SAE spliced at <paramref name="site"/> (before clamping), [tokens × d_sae]; needs <see cref="SaeSplice.CaptureFeatures"/>.</summary>
    public ReadOnlySpan<float> Features(HookPoint site, int sequence = 0)
    {
        ArgumentNullException.ThrowIfNull(site);
        if (!_features.TryGetValue(site, out var f))
        {
            throw new KeyNotFoundException($"No SAE features were captured at {site.Name}; set SaeSplice.CaptureFeatures.");
        }

        int s = CheckSequence(sequence);
        return f.Data.AsSpan(_rowStart[s] * f.Width, _ids[s].Length * f.Width);
    }

    /// <summary>
    /// The spliced SAE's features at <paramref name="site"/> (<see cref="Features"/>) in storable sparse form, a new copy
    /// holding the active features only (BOS reads none when the splice excludes it); needs <see cref="SaeSplice.CaptureFeatures"/>.
    /// </summary>
    /// <exception cref="KeyNotFoundException">No SAE features were captured at <paramref name="site"/>.</exception>
    public SparseFeatureBatch SparseFeatures(HookPoint site, int sequence = 0)
    {
        var dense = Features(site, sequence);
        int width = _features[site].Width;
        int tokens = dense.Length / width;
        var offsets = new int[tokens + 1];
        var indices = new List<int>();
        var values = new List<float>();
        for (int t = 0; t < tokens; t++)
        {
            var row = dense.Slice(t * width, width);
            for (int j = 0; j < width; j++)
            {
                if (row[j] != 0)
                {
                    indices.Add(j);
                    values.Add(row[j]);
                }
            }

            offsets[t + 1] = indices.Count;
        }

        return new SparseFeatureBatch(width, offsets, [.. indices], [.. values]);
    }

    /// <summary>The former name of <see cref="SparseFeatures(HookPoint, int)"/>, which this forwards to.</summary>
    [Obsolete("Use SparseFeatures")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public SparseFeatureBatch GetFeatures(HookPoint site, int sequence = 0) => SparseFeatures(site, sequence);

    /// <summary>Soft-capped logits of one sequence as a storable [tokens, vocab] tensor (a copy).</summary>
    public Tensor<float> GetLogits(int sequence = 0) => Tensor.Create(Logits(sequence).ToArray(), [TokenCount(sequence), VocabSize]);

    /// <summary>A storable copy of <see cref="Loss"/>.</summary>
    public float[] GetLoss(int sequence = 0) => Loss(sequence).ToArray();

    /// <summary>A storable copy of <see cref="Ids"/>.</summary>
    public int[] GetIds(int sequence = 0) => Ids(sequence).ToArray();

    /// <summary>Soft-capped logits of one sequence, row-major [tokens × vocab].</summary>
    public ReadOnlySpan<float> Logits(int sequence = 0)
    {
        int s = CheckSequence(sequence);
        return NeedLogits(_logits).AsSpan(_rowStart[s] * VocabSize, _ids[s].Length * VocabSize);
    }

    /// <summary>Next-token cross-entropy (nats) at each position but the last: loss[t] = −log p(ids[t+1] | ids[..t]).</summary>
    public ReadOnlySpan<float> Loss(int sequence = 0) => NeedLogits(_loss)[CheckSequence(sequence)];

    private static T NeedLogits<T>(T? value)
        where T : class =>
        value ?? throw new InvalidOperationException("This run computed no logits (logits: false stops after the last layer needed); run with logits: true for logits and loss.");

    /// <summary>Mean of <see cref="Loss"/> over a sequence.</summary>
    public double MeanLoss(int sequence = 0)
    {
        var l = Loss(sequence);
        double sum = 0;
        foreach (var v in l)
        {
            sum += v;
        }

        return l.Length == 0 ? 0 : sum / l.Length;
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        var tokens = string.Join(", ", _ids.Select(i => i.Length.ToString(CultureInfo.InvariantCulture)));
        var sb = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"RunResult({BatchSize} sequence{(BatchSize == 1 ? "" : "s")} of {tokens} tokens, {(HasLogits ? $"vocab {VocabSize}, {LossText()}" : "no logits")}"));
        if (_activations.Count > 0)
        {
            sb.Append("; captured ").AppendJoin(", ", _activations.Keys.Select(k => _edited.ContainsKey(k) ? k.Name + " (before and after edits)" : k.Name));
        }

        if (_features.Count > 0)
        {
            sb.Append("; SAE features at ").AppendJoin(", ", _features.Keys.Select(k => k.Name));
        }

        return sb.Append(')').ToString();
    }

    // One sequence: its mean loss; a batch: each sequence's (sequence 0's alone would read as the batch's).
    private string LossText() => BatchSize == 1
        ? string.Create(CultureInfo.InvariantCulture, $"mean loss {MeanLoss():F4}")
        : "mean loss per sequence " + string.Join(", ", Enumerable.Range(0, BatchSize).Select(s => MeanLoss(s).ToString("F4", CultureInfo.InvariantCulture)));

    private (float[] Data, int Width) Get(HookPoint site)
    {
        ArgumentNullException.ThrowIfNull(site);
        return _activations.TryGetValue(site, out var a)
            ? a
            : throw new KeyNotFoundException($"Hook point {site.Name} was not captured in this run; captured: [{string.Join(", ", _activations.Keys)}].");
    }

    private int CheckSequence(int sequence)
    {
        if ((uint)sequence >= (uint)_ids.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"The batch has {_ids.Length} sequences.");
        }

        return sequence;
    }
}
