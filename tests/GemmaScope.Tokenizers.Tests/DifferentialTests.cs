using System.Text;

namespace GemmaScope.Tokenizers.Tests;

/// <summary>Hugging Face's Rust tokenizers (Tokenizers.DotNet, native) as the oracle, where its native library loads.</summary>
internal static class RustOracle
{
    private static readonly Lazy<(global::Tokenizers.DotNet.Tokenizer? Tokenizer, string? Error)> s_oracle = new(() =>
    {
        try
        {
            var t = new global::Tokenizers.DotNet.Tokenizer(TestFixtures.JsonPath);
            _ = t.Encode("probe");
            return (t, null);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException or EntryPointNotFoundException or TypeInitializationException or PlatformNotSupportedException)
        {
            return (null, $"{e.GetType().Name}: {e.Message}");
        }
    });

    public static global::Tokenizers.DotNet.Tokenizer? Tokenizer => s_oracle.Value.Tokenizer;

    public static string? LoadError => s_oracle.Value.Error;
}

/// <summary>A fact that is reported as skipped, with the reason, when the Rust oracle's native library cannot load.</summary>
public sealed class RustOracleFactAttribute : FactAttribute
{
    public RustOracleFactAttribute()
    {
        if (RustOracle.LoadError is { } error)
        {
            Skip = $"SKIPPED: Hugging Face's Rust tokenizer (Tokenizers.DotNet native library) could not load here: {error}";
        }
    }
}

public class DifferentialTests
{
    private static readonly string[] Spliced =
    [
        "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "[@BOS@]", "<unused0>", "<unused98>",
        "<table>", "</td>", "<h1>", "\n", "\n\n", "\n\n\n\n\n", "\t\t", "\t\t\t\t", "\u2581\u2581", "<start_of_turn>user\n", "<end_of_turn>\n",
        "<", ">", "</", "<start_of_", "\r\n",
    ];

    private static readonly (int Lo, int Hi)[] Scripts =
    [
        (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0xC0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
        (0x900, 0x97F), (0xE00, 0xE7F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x300, 0x36F), (0x2000, 0x206F),
        (0x1F300, 0x1FAFF), (0x1D100, 0x1D1FF), (0x20000, 0x2A6DF), (0xE000, 0xE0FF), (0x0, 0x1F),
    ];

    internal static string RandomText(Random rng)
    {
        var sb = new StringBuilder();
        int parts = rng.Next(1, 12);
        for (int p = 0; p < parts; p++)
        {
            switch (rng.Next(6))
            {
                case 0:
                    sb.Append(Spliced[rng.Next(Spliced.Length)]);
                    break;
                case 1:
                    // Whitespace runs: spaces, tabs, newlines, and their mixtures.
                    int n = rng.Next(1, 40);
                    for (int i = 0; i < n; i++)
                    {
                        sb.Append(" \t\n \u00A0\u3000\r"[rng.Next(7)]);
                    }

                    break;
                case 2:
                    int digits = rng.Next(1, 20);
                    for (int i = 0; i < digits; i++)
                    {
                        sb.Append((char)('0' + rng.Next(10)));
                        if (rng.Next(6) == 0)
                        {
                            sb.Append(".,- e"[rng.Next(5)]);
                        }
                    }

                    break;
                case 3:
                    // Long repeats, where merge order matters most.
                    string unit = rng.Next(3) switch { 0 => "A", 1 => "ab", _ => "\u00E9" };
                    sb.Insert(sb.Length, unit, rng.Next(1, 80));
                    break;
                default:
                    var (lo, hi) = Scripts[rng.Next(Scripts.Length)];
                    int len = rng.Next(1, 16);
                    for (int i = 0; i < len; i++)
                    {
                        int cp = rng.Next(lo, hi + 1);
                        if (cp is >= 0xD800 and <= 0xDFFF)
                        {
                            continue;
                        }

                        sb.Append(char.ConvertFromUtf32(cp));
                        if (rng.Next(5) == 0)
                        {
                            sb.Append(' ');
                        }
                    }

                    break;
            }
        }

        return sb.ToString();
    }

    [RustOracleFact]
    public void Random_strings_match_huggingface_rust_tokenizer()
    {
        var oracle = RustOracle.Tokenizer!;
        var ours = TestFixtures.Json;
        var rng = new Random(20261125);
        var failures = new List<string>();
        int count = 3000;
        for (int i = 0; i < count; i++)
        {
            string text = RandomText(rng);
            int[] expected = Array.ConvertAll(oracle.Encode(text), x => (int)x);
            int[] actual = ours.EncodeToIdArray(text);
            if (!expected.AsSpan().SequenceEqual(actual))
            {
                failures.Add($"#{i} {System.Text.Json.JsonSerializer.Serialize(text)}: rust [{string.Join(',', expected)}] ours [{string.Join(',', actual)}]");
            }
            else
            {
                // U+2581 in the text decodes to a space, as with HF's decoder; everything else round-trips.
                Assert.Equal(text.Replace('\u2581', ' '), ours.Decode(actual));
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {count} differ:\n{string.Join('\n', failures.Take(10))}");
    }

    [RustOracleFact]
    public void Golden_texts_match_huggingface_rust_tokenizer()
    {
        var oracle = RustOracle.Tokenizer!;
        foreach (var (text, ids) in TestFixtures.Golden)
        {
            Assert.Equal(ids, Array.ConvertAll(oracle.Encode(text), x => (int)x));
        }
    }
}
