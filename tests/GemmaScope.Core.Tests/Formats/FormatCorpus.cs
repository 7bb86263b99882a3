namespace GemmaScope.Core.Tests.Formats;

/// <summary>
/// Builds the malformed and tricky weight files of issue 13 in code: each case is a valid small SAE with one defect.
/// The zip and safetensors writers are GemmaScope.TestSupport's (independent of the library's readers; every zip field is
/// explicit, so that a case can lie in exactly one place).
/// </summary>
internal static class FormatCorpus
{
    public const int DIn = 5, DSae = 7;

    public static float[] Seq(int n, float start) => [.. Enumerable.Range(0, n).Select(i => start + (i * 0.01f))];

    public static readonly float[] WEnc = Seq(DIn * DSae, 0.1f), WDec = Seq(DSae * DIn, -0.2f), BEnc = Seq(DSae, 0.3f), BDec = Seq(DIn, 0.4f), Threshold = Seq(DSae, 0.05f);

    public static List<(string Name, byte[] Data)> Members() =>
    [
        ("W_enc.npy", TestNpz.Npy(WEnc, [DIn, DSae])),
        ("W_dec.npy", TestNpz.Npy(WDec, [DSae, DIn])),
        ("b_enc.npy", TestNpz.Npy(BEnc, [DSae])),
        ("b_dec.npy", TestNpz.Npy(BDec, [DIn])),
        ("threshold.npy", TestNpz.Npy(Threshold, [DSae])),
    ];

    /// <summary>The five tensors by their Gemma Scope 2 (lowercase) names, in the order the files hold them.</summary>
    public static (string Name, int[] Shape, float[] Data)[] Tensors() =>
        [("w_enc", [DIn, DSae], WEnc), ("w_dec", [DSae, DIn], WDec), ("b_enc", [DSae], BEnc), ("b_dec", [DIn], BDec), ("threshold", [DSae], Threshold)];

    /// <summary>The <c>__metadata__</c> of the valid safetensors file.</summary>
    public static readonly IReadOnlyDictionary<string, string> Pt = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>The valid safetensors file (<c>__metadata__</c> <see cref="Pt"/> unless given) as header text and data, for a case to edit.</summary>
    public static (string Header, byte[] Data) SafeTensorsParts(IReadOnlyDictionary<string, string>? metadata = null) =>
        TestSafeTensors.Parts(TestSafeTensors.F32(Tensors(), metadata ?? Pt));

    /// <summary>Reads every weight of a loaded SAE and says whether it equals the originals bit for bit.</summary>
    public static unsafe bool HoldsOriginals(JumpReLUSae sae)
    {
        var w = sae.Weights;
        return w.DIn == DIn && w.DSae == DSae
            && new ReadOnlySpan<float>(w.WEnc, WEnc.Length).SequenceEqual(WEnc)
            && new ReadOnlySpan<float>(w.WDec, WDec.Length).SequenceEqual(WDec)
            && new ReadOnlySpan<float>(w.BEnc, BEnc.Length).SequenceEqual(BEnc)
            && new ReadOnlySpan<float>(w.BDec, BDec.Length).SequenceEqual(BDec)
            && new ReadOnlySpan<float>(w.Threshold, Threshold.Length).SequenceEqual(Threshold);
    }
}
