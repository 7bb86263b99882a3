using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using GemmaScope.Core.Tests.Support;

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

    /// <summary>The five tensors as a safetensors header (offsets optionally disturbed by <paramref name="gapAfter"/> bytes after b_enc) and data.</summary>
    public static (string Header, byte[] Data) SafeTensorsParts(int gapAfterBEnc = 0, string metadata = "{\"format\":\"pt\"}")
    {
        var parts = new (string Name, float[] Values, int[] Shape)[]
        {
            ("w_enc", WEnc, [DIn, DSae]), ("w_dec", WDec, [DSae, DIn]), ("b_enc", BEnc, [DSae]), ("b_dec", BDec, [DIn]), ("threshold", Threshold, [DSae]),
        };
        var sb = new StringBuilder("{\"__metadata__\":" + metadata);
        var data = new MemoryStream();
        foreach (var (name, values, shape) in parts)
        {
            long begin = data.Length;
            data.Write(TestNpz.F32(values));
            sb.Append($",\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{begin},{data.Length}]}}");
            if (name == "b_enc" && gapAfterBEnc > 0)
            {
                data.Write(new byte[gapAfterBEnc]);
            }
        }

        return (sb.Append('}').ToString(), data.ToArray());
    }

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
