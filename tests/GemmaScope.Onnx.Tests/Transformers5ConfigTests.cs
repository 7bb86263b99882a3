using System.Text.Json.Nodes;
using GemmaScope.Formats;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// config.json as transformers 5 writes it (tools/onnx-fixtures/make_transformers5_configs.py: RoPE only in rope_parameters,
/// dtype, layer_types, _sliding_window_pattern, use_bidirectional_attention) next to the same weights as the 4.x fixtures.
/// Expectations come from the PyTorch reference.npz (written from the 4.x config) and from the C# float64 reference,
/// which reads both spellings with its own parser; the non-default RoPE must move that reference.
/// </summary>
public class Transformers5ConfigTests
{
    private const double Tol = 2e-5;

    private static string Fixture(params string[] parts) => Path.Combine([TinyModels.Fixtures, .. parts]);

    // The weights of `weights` with the config.json of `config` (a folder under Fixtures/transformers5).
    private static TempCheckpoint With(string weights, string config)
    {
        var dir = new TempCheckpoint(weights);
        File.Copy(Fixture("transformers5", config, "config.json"), dir.File("config.json"), overwrite: true);
        return dir;
    }

    [Theory]
    [InlineData("text")]
    [InlineData("multimodal")]
    public void Gemma3InTheTransformers5SpellingEqualsThePyTorchReference(string layout)
    {
        // the PyTorch forward used linear ×8 on the full-attention layer: reading only the 4.x fields loses it
        var reference = TestNpz.ReadFloat64(TinyModels.Gemma3PyTorchReference);
        using var dir = With(TinyModels.Gemma3Checkpoint(layout), "gemma3-" + layout);
        using var model = GemmaModel.FromPretrained(dir.Path);
        var sites = TestData.AllSites(model.LayerCount, withLn2: true).ToArray();
        var run = model.Run(TinyModels.Gemma3Probe(), capture: sites);
        foreach (var site in sites)
        {
            Approx.Close(run.Activations(site), reference[site.Name.Replace('.', '/')].Data, Tol, $"5.x {layout} {site.Name}");
        }

        Approx.Close(run.Logits(), reference["logits"].Data, Tol, $"5.x {layout} logits");
    }

    public static TheoryData<string, string, string> BothSpellings => new()
    {
        { "tiny-gemma2-hf/single", "gemma2-theta500-v4", "gemma2-theta500-v5" },
        { "tiny-gemma3/text", "", "gemma3-text" },
    };

