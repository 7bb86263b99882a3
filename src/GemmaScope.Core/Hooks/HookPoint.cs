using System.Globalization;

namespace GemmaScope;

/// <summary>Which tensor of a Gemma 2 or Gemma 3 forward pass a <see cref="HookPoint"/> names (TransformerLens's names).</summary>
/// <remarks>
/// Shapes are given per token row: every hook is captured as [tokens, width]. Per-head hooks are flattened head-major
/// (head h occupies columns h·head_dim … (h+1)·head_dim − 1); attention scores and patterns are [heads × key positions]
/// per query token.
/// </remarks>
public enum HookKind
{
    /// <summary><c>blocks.{l}.hook_resid_pre</c>: the input of block l (for l = 0 the embedding × √d_model).</summary>
    ResidPre,

    /// <summary><c>blocks.{l}.hook_resid_mid</c>: resid_pre + attn_out, the input of <c>pre_feedforward_layernorm</c>.</summary>
    ResidMid,

    /// <summary><c>blocks.{l}.hook_resid_post</c>: the output of block l. Gemma Scope residual SAEs read this.</summary>
    ResidPost,

    /// <summary><c>blocks.{l}.hook_attn_out</c>: the output of <c>post_attention_layernorm</c>, before the residual add.</summary>
    AttnOut,

    /// <summary><c>blocks.{l}.hook_mlp_out</c>: the output of <c>post_feedforward_layernorm</c>. Gemma Scope MLP SAEs read this.</summary>
    MlpOut,

    /// <summary><c>blocks.{l}.attn.hook_z</c> flattened: the input of <c>o_proj</c>, [tokens, heads × head_dim]. Gemma Scope attention SAEs read this.</summary>
    AttnZ,

    /// <summary>
    /// <c>blocks.{l}.ln2.hook_normalized</c>: the pre-feedforward RMSNorm's x / rms(x), before its (1 + w) gain (Gemma Scope
    /// transcoders read this).
    /// </summary>
    Ln2Normalized,

    /// <summary>
    /// <c>blocks.{l}.hook_mlp_in</c>: the MLP's input, the pre-feedforward RMSNorm's output with its (1 + w) gain
    /// (Gemma Scope 2 transcoders read this).
    /// </summary>
    MlpIn,

    /// <summary>
    /// <c>hook_embed</c>: the token embedding × √d_model, the same values as <c>blocks.0.hook_resid_pre</c> (Gemma Scope's
    /// embedding SAEs read this). Its <see cref="HookPoint.Layer"/> is 0.
    /// </summary>
    Embed,

    /// <summary><c>blocks.{l}.ln1.hook_scale</c>: rms(x) = √(mean(x²) + ε) of the input layernorm, width 1.</summary>
    Ln1Scale,

    /// <summary><c>blocks.{l}.ln1.hook_normalized</c>: the input layernorm's x / rms(x), before its (1 + w) gain.</summary>
    Ln1Normalized,

    /// <summary><c>blocks.{l}.ln2.hook_scale</c>: rms(x) of the pre-feedforward layernorm, width 1.</summary>
    Ln2Scale,

    /// <summary>
    /// <c>blocks.{l}.attn.hook_q</c>: queries, [tokens, heads × head_dim], after <c>q_proj</c> (and Gemma 3's QK-norm),
    /// before RoPE, as TransformerLens places it.
    /// </summary>
    AttnQ,

    /// <summary><c>blocks.{l}.attn.hook_k</c>: keys, [tokens, kv_heads × head_dim], after <c>k_proj</c> (and QK-norm), before RoPE.</summary>
    AttnK,

    /// <summary><c>blocks.{l}.attn.hook_v</c>: values, [tokens, kv_heads × head_dim], after <c>v_proj</c>.</summary>
    AttnV,

    /// <summary><c>blocks.{l}.attn.hook_rot_q</c>: queries after RoPE, [tokens, heads × head_dim].</summary>
    AttnRotQ,

    /// <summary><c>blocks.{l}.attn.hook_rot_k</c>: keys after RoPE, [tokens, kv_heads × head_dim].</summary>
    AttnRotK,

    /// <summary>
    /// <c>blocks.{l}.attn.hook_attn_scores</c>: scaled (and soft-capped) attention logits with the causal and sliding-window
    /// mask applied (−∞ where masked), [tokens, heads × key positions].
    /// </summary>
    AttnScores,

    /// <summary><c>blocks.{l}.attn.hook_pattern</c>: the softmax of the scores, [tokens, heads × key positions].</summary>
    AttnPattern,

