using System.Text.Json;
using GemmaScope.Onnx;
using GemmaScope.Tokenizers;

namespace GemmaScope.Cli.Tests;

/// <summary>Each command of the installed tool on fixtures; servers for the hub and Neuronpedia run on 127.0.0.1.</summary>
[Collection("tool")]
public sealed class CliTests(InstalledTool tool) : IDisposable
{
    private const string NpId = "gemma-2-2b/20-gemmascope-res-16k";
    private readonly string _home = Directory.CreateTempSubdirectory("gemmascope-cli-home-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public void List_filters_the_catalog_as_json_and_table()
    {
        var r = tool.Run(_home, null, "list", "--release", "gemma-scope-2b-pt-res", "--layer", "20", "--width", "16k", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var rows = JsonDocument.Parse(r.Stdout).RootElement.EnumerateArray().ToList();
        Assert.NotEmpty(rows);
        foreach (var row in rows)
        {
            Assert.Equal(20, row.GetProperty("layer").GetInt32());
            Assert.Equal("16k", row.GetProperty("width").GetString());
            Assert.Equal(16384, row.GetProperty("featureCount").GetInt32());
            Assert.Equal(2304, row.GetProperty("inputSize").GetInt32());
            Assert.Equal("blocks.20.hook_resid_post", row.GetProperty("hookName").GetString());
            Assert.Equal("google/gemma-scope-2b-pt-res", row.GetProperty("repoId").GetString());
        }

        var l071 = Assert.Single(rows, x => x.GetProperty("id").GetString() == "layer_20/width_16k/average_l0_71");
        Assert.Equal(NpId, l071.GetProperty("neuronpediaId").GetString());

        var att = tool.Run(_home, null, "list", "--release", "gemma-scope-9b-pt-att", "--site", "att", "--layer", "3");
        Assert.True(att.ExitCode == 0, att.ToString());
        Assert.StartsWith("RELEASE/ID", att.Stdout, StringComparison.Ordinal);
        Assert.Contains("gemma-scope-9b-pt-att/layer_3/width_16k/average_l0_", att.Stdout, StringComparison.Ordinal);
        Assert.Contains("blocks.3.attn.hook_z", att.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("layer_4/", att.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Usage_errors_exit_2_and_failures_exit_1()
    {
        ToolAssert.Fails(tool.Run(_home, null, "list", "--site", "bogus"), 2, "'bogus'");
        ToolAssert.Fails(tool.Run(_home, null), 2);
        ToolAssert.Fails(tool.Run(_home, null, "features", "hello"), 2); // --model and --sae are required
        ToolAssert.Fails(tool.Run(_home, null, "frobnicate"), 2);

        ToolAssert.Fails(tool.Run(_home, null, "list", "--release", "gemma-scope-2b-pt-rez"), 1, "gemma-scope-2b-pt-res");
        Assert.Equal(0, tool.Run(_home, null, "--version").ExitCode);
    }

    [Fact]
    public async Task Download_shows_progress_resumes_a_cut_connection_and_then_uses_the_cache()
    {
        await using var hub = await FakeHub.StartAsync();
        var content = new byte[3_000_000];
        new Random(7).NextBytes(content);
        hub.AddFile("google/gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71/params.npz", content);
        hub.CutAfterBytes = 1_000_000;
        hub.CutTimes = 1;
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Endpoint };
        var r = tool.Run(_home, env, "download", "gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71");
        Assert.True(r.ExitCode == 0, r.ToString());
        var path = r.Stdout.Trim();
        Assert.StartsWith(Path.Combine(_home, "hub", "models--google--gemma-scope-2b-pt-res", "snapshots"), path, StringComparison.Ordinal);
        Assert.Equal(content, File.ReadAllBytes(path));

        // Progress is shown (stderr is not a terminal: a line per quarter) from the start to the end. Rate and time left depend
        // on how busy the machine is, so only their form is checked, never their values or units.
        var progress = r.Stderr.Split('\n').Select(l => l.TrimEnd()).Where(l => l.Contains("% ", StringComparison.Ordinal)).ToList();
        Assert.True(progress.Count >= 2, r.ToString());
        Assert.DoesNotContain("100.0%", progress[0], StringComparison.Ordinal);
        Assert.Contains("100.0%  3.0 MB / 3.0 MB", progress[^1], StringComparison.Ordinal);
        Assert.All(progress, l => Assert.Matches(@"\d(\.\d [KMGT]| )B/s  (\d+:)?\d\d:\d\d left$", l));

        // The cut connection was resumed from the bytes kept (a Range request from after the first byte), not started over.
        Assert.Contains(hub.Requests, q => q.Range.StartsWith("bytes=", StringComparison.Ordinal) && q.Range.EndsWith('-')
            && long.Parse(q.Range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture) is > 0 and <= 1_000_000);

        var before = hub.Requests.Count(q => q.Path.StartsWith("/cdn/", StringComparison.Ordinal));
        var again = tool.Run(_home, env, "download", "gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(path, again.Stdout.Trim());
        Assert.Contains("already in the cache", again.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, hub.Requests.Count(q => q.Path.StartsWith("/cdn/", StringComparison.Ordinal)));

        var offline = tool.Run(_home, new Dictionary<string, string> { ["HF_HUB_OFFLINE"] = "1" }, "download", "gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_22");
        Assert.Equal(4, offline.ExitCode); // ExitCodes.Service
        Assert.Contains("gemmascope: hub: Offline", offline.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Info_describes_npz_and_safetensors()
    {
        var r = tool.Run(_home, null, "info", tool.TinySae, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.StartsWith("npz", o.GetProperty("format").GetString(), StringComparison.Ordinal);
        var tensors = o.GetProperty("tensors").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => t);
        Assert.Equal(["W_dec", "W_enc", "b_dec", "b_enc", "threshold"], tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([48, 128], tensors["W_enc"].GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([128, 48], tensors["W_dec"].GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.All(tensors.Values, t => Assert.Equal("float32", t.GetProperty("dtype").GetString()));
        Assert.Equal(new FileInfo(tool.TinySae).Length, o.GetProperty("fileBytes").GetInt64());
        Assert.Equal((2L * 48 * 128 + 2 * 128 + 48) * 4, o.GetProperty("memoryBytes").GetInt64());

        var text = tool.Run(_home, null, "info", Path.GetDirectoryName(tool.TinySae)!);
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Contains("d_in 48, d_sae 128", text.Stdout, StringComparison.Ordinal);

        ToolAssert.Fails(tool.Run(_home, null, "info", Path.Combine(_home, "nope.npz")), 1, "nope.npz");
    }

    [Fact]
    public void Convert_writes_saelens_safetensors_and_cfg_with_the_same_weights()
    {
        var output = Path.Combine(_home, "converted");
        var r = tool.Run(_home, null, "convert", tool.TinySae, output, "--hook", "blocks.2.hook_resid_post", "--model-name", "tiny-gemma2");
        Assert.True(r.ExitCode == 0, r.ToString());
        var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "cfg.json"))).RootElement;
        Assert.Equal("blocks.2.hook_resid_post", cfg.GetProperty("hook_name").GetString());
        Assert.Equal(48, cfg.GetProperty("d_in").GetInt32());
        Assert.Equal(128, cfg.GetProperty("d_sae").GetInt32());

        // Read both files with no GemmaScope code: the safetensors tensors equal the npy members, bit for bit and in C order.
        var st = TestSafeTensors.Read(Path.Combine(output, "sae_weights.safetensors"));
        var npz = TestNpz.Read(tool.TinySae);
        foreach (var name in new[] { "W_enc", "W_dec", "b_enc", "b_dec", "threshold" })
        {
            Assert.Equal("F32", st[name].DType);
            Assert.Equal("<f4", npz[name].Descr);
            Assert.Equal(npz[name].Shape.Select(d => (long)d), st[name].Shape);
            Assert.Equal(npz[name].Data.Select(v => BitConverter.SingleToInt32Bits((float)v)), st[name].F32.Select(BitConverter.SingleToInt32Bits));
        }

        ToolAssert.Fails(tool.Run(_home, null, "convert", tool.TinySae, output), 1, "--force");
        ToolAssert.Fails(tool.Run(_home, null, "convert", tool.TinySae, output, "--force", "--hook", "blocks.x"), 2);
    }

    [Fact]
    public async Task Features_lists_top_features_with_descriptions_as_json_table_and_html()
    {
        await using var np = await FakeNeuronpedia.StartAsync();
        for (var f = 0; f < 128; f++)
        {
            np.Features[$"tiny/2-res/{f}"] = $$"""{"index":"{{f}}","explanations":[{"description":"about {{f}}","typeName":"t","explanationModelName":"m"}]}""";
        }

        var env = new Dictionary<string, string> { ["NEURONPEDIA_ENDPOINT"] = np.Endpoint };
        const string text = "The cat sat on the mat.";
        var html = Path.Combine(_home, "features.html");
        var r = tool.Run(_home, env, "features", "--model", tool.TinyModel, "--sae", tool.TinySae, "--hook", "blocks.2.hook_resid_post",
            "--neuronpedia", "tiny/2-res", "--top", "3", "--json", "--html", html, text);
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        var tokens = o.GetProperty("tokens").EnumerateArray().ToList();

        // Reference: the library, called directly.
        var tokenizer = GemmaTokenizer.Load(tool.TinyTokenizer);
        using var model = GemmaModel.Load(tool.TinyModel, tokenizer);
        using var sae = JumpReLUSae.Load(tool.TinySae);
        var site = HookPoint.ResidPost(2);
        var run = model.Run(text, capture: [site]);
        var batch = sae.EncodeSparse(run.Activations(site));
        Assert.Equal(run.TokenCount(), tokens.Count);
        Assert.True(tokens[0].GetProperty("bos").GetBoolean());
        Assert.Equal("<bos>", tokens[0].GetProperty("token").GetString());
        Assert.Empty(tokens[0].GetProperty("features").EnumerateArray());
        for (var t = 1; t < tokens.Count; t++)
        {
            Assert.Equal(run.Tokens()![t], tokens[t].GetProperty("token").GetString());
            Assert.Equal(batch.L0(t), tokens[t].GetProperty("l0").GetInt32());
            var expected = batch[t].TopK(3);
            var got = tokens[t].GetProperty("features").EnumerateArray().ToList();
            Assert.Equal(expected.Select(p => p.Feature), got.Select(g => g.GetProperty("feature").GetInt32()));
            Assert.Equal(expected.Select(p => p.Value), got.Select(g => g.GetProperty("value").GetSingle()));
            Assert.All(got, g => Assert.Equal($"about {g.GetProperty("feature").GetInt32()}", g.GetProperty("description").GetString()));
            var err = tokens[t].GetProperty("relativeError").GetDouble();
            Assert.InRange(err, 1e-6, 2);
        }

        var page = File.ReadAllText(html);
        Assert.StartsWith("<!doctype html>", page, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("about ", page, StringComparison.Ordinal);
        Assert.Contains("neuronpedia.org/tiny/2-res/", page, StringComparison.Ordinal);

        var table = tool.Run(_home, env, "features", "-m", tool.TinyModel, "--sae", tool.TinySae, "--hook", "blocks.2.hook_resid_post",
            "--neuronpedia", "tiny/2-res", text);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("<bos>", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("' cat'", table.Stdout, StringComparison.Ordinal);
        Assert.Contains($"#{batch[2].TopK(1)[0].Feature} ", table.Stdout, StringComparison.Ordinal);
        Assert.Contains($"about {batch[2].TopK(1)[0].Feature}", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("mean L0 (without BOS)", table.Stdout, StringComparison.Ordinal);

        ToolAssert.Fails(tool.Run(_home, env, "features", "-m", tool.TinyModel, "--sae", tool.TinySae, text), 2, "--hook");
        ToolAssert.Fails(
            tool.Run(_home, env, "features", "-m", tool.TinyModel, "--sae", tool.TinySae, "--hook", "blocks.2.attn.hook_z", "--no-descriptions", text),
            1,
            "reads 48 values per token but blocks.2.attn.hook_z",
            "has 64");
        ToolAssert.Fails(tool.Run(_home, env, "features", "-m", tool.TinyModel, "--sae", "gemma-scope-2b-pt-res/layer_99/width_16k/average_l0_1", text), 1, "layer_99");
    }

    [Fact]
    public void Features_reads_a_checkpoint_folder()
    {
        var hf = Path.Combine(tool.RepoRoot, "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2-hf");
        var local = tool.Run(_home, null, "features", "--model", Path.Combine(hf, "single"), "--sae", tool.TinySae, "--hook", "blocks.2.hook_resid_post", "--json", "The cat");
        Assert.True(local.ExitCode == 0, local.ToString());
        var tokens = JsonDocument.Parse(local.Stdout).RootElement.GetProperty("tokens").EnumerateArray().ToList();
        Assert.Equal(["<bos>", "The", " cat"], tokens.Select(t => t.GetProperty("token").GetString()));

        // A broken checkpoint is a bad input file (exit 3), reported as a checkpoint, not as an SAE, without a stack trace.
        var broken = Path.Combine(_home, "broken-checkpoint");
        Directory.CreateDirectory(broken);
        foreach (var file in Directory.GetFiles(Path.Combine(hf, "single")))
        {
            File.Copy(file, Path.Combine(broken, Path.GetFileName(file)));
        }

        var config = Path.Combine(broken, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"gemma2\"", "\"llama\"", StringComparison.Ordinal));
        var bad = tool.Run(_home, null, "features", "--model", broken, "--sae", tool.TinySae, "--hook", "blocks.2.hook_resid_post", "The cat");
        ToolAssert.Fails(bad, 3, "gemmascope: invalid model checkpoint: ", "\"llama\"");
    }

    [Fact]
    public async Task Features_downloads_a_hub_checkpoint_and_runs_it()
    {
        var hf = Path.Combine(tool.RepoRoot, "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2-hf");
        await using var hub = await FakeHub.StartAsync();
        foreach (var file in Directory.GetFiles(Path.Combine(hf, "sharded")))
        {
            var name = Path.GetFileName(file);
            hub.AddFile("google/tiny-gemma2", name, File.ReadAllBytes(file), lfs: name.EndsWith(".safetensors", StringComparison.Ordinal) || name == "tokenizer.model");
        }

        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = hub.Endpoint };
        var remote = tool.Run(_home, env, "features", "--model", "google/tiny-gemma2", "--sae", tool.TinySae, "--hook", "blocks.2.hook_resid_post", "--json", "The cat");
        Assert.True(remote.ExitCode == 0, remote.ToString());
        var snapshot = Path.Combine(_home, "hub", "models--google--tiny-gemma2", "snapshots", FakeHub.CommitOf("google/tiny-gemma2"));
        Assert.True(File.Exists(Path.Combine(snapshot, "model-00003-of-00003.safetensors")));
        Assert.True(File.Exists(Path.Combine(snapshot, "tokenizer.model")));
        Assert.Equal(3, JsonDocument.Parse(remote.Stdout).RootElement.GetProperty("tokens").GetArrayLength());

        var missing = tool.Run(_home, env, "features", "--model", "google/nothing-here", "--sae", tool.TinySae, "--hook", "blocks.2.hook_resid_post", "x");
        ToolAssert.Fails(missing, 4, "google/nothing-here"); // the hub answered 404: ExitCodes.Service
    }

    [Fact]
    public async Task Explain_prints_descriptions_from_the_api_or_the_export()
    {
        await using var np = await FakeNeuronpedia.StartAsync();
        np.Features[$"{NpId}/5"] = """{"index":"5","explanations":[{"description":"the Eiffel Tower","typeName":"oai_token-act-pair","explanationModelName":"gpt-4o-mini"}]}""";
        np.Features[$"{NpId}/9"] = """{"index":"9","explanations":[]}""";
        np.Files["v1/gemma-2-2b/20-gemmascope-res-16k/explanations/batch-0.jsonl.gz"] =
            FakeNeuronpedia.Gzip(FakeNeuronpedia.Record("gemma-2-2b", "20-gemmascope-res-16k", "11", "French cities"));
        var env = new Dictionary<string, string> { ["NEURONPEDIA_ENDPOINT"] = np.Endpoint, ["NEURONPEDIA_EXPORTS_ENDPOINT"] = np.Endpoint };

        var r = tool.Run(_home, env, "explain", "gemma-scope-2b-pt-res-canonical/layer_20/width_16k/canonical", "5", "9");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("#5  https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/5", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the Eiffel Tower  (gpt-4o-mini, oai_token-act-pair)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("no explanation", r.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, np.Count("/api/feature/gemma-2-2b/20-gemmascope-res-16k/5"));

        var export = tool.Run(_home, env, "explain", NpId, "11", "--export", "--json");
        Assert.True(export.ExitCode == 0, export.ToString());
        var item = Assert.Single(JsonDocument.Parse(export.Stdout).RootElement.EnumerateArray());
        Assert.Equal("French cities", item.GetProperty("explanations")[0].GetProperty("description").GetString());

        // Offline from the cache the first two calls filled.
        var offline = new Dictionary<string, string> { ["NEURONPEDIA_ENDPOINT"] = "http://127.0.0.1:9", ["NEURONPEDIA_OFFLINE"] = "1" };
        var cached = tool.Run(_home, offline, "explain", NpId, "11");
        Assert.True(cached.ExitCode == 0, cached.ToString());
        Assert.Contains("French cities", cached.Stdout, StringComparison.Ordinal);

        ToolAssert.Fails(tool.Run(_home, env, "explain", "gemma-scope-2b-pt-res-canonical/layer_20/width_16k/canonical", "16384"), 2);
        ToolAssert.Fails(tool.Run(_home, env, "explain", "gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_22", "1"), 1, "no dashboards");
    }
}
