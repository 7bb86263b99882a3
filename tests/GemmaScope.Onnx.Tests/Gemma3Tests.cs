using System.Text.Json;
using GemmaScope.Formats;
using GemmaScope.Hf;
using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>
/// GemmaModel.FromPretrained on the tiny Gemma 3 (tools/onnx-fixtures/make_tiny_gemma3.py): 7 layers, 5 sliding, 1 full,
/// 1 sliding, window 4, rope_scaling linear ×8, QK-norm. Two independent expectations: reference.npz from a float64
/// PyTorch forward, and the C# float64 reference (Gemma2Reference in GemmaScope.TestSupport) reading the same checkpoint.
/// </summary>
public class Gemma3Tests
{
    private const double Tol = 2e-5;

    private static readonly Lazy<Dictionary<string, (int[] Shape, double[] Data)>> PyTorch = new(() => TestNpz.ReadFloat64(TinyModels.Gemma3PyTorchReference));

    private static string Dir(string layout) => TinyModels.Gemma3Checkpoint(layout);

    [Theory]
    [OnEngines("text")]
    [OnEngines("multimodal")]
    public void EveryHookOfEveryLayerAndTheLogitsEqualThePyTorchReference(string layout, GemmaEngineKind engine)
    {
        var reference = PyTorch.Value;
        using var model = GemmaModel.FromPretrained(Dir(layout), EngineData.Options(engine));
        Assert.Equal(7, model.LayerCount);
        var sites = TestData.AllSites(model.LayerCount, withLn2: true).ToArray();
        Assert.Contains(HookPoint.MlpIn(5), sites);
        Assert.Contains(HookPoint.Embed, sites);
        var run = model.Run(TinyModels.Gemma3Probe(), capture: sites);
        foreach (var site in sites)
        {
            Assert.Equal(site.Name, model.TensorName(site));
            Approx.Close(run.Activations(site), reference[site.Name.Replace('.', '/')].Data, Tol, $"{layout} {site.Name}");
        }

        // every hook the PyTorch forward recorded was checked (plus ln_final, which is no hook point)
        Assert.Equal(reference.Count - 2, sites.Length);
        Approx.Close(run.Logits(), reference["logits"].Data, Tol, $"{layout} logits");
    }

    [Theory]
    [InlineData("text")]
    [InlineData("multimodal")]
    public void TheCSharpFloat64ReferenceEqualsThePyTorchOne(string layout)
    {
        // the second independent path: its own config and safetensors reading, its own forward
        var reference = PyTorch.Value;
        var cs = Gemma2Reference.FromCheckpoint(Dir(layout));
        Assert.True(cs.QkNorm);
        Assert.Equal([true, true, true, true, true, false, true], cs.Sliding);
        var output = cs.Forward(TinyModels.Gemma3Probe());
        foreach (var (name, (_, data)) in reference)
        {
            // reference.npz's "ln_final/hook_normalized" is the final norm's output with its gain (the reference's "ln_final.output")
            var mine = name == "logits" ? output.Logits : output.Hooks[name == "ln_final/hook_normalized" ? "ln_final.output" : name.Replace('/', '.')];
            Assert.Equal(data.Length, mine.Length);
            for (int i = 0; i < data.Length; i++)
            {
                Assert.True(Math.Abs(mine[i] - data[i]) <= 1e-9 * (1 + Math.Abs(data[i])), $"{name}[{i}]: {mine[i]} vs {data[i]}");
            }
        }
    }

    [Theory]
    [OnEngines]
    public void TheImageTextLayoutGivesTheSameOutputsAsTheTextOne(GemmaEngineKind engine)
    {
        using var text = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        using var mm = GemmaModel.FromPretrained(Dir("multimodal"), EngineData.Options(engine));
        TestData.AssertSameOutputs(text, mm, TokenIds.Random(12, seed: 5), [.. TestData.AllSites(7, withLn2: true)]);
    }

    [Theory]
    [OnEngines]
    public void TheNewerModelLanguageModelNamingGivesTheSameOutputs(GemmaEngineKind engine)
    {
        // transformers ≥ 4.52 saves Gemma3ForConditionalGeneration as model.language_model.* / model.vision_tower.*
        using var dir = new TempCheckpoint(Dir("multimodal"));
        TestSafeTensors.Rewrite(dir.File("model.safetensors"), t => t with
        {
            Name = t.Name.StartsWith("language_model.model.", StringComparison.Ordinal)
                ? "model.language_model." + t.Name["language_model.model.".Length..]
                : "model." + t.Name,
        });
        using var text = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        using var renamed = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        TestData.AssertSameOutputs(text, renamed, TokenIds.Random(9, seed: 66), [.. TestData.AllSites(7, withLn2: true)]);
    }

