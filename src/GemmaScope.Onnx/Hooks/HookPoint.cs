using System.Globalization;

namespace GemmaScope.Onnx;

/// <summary>Which tensor of a Gemma 2 or Gemma 3 decoder block a <see cref="HookPoint"/> names.</summary>
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
    /// transcoders read this). Only models built by <see cref="GemmaModel.FromPretrained"/> expose it.
    /// </summary>
    Ln2Normalized,

    /// <summary>
    /// <c>blocks.{l}.hook_mlp_in</c>: the MLP's input, the pre-feedforward RMSNorm's output with its (1 + w) gain
    /// (Gemma Scope 2 transcoders read this). Only models built by <see cref="GemmaModel.FromPretrained"/> expose it.
    /// </summary>
    MlpIn,

    /// <summary>
    /// <c>hook_embed</c>: the token embedding × √d_model, the same values as <c>blocks.0.hook_resid_pre</c> (Gemma Scope's
    /// embedding SAEs read this). Its <see cref="HookPoint.Layer"/> is 0.
    /// </summary>
    Embed,
}

/// <summary>
/// A TransformerLens-style hook point of Gemma 2 or Gemma 3 (<c>blocks.{layer}.hook_resid_post</c> and so on).
/// Immutable value; safe to share between threads.
/// </summary>
public sealed record HookPoint
{
    private HookPoint(int layer, HookKind kind)
    {
        Layer = layer;
        Kind = kind;
    }

    /// <summary>The decoder block index, from 0.</summary>
    public int Layer { get; }

    /// <summary>Which tensor of the block.</summary>
    public HookKind Kind { get; }

    /// <summary>The TransformerLens name, e.g. <c>blocks.20.hook_resid_post</c>.</summary>
    public string Name => Kind switch
    {
        HookKind.ResidPre => $"blocks.{Layer}.hook_resid_pre",
        HookKind.ResidMid => $"blocks.{Layer}.hook_resid_mid",
        HookKind.ResidPost => $"blocks.{Layer}.hook_resid_post",
        HookKind.AttnOut => $"blocks.{Layer}.hook_attn_out",
        HookKind.MlpOut => $"blocks.{Layer}.hook_mlp_out",
        HookKind.AttnZ => $"blocks.{Layer}.attn.hook_z",
        HookKind.Ln2Normalized => $"blocks.{Layer}.ln2.hook_normalized",
        HookKind.MlpIn => $"blocks.{Layer}.hook_mlp_in",
        HookKind.Embed => "hook_embed",
        _ => throw new InvalidOperationException($"Unknown hook kind {Kind}."),
    };

    /// <summary>Creates a hook point; <paramref name="layer"/> must be non-negative (the model checks the upper bound), and 0 for <see cref="HookKind.Embed"/>.</summary>
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

    /// <summary><c>hook_embed</c> (embedding × √d_model).</summary>
    public static HookPoint Embed { get; } = new(0, HookKind.Embed);

    /// <summary>The hook point an SAE was trained on (<see cref="SaeConfig.HookName"/>), so that the site need not be repeated.</summary>
    /// <param name="sae">A loaded SAE whose configuration carries its hook name (the hub catalog, SAELens's cfg.json, or <see cref="SaeLoadOptions.Config"/>).</param>
    /// <exception cref="ArgumentException">The SAE has no hook name, or one that is not a Gemma 2 block hook point; the message says how to give one.</exception>
    public static HookPoint Of(JumpReLUSae sae)
    {
        ArgumentNullException.ThrowIfNull(sae);
        return FromSaeHookName(sae.Config.HookName, sae.ToString());
    }

    /// <summary>The hook point of an <see cref="ISaeTensors"/> (its <see cref="ISaeTensors.HookName"/>).</summary>
    /// <param name="sae">SAE tensors that carry a hook name.</param>
    /// <exception cref="ArgumentException">The SAE has no hook name, or one that is not a Gemma 2 block hook point.</exception>
    public static HookPoint Of(ISaeTensors sae)
    {
        ArgumentNullException.ThrowIfNull(sae);
        return FromSaeHookName(sae.HookName, sae.ToString() ?? nameof(ISaeTensors));
    }

    private static HookPoint FromSaeHookName(string? hookName, string sae)
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
            : throw new ArgumentException(
                $"{sae} reads '{hookName}', which is not a hook point of a Gemma block (blocks.{{layer}}.hook_resid_pre|resid_mid|resid_post|attn_out|mlp_out, blocks.{{layer}}.attn.hook_z, blocks.{{layer}}.ln2.hook_normalized, blocks.{{layer}}.hook_mlp_in, hook_embed).",
                nameof(sae));
    }

    /// <summary>Parses a TransformerLens hook name such as <c>blocks.20.hook_resid_post</c>.</summary>
    /// <exception cref="FormatException">The name is not one of the supported hook points; the message lists them.</exception>
    public static HookPoint Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return TryParse(name, out var point)
            ? point
            : throw new FormatException(
                $"'{name}' is not a supported hook point. Expected blocks.{{layer}}.hook_resid_pre, blocks.{{layer}}.hook_resid_mid, " +
                "blocks.{layer}.hook_resid_post, blocks.{layer}.hook_attn_out, blocks.{layer}.hook_mlp_out, blocks.{layer}.attn.hook_z, blocks.{layer}.ln2.hook_normalized, blocks.{layer}.hook_mlp_in or hook_embed.");
    }

    /// <summary>Parses a TransformerLens hook name; false when it is not a supported hook point.</summary>
    public static bool TryParse(string? name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HookPoint? point)
    {
        point = null;
        if (name == "hook_embed")
        {
            point = Embed;
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

        HookKind? kind = rest[(dot + 1)..] switch
        {
            "hook_resid_pre" => HookKind.ResidPre,
            "hook_resid_mid" => HookKind.ResidMid,
            "hook_resid_post" => HookKind.ResidPost,
            "hook_attn_out" => HookKind.AttnOut,
            "hook_mlp_out" => HookKind.MlpOut,
            "attn.hook_z" => HookKind.AttnZ,
            "ln2.hook_normalized" => HookKind.Ln2Normalized,
            "hook_mlp_in" => HookKind.MlpIn,
            _ => null,
        };
        if (kind is null)
        {
            return false;
        }

        point = new HookPoint(layer, kind.Value);
        return true;
    }

    /// <summary>Position along the forward pass: hook_embed, then block by block, and inside a block resid_pre, attn.hook_z, attn_out, resid_mid, ln2.hook_normalized, mlp_in, mlp_out, resid_post.</summary>
    internal int ForwardIndex => (Layer * 8) + Kind switch
    {
        HookKind.Embed => -1,
        HookKind.ResidPre => 0,
        HookKind.AttnZ => 1,
        HookKind.AttnOut => 2,
        HookKind.ResidMid => 3,
        HookKind.Ln2Normalized => 4,
        HookKind.MlpIn => 5,
        HookKind.MlpOut => 6,
        _ => 7,
    };

    /// <inheritdoc/>
    public override string ToString() => Name;
}
