using System.Text.Json;

namespace GemmaScope.TestSupport;

/// <summary>
/// The tiny Gemma fixtures as the test projects lay them out under their output folder's <c>Fixtures/</c> (committed under
/// tests/GemmaScope.Onnx.Tests/Fixtures and linked by the other projects), and their float64 references.
/// </summary>
public static class TinyModels
{
    private static readonly Lazy<Gemma2Reference> LazyF32 = new(() => new Gemma2Reference(Gemma2Weights));
    private static readonly Lazy<Gemma2Reference> LazyBf16 = new(() => new Gemma2Reference(Gemma2Weights, roundToBFloat16: true));
    private static readonly Lazy<Gemma2Reference> LazyGemma3 = new(() => Gemma2Reference.FromCheckpoint(Gemma3Checkpoint("text")));

    /// <summary>The output folder's <c>Fixtures</c>.</summary>
    public static string Fixtures => Path.Combine(AppContext.BaseDirectory, "Fixtures");

    /// <summary>The tiny Gemma 2's weights.npz and config.json (the values every checkpoint layout holds).</summary>
    public static string Gemma2Weights => Path.Combine(Fixtures, "tiny-gemma2");

    /// <summary>The tiny Gemma 2 (4 layers, d 48, window 4) in Hugging Face layout: <c>single</c>, <c>sharded</c> or <c>bf16</c>.</summary>
    public static string Gemma2Checkpoint(string layout) => Path.Combine(Fixtures, "tiny-gemma2-hf", layout);

    /// <summary>The tiny Gemma 3 (7 layers, QK-norm, window 4, linear RoPE ×8 on the global layer): <c>text</c> or <c>multimodal</c>.</summary>
    public static string Gemma3Checkpoint(string layout) => Path.Combine(Fixtures, "tiny-gemma3", layout);

    /// <summary>The float64 reference on the tiny Gemma 2's float32 weights.</summary>
    public static Gemma2Reference Gemma2Reference => LazyF32.Value;

    /// <summary>The float64 reference on the tiny Gemma 2's weights rounded to bfloat16.</summary>
    public static Gemma2Reference Gemma2Bf16Reference => LazyBf16.Value;

    /// <summary>The float64 reference on the tiny Gemma 3's checkpoint (its text layout; the image-text one holds the same values).</summary>
    public static Gemma2Reference Gemma3Reference => LazyGemma3.Value;

    /// <summary>The ids of the tiny Gemma 3's probe (probe.json), the sequence its PyTorch reference was recorded on.</summary>
    public static int[] Gemma3Probe()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "tiny-gemma3", "probe.json")));
        return [.. doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())];
    }

    /// <summary>
    /// The tiny Gemma 3's float64 PyTorch forward on <see cref="Gemma3Probe"/> (reference.npz): every hook it recorded as
    /// <c>blocks/0/hook_resid_pre</c> and so on, <c>ln_final/hook_normalized</c> (the final norm with its gain) and <c>logits</c>.
    /// </summary>
    public static string Gemma3PyTorchReference => Path.Combine(Fixtures, "tiny-gemma3", "reference.npz");
}