    /// <summary><c>ln_final.hook_scale</c>: rms(x) of the final norm, width 1. Follows every block (<see cref="HookPoint.IsFinal"/>).</summary>
    LnFinalScale,

    /// <summary><c>ln_final.hook_normalized</c>: the final norm's x / rms(x), before its (1 + w) gain. Follows every block.</summary>
    LnFinalNormalized,
}

/// <summary>
/// A TransformerLens-style hook point of Gemma 2 or Gemma 3 (<c>blocks.{layer}.hook_resid_post</c> and so on): the one
/// vocabulary of sites shared by SAE configs, the hub catalog, the model engines and the CLI.
/// Immutable value; safe to share between threads.
/// </summary>
public sealed record HookPoint
{
    // Per-block slots of ForwardOrder; a block spans BlockSpan of them.
    private const int BlockSpan = 32;

    private HookPoint(int layer, HookKind kind)
    {
        Layer = layer;
        Kind = kind;
    }

    /// <summary>The decoder block index, from 0 (0 for <c>hook_embed</c>; −1 for the <c>ln_final</c> hooks, which follow every block).</summary>
    public int Layer { get; }

    /// <summary>Which tensor.</summary>
    public HookKind Kind { get; }

    /// <summary>True for the <c>ln_final</c> hooks, which follow the last block.</summary>
    public bool IsFinal => Kind is HookKind.LnFinalScale or HookKind.LnFinalNormalized;

    /// <summary>The TransformerLens name, e.g. <c>blocks.20.hook_resid_post</c>.</summary>
    public string Name => Kind switch
    {
        HookKind.Embed => "hook_embed",
        HookKind.LnFinalScale => "ln_final.hook_scale",
        HookKind.LnFinalNormalized => "ln_final.hook_normalized",
        _ => $"blocks.{Layer.ToString(CultureInfo.InvariantCulture)}.{Suffix(Kind)}",
    };

    /// <summary>Position along the forward pass, for ordering: hook_embed first, then block by block in execution order, the <c>ln_final</c> hooks last.</summary>
    public int ForwardOrder => Kind switch
    {
        HookKind.Embed => -1,
        HookKind.LnFinalScale => int.MaxValue - 1,
        HookKind.LnFinalNormalized => int.MaxValue,
        _ => (Layer * BlockSpan) + Kind switch
        {
            HookKind.ResidPre => 0,
            HookKind.Ln1Scale => 1,
            HookKind.Ln1Normalized => 2,
            HookKind.AttnQ => 3,
            HookKind.AttnK => 4,
            HookKind.AttnV => 5,
            HookKind.AttnRotQ => 6,
            HookKind.AttnRotK => 7,
            HookKind.AttnScores => 8,
            HookKind.AttnPattern => 9,
            HookKind.AttnZ => 10,
            HookKind.AttnOut => 11,
            HookKind.ResidMid => 12,
            HookKind.Ln2Scale => 13,
            HookKind.Ln2Normalized => 14,
            HookKind.MlpIn => 15,
            HookKind.MlpOut => 16,
            _ => 17,
        },
    };

    private static string Suffix(HookKind kind) => kind switch
    {
        HookKind.ResidPre => "hook_resid_pre",
        HookKind.ResidMid => "hook_resid_mid",
        HookKind.ResidPost => "hook_resid_post",
        HookKind.AttnOut => "hook_attn_out",
        HookKind.MlpOut => "hook_mlp_out",
        HookKind.AttnZ => "attn.hook_z",
        HookKind.Ln2Normalized => "ln2.hook_normalized",
        HookKind.MlpIn => "hook_mlp_in",
        HookKind.Ln1Scale => "ln1.hook_scale",
        HookKind.Ln1Normalized => "ln1.hook_normalized",
        HookKind.Ln2Scale => "ln2.hook_scale",
        HookKind.AttnQ => "attn.hook_q",
        HookKind.AttnK => "attn.hook_k",
        HookKind.AttnV => "attn.hook_v",
        HookKind.AttnRotQ => "attn.hook_rot_q",
        HookKind.AttnRotK => "attn.hook_rot_k",
        HookKind.AttnScores => "attn.hook_attn_scores",
        HookKind.AttnPattern => "attn.hook_pattern",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Not a block hook."),
    };

    private static readonly HookKind[] BlockKinds =
    [
        HookKind.ResidPre, HookKind.ResidMid, HookKind.ResidPost, HookKind.AttnOut, HookKind.MlpOut, HookKind.AttnZ,
        HookKind.Ln2Normalized, HookKind.MlpIn, HookKind.Ln1Scale, HookKind.Ln1Normalized, HookKind.Ln2Scale,
        HookKind.AttnQ, HookKind.AttnK, HookKind.AttnV, HookKind.AttnRotQ, HookKind.AttnRotK, HookKind.AttnScores, HookKind.AttnPattern,
    ];