    [Theory]
    [OnEngines]
    public void ABf16CheckpointEqualsTheReferenceOnTheRoundedWeights(GemmaEngineKind engine)
    {
        // released Gemma 3 checkpoints are bf16: widened to float32 once, then the same forward
        using var dir = new TempCheckpoint(Dir("text"));
        TestSafeTensors.Rewrite(dir.File("model.safetensors"), TestSafeTensors.ToBF16);
        var reference = Gemma2Reference.FromCheckpoint(dir.Path); // reads the BF16 values
        var ids = TokenIds.Random(12, seed: 68);
        var expected = reference.Forward(ids);
        using var model = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        TestData.AssertRunMatches(model, ids, expected, [.. TestData.AllSites(7, withLn2: true)], Tol, "bf16");
        var f32 = TinyModels.Gemma3Reference.Forward(ids).Logits;
        Assert.True(f32.Zip(expected.Logits).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "the rounding must matter");
    }

    [Theory]
    [OnEngines]
    public void GenerationWithTheKvCacheEqualsRecomputingThePrefix(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        var prompt = TokenIds.Random(5, seed: 60);
        // 16 new tokens after 5: the cache crosses the window (4) on the sliding layers while layer 5 attends to all of it.
        // A high temperature makes equal sequences need equal logits at every step.
        var o = new GenerationOptions { MaxNewTokens = 16, EosId = null, Temperature = 8f, Seed = 11 };
        var site = HookPoint.MlpIn(5);
        var sae = TestSaes.Random(model.Width(site), 32, seed: 61);
        TestData.AssertCachedGenerationEqualsRecomputing(model, prompt, o, Interventions.None, new Interventions { Steer = [Steering.Feature(HookPoint.ResidPost(2), sae, 3, 10f)] });
    }

    [Theory]
    [OnEngines]
    public void GreedyGenerationWithTheCacheFollowsTheReferenceArgmax(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        var prompt = TokenIds.Random(3, seed: 62);
        var result = model.Generate(prompt, new GenerationOptions { MaxNewTokens = 10, EosId = null });
        Assert.True(result.UsedKvCache);
        Assert.Equal(TinyModels.Gemma3Reference.Greedy(prompt, 10), result.NewIds);
    }

    [Fact]
    public void StopAtLayerEqualsTheFullRunAndSkipsLaterLayersAndTheLmHead()
    {
        using var model = GemmaModel.FromPretrained(Dir("multimodal"), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var ids = TokenIds.Random(10, seed: 63);
        HookPoint[] sites = [HookPoint.MlpIn(2), HookPoint.Ln2Normalized(2), HookPoint.AttnZ(1), HookPoint.Embed];
        var full = model.Run(ids, capture: sites);
        var stopped = model.Run(ids, capture: sites, logits: false);
        foreach (var site in sites)
        {
            Assert.Equal(full.Activations(site).ToArray(), stopped.Activations(site).ToArray());
        }

        var nodes = model.CaptureGraphNodes(sites, logits: false);
        Assert.DoesNotContain(nodes, n => n.StartsWith("/lm_head/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/model/layers.3/", StringComparison.Ordinal));
        Assert.DoesNotContain(nodes, n => n.StartsWith("/model/layers.2/mlp/", StringComparison.Ordinal));
        Assert.Contains(nodes, n => n.StartsWith("/model/layers.2/", StringComparison.Ordinal));
    }

    [Theory]
    [OnEngines]
    public void SlidingWindowPatternWithoutLayerTypesGivesTheSameModel(GemmaEngineKind engine)
    {
        // older Gemma 3 configs have no layer_types: layer i is global when (i + 1) % sliding_window_pattern == 0
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => { c.Remove("layer_types"); c["sliding_window_pattern"] = 6; });
        using var a = GemmaModel.FromPretrained(Dir("text"), EngineData.Options(engine));
        using var b = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var ids = TokenIds.Random(11, seed: 64);
        Assert.Equal(a.Run(ids).Logits().ToArray(), b.Run(ids).Logits().ToArray());

        dir.EditConfig(c => c["sliding_window_pattern"] = 2); // layers 1, 3, 5 global: a different model
        using var other = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        Assert.NotEqual(a.Run(ids).Logits().ToArray(), other.Run(ids).Logits().ToArray());
    }

