namespace GemmaScope.Tests.Support;

internal static class Fixtures
{
    public static string Numpy(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "numpy", name);

    public static string SampleData(string name) => Path.Combine(AppContext.BaseDirectory, "samples-data", name);

    public static Reference ReferenceFromNpz(string path)
    {
        var a = TestNpz.Read(path);
        var wEnc = a.ContainsKey("W_enc") ? a["W_enc"] : a["w_enc"];
        var wDec = a.ContainsKey("W_dec") ? a["W_dec"] : a["w_dec"];
        return new Reference
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

    /// <summary>A fresh temp folder removed at dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public TempDir() => Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gemmascope-tests", Guid.NewGuid().ToString("N")).Also(p => PathName = p));

        public string PathName { get; private set; } = "";

        public string File(string name) => Path.Combine(PathName, name);

        public void Dispose()
        {
            try
            {
                Directory.Delete(PathName, true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static T Also<T>(this T value, Action<T> a)
    {
        a(value);
        return value;
    }
}