    /// <summary>Every hook point of a model with <paramref name="layerCount"/> blocks, in forward order (TransformerLens's <c>hook_dict</c>).</summary>
    public static IReadOnlyList<HookPoint> All(int layerCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layerCount);
        var all = new List<HookPoint>((layerCount * BlockKinds.Length) + 3) { Embed };
        for (int l = 0; l < layerCount; l++)
        {
            foreach (var kind in BlockKinds)
            {
                all.Add(new HookPoint(l, kind));
            }
        }

        all.Add(LnFinalScale);
        all.Add(LnFinalNormalized);
        all.Sort(static (a, b) => a.ForwardOrder.CompareTo(b.ForwardOrder));
        return all;
    }

    /// <summary>Creates a hook point; <paramref name="layer"/> must be non-negative (the model checks the upper bound), 0 for <see cref="HookKind.Embed"/>; use <see cref="LnFinalScale"/>/<see cref="LnFinalNormalized"/> for the final norm.</summary>
    public static HookPoint Create(int layer, HookKind kind)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        if (!Enum.IsDefined(kind))
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown hook kind.");
        }

        if (kind == HookKind.Embed && layer != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(layer), layer, "hook_embed precedes every block: its layer is 0.");
        }

        if (kind is HookKind.LnFinalScale or HookKind.LnFinalNormalized)
        {
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "The ln_final hooks follow every block: use HookPoint.LnFinalScale or HookPoint.LnFinalNormalized.");
        }

        return new HookPoint(layer, kind);
    }

    /// <summary><c>blocks.{layer}.hook_resid_pre</c>.</summary>
    public static HookPoint ResidPre(int layer) => Create(layer, HookKind.ResidPre);

    /// <summary><c>blocks.{layer}.hook_resid_mid</c>.</summary>
    public static HookPoint ResidMid(int layer) => Create(layer, HookKind.ResidMid);

    /// <summary><c>blocks.{layer}.hook_resid_post</c>.</summary>
    public static HookPoint ResidPost(int layer) => Create(layer, HookKind.ResidPost);

    /// <summary><c>blocks.{layer}.hook_attn_out</c>.</summary>
    public static HookPoint AttnOut(int layer) => Create(layer, HookKind.AttnOut);

    /// <summary><c>blocks.{layer}.hook_mlp_out</c>.</summary>
    public static HookPoint MlpOut(int layer) => Create(layer, HookKind.MlpOut);

    /// <summary><c>blocks.{layer}.attn.hook_z</c> (flattened to heads × head_dim).</summary>
    public static HookPoint AttnZ(int layer) => Create(layer, HookKind.AttnZ);

    /// <summary><c>blocks.{layer}.ln2.hook_normalized</c> (pre-feedforward norm output before its gain).</summary>
    public static HookPoint Ln2Normalized(int layer) => Create(layer, HookKind.Ln2Normalized);

    /// <summary><c>blocks.{layer}.hook_mlp_in</c> (pre-feedforward norm output with its gain: the MLP's input).</summary>
    public static HookPoint MlpIn(int layer) => Create(layer, HookKind.MlpIn);

    /// <summary><c>blocks.{layer}.ln1.hook_scale</c>.</summary>
    public static HookPoint Ln1Scale(int layer) => Create(layer, HookKind.Ln1Scale);

    /// <summary><c>blocks.{layer}.ln1.hook_normalized</c>.</summary>
    public static HookPoint Ln1Normalized(int layer) => Create(layer, HookKind.Ln1Normalized);

    /// <summary><c>blocks.{layer}.ln2.hook_scale</c>.</summary>
    public static HookPoint Ln2Scale(int layer) => Create(layer, HookKind.Ln2Scale);

    /// <summary><c>blocks.{layer}.attn.hook_q</c> (before RoPE).</summary>
    public static HookPoint AttnQ(int layer) => Create(layer, HookKind.AttnQ);

    /// <summary><c>blocks.{layer}.attn.hook_k</c> (before RoPE).</summary>
    public static HookPoint AttnK(int layer) => Create(layer, HookKind.AttnK);

    /// <summary><c>blocks.{layer}.attn.hook_v</c>.</summary>
    public static HookPoint AttnV(int layer) => Create(layer, HookKind.AttnV);

    /// <summary><c>blocks.{layer}.attn.hook_rot_q</c> (after RoPE).</summary>
    public static HookPoint AttnRotQ(int layer) => Create(layer, HookKind.AttnRotQ);

    /// <summary><c>blocks.{layer}.attn.hook_rot_k</c> (after RoPE).</summary>
    public static HookPoint AttnRotK(int layer) => Create(layer, HookKind.AttnRotK);

    /// <summary><c>blocks.{layer}.attn.hook_attn_scores</c>.</summary>
    public static HookPoint AttnScores(int layer) => Create(layer, HookKind.AttnScores);

    /// <summary><c>blocks.{layer}.attn.hook_pattern</c>.</summary>
    public static HookPoint AttnPattern(int layer) => Create(layer, HookKind.AttnPattern);

    /// <summary><c>hook_embed</c> (embedding × √d_model).</summary>
    public static HookPoint Embed { get; } = new(0, HookKind.Embed);

    /// <summary><c>ln_final.hook_scale</c>.</summary>
    public static HookPoint LnFinalScale { get; } = new(-1, HookKind.LnFinalScale);

    /// <summary><c>ln_final.hook_normalized</c>.</summary>
    public static HookPoint LnFinalNormalized { get; } = new(-1, HookKind.LnFinalNormalized);

    /// <summary>The hook point an SAE was trained on (<see cref="SaeConfig.HookName"/>), so that the site need not be repeated.</summary>
    /// <param name="sae">A loaded SAE whose configuration carries its hook name (the hub catalog, SAELens's cfg.json, or <see cref="SaeLoadOptions.Config"/>).</param>
    /// <exception cref="ArgumentException">The SAE has no hook name, or one that is not a Gemma hook point; the message says how to give one.</exception>
    public static HookPoint Of(JumpReLUSae sae)
    {
        ArgumentNullException.ThrowIfNull(sae);
        return ForSae(sae.Config.HookName, sae.ToString());
    }

    /// <summary>The hook point named by an SAE's hook name, with a message that names the SAE and says how to give one.</summary>
    /// <param name="hookName">The SAE's hook name, or null when it has none.</param>
    /// <param name="sae">How to name the SAE in the message.</param>
    /// <exception cref="ArgumentException">No hook name, or one that is not a Gemma hook point.</exception>
    public static HookPoint ForSae(string? hookName, string sae)
    {
        if (hookName is null)
        {
            throw new ArgumentException(
                $"{sae} has no hook name, so where it applies is unknown (params.npz files carry none). Load it through GemmaScopeHub, " +
                "from a folder holding SAELens's cfg.json, or with SaeLoadOptions.Config = new() { HookName = \"blocks.20.hook_resid_post\" }; or name the site explicitly.",
                nameof(sae));
        }

        return TryParse(hookName, out var point)
            ? point
            : throw new ArgumentException($"{sae} reads '{hookName}', which is not a Gemma hook point ({Grammar}).", nameof(sae));
    }

    private const string Grammar =
        "hook_embed, blocks.{layer}.hook_resid_pre|hook_resid_mid|hook_resid_post|hook_attn_out|hook_mlp_out|hook_mlp_in, " +
        "blocks.{layer}.attn.hook_z|hook_q|hook_k|hook_v|hook_rot_q|hook_rot_k|hook_attn_scores|hook_pattern, " +
        "blocks.{layer}.ln1.hook_scale|hook_normalized, blocks.{layer}.ln2.hook_scale|hook_normalized, ln_final.hook_scale|hook_normalized";

    /// <summary>Parses a TransformerLens hook name such as <c>blocks.20.hook_resid_post</c>.</summary>
    /// <exception cref="FormatException">The name is not one of the supported hook points; the message lists them.</exception>
    public static HookPoint Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(name, out var point)
            ? point
            : throw new FormatException($"'{name}' is not a supported hook point. Expected one of: {Grammar}.");
    }

    /// <summary>Parses a TransformerLens hook name; false when it is not a supported hook point.</summary>
    public static bool TryParse(string? name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HookPoint? point)
    {
        point = name switch
        {
            "hook_embed" => Embed,
            "ln_final.hook_scale" => LnFinalScale,
            "ln_final.hook_normalized" => LnFinalNormalized,
            _ => null,
        };
        if (point is not null)
        {
            return true;
        }

        if (name is null || !name.StartsWith("blocks.", StringComparison.Ordinal))
        {
            return false;
        }

        var rest = name.AsSpan("blocks.".Length);
        int dot = rest.IndexOf('.');
        if (dot <= 0 || !int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out int layer))
        {
            return false;
        }

        var suffix = rest[(dot + 1)..];
        foreach (var kind in BlockKinds)
        {
            if (suffix.SequenceEqual(Suffix(kind)))
            {
                point = new HookPoint(layer, kind);
                return true;
            }
        }

        return false;
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