    [Theory]
    [OnEngines("{\"rope_type\": \"yarn\", \"factor\": 8.0}", "rope_scaling.rope_type", "\"yarn\"")]
    [OnEngines("{\"type\": \"dynamic\", \"factor\": 2.0}", "rope_scaling.rope_type", "\"dynamic\"")]
    [OnEngines("{\"rope_type\": \"linear\"}", "rope_scaling.factor", "missing")]
    public void UnsupportedRopeScalingIsRefusedNamingTheField(string scaling, string field, string actual, GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => c["rope_scaling"] = System.Text.Json.Nodes.JsonNode.Parse(scaling));
        var e = dir.Refused(EngineData.Options(engine));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
        Assert.Contains(actual, e.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void FieldsAGemma3ConfigOmitsTakeGemma3TextConfigsDefaults(GemmaEngineKind engine)
    {
        // image-text configs write only what differs from Gemma3TextConfig's defaults; the fixture's values equal these three
        using var dir = new TempCheckpoint(Dir("multimodal"));
        dir.EditConfig(c =>
        {
            var t = c["text_config"]!.AsObject();
            t.Remove("rope_theta");
            t.Remove("rope_local_base_freq");
            t.Remove("rms_norm_eps");
        });
        using var a = GemmaModel.FromPretrained(Dir("multimodal"), EngineData.Options(engine));
        using var b = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var ids = TokenIds.Random(8, seed: 67);
        Assert.Equal(a.Run(ids).Logits().ToArray(), b.Run(ids).Logits().ToArray());

        dir.EditConfig(c => c["text_config"]!.AsObject().Remove("vocab_size")); // default 262,208: disagrees with the weights
        var e = dir.Refused(EngineData.Options(engine));
        Assert.Contains("model.embed_tokens.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("262208", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines("use_bidirectional_attention")] // EmbeddingGemma
    [OnEngines("attention_bias")]
    public void OtherGemma3ForwardsAreRefusedNamingTheField(string field, GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => c[field] = true);
        var e = dir.Refused(EngineData.Options(engine));
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void AnImageTextConfigWithoutTextConfigIsRefused(GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("multimodal"));
        dir.EditConfig(c => c.Remove("text_config"));
        var e = dir.Refused(EngineData.Options(engine));
        Assert.Contains("text_config", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void AMissingQkNormTensorIsNamed(GemmaEngineKind engine)
    {
        // the text weights of the image-text layout are read under language_model.model.*; q_norm is required for Gemma 3
        using var dir = new TempCheckpoint(Dir("text"));
        dir.EditConfig(c => c["model_type"] = "gemma3_text");
        File.Copy(Path.Combine(TinyModels.Gemma2Checkpoint("single"), "model.safetensors"), dir.File("model.safetensors"), overwrite: true);
        dir.EditConfig(c =>
        {
            // the tiny Gemma 2 weights with a Gemma 3 config of the same sizes: everything but q_norm/k_norm is present
            using var g2 = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyModels.Gemma2Checkpoint("single"), "config.json")));
            foreach (var key in new[] { "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim" })
            {
                c[key] = g2.RootElement.GetProperty(key).GetInt32();
            }

            c.Remove("layer_types");
        });
        var e = dir.Refused(EngineData.Options(engine));
        Assert.Contains("model.layers.0.self_attn.q_norm.weight", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [OnEngines]
    public void Gemma3sTokenizerJsonBesideTheCheckpointIsPickedUp(GemmaEngineKind engine)
    {
        using var dir = new TempCheckpoint(Dir("text"));
        File.Delete(dir.File("tokenizer.model"));
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(TinyModels.Fixtures, "gemma3-tokenizer", "tokenizer.json.gz")), System.IO.Compression.CompressionMode.Decompress))
        using (var f = File.Create(dir.File("tokenizer.json")))
        {
            gz.CopyTo(f);
        }

        File.WriteAllText(dir.File("tokenizer_config.json"), "{\"add_bos_token\": false}");
        using var model = GemmaModel.FromPretrained(dir.Path, EngineData.Options(engine));
        var tokenizer = Assert.IsType<GemmaScope.Tokenizers.GemmaTokenizer>(model.Tokenizer);
        Assert.Contains("tokenizer.json", tokenizer.ToString(), StringComparison.Ordinal);
        Assert.False(tokenizer.IsSentencePieceModel);
        Assert.Equal(262_145, tokenizer.VocabularySize); // Gemma 3: 262,144 pieces + <image_soft_token>, not the tiny tokenizer.model
        Assert.False(tokenizer.AddsBeginningOfSentence); // tokenizer_config.json's add_bos_token: false applied
    }

    [Theory]
    [InlineData("torch")]
    [InlineData("built")]
    public void HookEmbedIsTheFirstBlocksInputOnExportsAndBuiltGraphs(string kind)
    {
        using var model = kind == "torch" ? GemmaModel.Load(TestData.ModelPath("torch")) : GemmaModel.FromPretrained(Dir("text"), EngineData.Options(GemmaEngineKind.OnnxRuntime));
        var run = model.Run(TokenIds.Random(6, seed: 65), capture: [HookPoint.Embed, HookPoint.ResidPre(0), HookPoint.ResidPre(1)]);
        Assert.Equal(run.Activations(HookPoint.ResidPre(0)).ToArray(), run.Activations(HookPoint.Embed).ToArray());
        Assert.NotEqual(run.Activations(HookPoint.ResidPre(1)).ToArray(), run.Activations(HookPoint.Embed).ToArray());
    }

    [Fact]
    public void EveryHookNameTheCatalogUsesParses()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int count = 0;
        foreach (var release in GemmaScopeCatalog.Releases)
        {
            foreach (var sae in release.Saes)
            {
                foreach (var name in new[] { sae.HookName, sae.OutputHookName })
                {
                    if (name is null)
                    {
                        continue;
                    }

                    var point = HookPoint.Parse(name);
                    Assert.Equal(name, point.Name);
                    Assert.Equal(sae.Layer ?? 0, point.Layer);
                    seen.Add(point.Kind.ToString());
                    count++;
                }
            }
        }

        Assert.True(count > 2000, $"{count} hook names");
        Assert.Superset(new HashSet<string> { "ResidPost", "MlpOut", "AttnZ", "Embed" }, seen);
    }
}
