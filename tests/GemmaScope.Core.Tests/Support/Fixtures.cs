namespace GemmaScope.Core.Tests.Support;

internal static class Fixtures
{
    public static string Numpy(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "numpy", name);

    public static string SampleData(string name) => Path.Combine(AppContext.BaseDirectory, "samples-data", name);

    public static SaeReference ReferenceFromNpz(string path)
    {
        var a = TestNpz.Read(path);
        var wEnc = a.ContainsKey("W_enc") ? a["W_enc"] : a["w_enc"];
        var wDec = a.ContainsKey("W_dec") ? a["W_dec"] : a["w_dec"];
        return new SaeReference
        {
            DIn = wEnc.Shape[0],
            DSae = wEnc.Shape[1],
            WEnc = wEnc.Data,
            WDec = wDec.Data,
            BEnc = a["b_enc"].Data,
            BDec = a["b_dec"].Data,
            Threshold = a["threshold"].Data,
        };
    }
}