    [Theory]
    [MemberData(nameof(BothSpellings))]
    public void BothSpellingsGiveTheSameReferenceTheModelFollowsItAndTheNonDefaultRopeMovesIt(string weights, string v4, string v5)
    {
        string src = Fixture(weights.Split('/'));
        using var old = v4.Length == 0 ? new TempCheckpoint(src) : With(src, v4);
        using var now = With(src, v5);
        var ids = TokenIds.Random(24, seed: 520); // past the window of 4, so local and global layers both matter
        var r4 = Gemma2Reference.FromCheckpoint(old.Path).Forward(ids);
        var r5 = Gemma2Reference.FromCheckpoint(now.Path).Forward(ids);
        Assert.Equal(r4.Logits, r5.Logits);

        // the non-default RoPE moves the reference: Gemma 2 with theta 500 vs 10000, Gemma 3 without its linear ×8
        using var plain = new TempCheckpoint(src);
        plain.EditConfig(c =>
        {
            c.Remove("rope_scaling");
            c["rope_theta"] = weights.Contains("gemma3", StringComparison.Ordinal) ? 1_000_000.0 : 10_000.0;
        });
        var rd = Gemma2Reference.FromCheckpoint(plain.Path).Forward(ids);
        double scale = r5.Logits.Max(Math.Abs), moved = r5.Logits.Zip(rd.Logits, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(moved > 1e-3 * scale, $"the non-default RoPE moved the logits by only {moved} (scale {scale})");

        foreach (var (dir, expected, what) in new[] { (old.Path, r4, "4.x"), (now.Path, r5, "5.x") })
        {
            using var model = GemmaModel.FromPretrained(dir);
            var run = model.Run(ids, capture: [HookPoint.ResidPost(model.LayerCount - 1)]);
            Approx.Close(run.Logits(), expected.Logits, Tol, $"{weights} {what} logits");
            Approx.Close(run.Activations(HookPoint.ResidPost(model.LayerCount - 1)), expected.Hooks[HookPoint.ResidPost(model.LayerCount - 1).Name], Tol, $"{weights} {what} resid_post");
        }
    }

    private static CheckpointFormatException Refused(string weights, string config, Action<JsonObject> edit)
    {
        using var dir = config.Length == 0 ? new TempCheckpoint(Fixture(weights.Split('/'))) : With(Fixture(weights.Split('/')), config);
        dir.EditConfig(edit);
        return dir.Refused();
    }

    [Fact]
    public void A4xAnd5xRopeThetaThatDisagreeAreRefusedNamingBothValues()
    {
        var e = Refused("tiny-gemma2-hf/single", "gemma2-theta500-v5", c => c["rope_theta"] = 10000.0);
        Assert.Contains("rope_theta = 10000", e.Message, StringComparison.Ordinal);
        Assert.Contains("rope_parameters.rope_theta = 500", e.Message, StringComparison.Ordinal);

        var g3 = Refused("tiny-gemma3/text", "gemma3-text", c => c["rope_local_base_freq"] = 20000.0);
        Assert.Contains("20000", g3.Message, StringComparison.Ordinal);
        Assert.Contains("rope_parameters.sliding_attention.rope_theta = 10000", g3.Message, StringComparison.Ordinal);

        // 4.x rope_scaling says linear ×8, the 5.x dict says default: which one is unknown
        var sc = Refused("tiny-gemma3/text", "gemma3-text", c =>
        {
            c["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 };
            c["rope_parameters"]!["full_attention"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 1_000_000.0 };
        });
        Assert.Contains("rope_scaling = 8", sc.Message, StringComparison.Ordinal);
        Assert.Contains("= 1", sc.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("yarn")]
    [InlineData("dynamic")]
    [InlineData("llama3")]
    [InlineData("longrope")]
    [InlineData("proportional")]
    public void AnUnknownRopeTypeInRopeParametersIsRefusedNeverIgnored(string type)
    {
        var g2 = Refused("tiny-gemma2-hf/single", "gemma2", c => c["rope_parameters"] = new JsonObject { ["rope_type"] = type, ["factor"] = 4.0, ["rope_theta"] = 10000.0 });
        Assert.Equal("rope_parameters.rope_type", g2.Field);
        Assert.StartsWith($"{g2.FilePath}, field 'rope_parameters.rope_type': ", g2.Message, StringComparison.Ordinal);
        Assert.EndsWith("config.json", g2.FilePath, StringComparison.Ordinal);
        Assert.Contains($"\"{type}\"", g2.Message, StringComparison.Ordinal);

        var g3 = Refused("tiny-gemma3/text", "gemma3-text", c => c["rope_parameters"]!["sliding_attention"] = new JsonObject { ["rope_type"] = type, ["factor"] = 4.0, ["rope_theta"] = 10000.0 });
        Assert.Equal("rope_parameters.sliding_attention.rope_type", g3.Field);

        var legacy = Refused("tiny-gemma3/text", "", c => c["rope_scaling"] = new JsonObject { ["rope_type"] = type, ["factor"] = 4.0 });
        Assert.Equal("rope_scaling.rope_type", legacy.Field);
    }

    [Fact]
    public void OtherTransformers5FieldsAreReadOrRefusedWithTheirNames()
    {
        Assert.Equal("torch_dtype / dtype", Refused("tiny-gemma2-hf/single", "gemma2", c => c["torch_dtype"] = "bfloat16").Field);
        Assert.Equal("layer_types / _sliding_window_pattern", Refused("tiny-gemma3/text", "gemma3-text", c => c["_sliding_window_pattern"] = 4).Field);
        Assert.Equal("sliding_window_pattern / _sliding_window_pattern", Refused("tiny-gemma3/text", "gemma3-text", c => c["sliding_window_pattern"] = 5).Field);
        Assert.Equal("use_bidirectional_attention", Refused("tiny-gemma3/text", "gemma3-text", c => c["use_bidirectional_attention"] = true).Field);
        Assert.Equal("use_bidirectional_attention", Refused("tiny-gemma2-hf/single", "gemma2", c => c["use_bidirectional_attention"] = true).Field);
        Assert.Equal("rope_parameters", Refused("tiny-gemma3/text", "gemma3-text", c => c["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 1e6 }).Field);
        Assert.Equal("rope_parameters", Refused("tiny-gemma2-hf/single", "gemma2", c => c["rope_parameters"] = new JsonObject { ["full_attention"] = new JsonObject { ["rope_type"] = "default" } }).Field);
        Assert.Equal("rope_parameters.full_attention.partial_rotary_factor",
            Refused("tiny-gemma3/text", "gemma3-text", c => c["rope_parameters"]!["full_attention"]!["partial_rotary_factor"] = 0.5).Field);
        Assert.Equal("quantization_config", Refused("tiny-gemma2-hf/single", "gemma2", c => c["quantization_config"] = new JsonObject { ["quant_method"] = "bitsandbytes" }).Field);
    }

    [Fact]
    public void AGemma2ConfigWithoutSoftCapsGetsGemma2ConfigsDefaultsNotNone()
    {
        // Gemma2Config defaults attn_logit_softcapping 50 and final_logit_softcapping 30: a file that omits them has caps
        using var dir = new TempCheckpoint(Fixture("tiny-gemma2-hf", "single"));
        dir.EditConfig(c =>
        {
            c.Remove("attn_logit_softcapping");
            c.Remove("final_logit_softcapping");
        });
        using var a = GemmaModel.FromPretrained(Fixture("tiny-gemma2-hf", "single"));
        using var b = GemmaModel.FromPretrained(dir.Path);
        var ids = TokenIds.Random(11, seed: 522);
        Assert.Equal(a.Run(ids).Logits().ToArray(), b.Run(ids).Logits().ToArray());
    }
}
