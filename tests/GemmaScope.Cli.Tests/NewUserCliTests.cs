using System.Text.Json;
using GemmaScope.Onnx;

namespace GemmaScope.Cli.Tests;

/// <summary>Issue 20, new-user findings 2, 5, 6, 7 and 8 as the installed tool shows them.</summary>
[Collection("tool")]
public sealed class NewUserCliTests(InstalledTool tool) : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("gemmascope-cli-home-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public void A_download_outside_the_catalog_with_no_hub_prints_one_line_and_no_stack_trace()
    {
        var env = new Dictionary<string, string> { ["HF_ENDPOINT"] = LoopbackServer.RefusingEndpoint() };
        var r = tool.Run(_home, env, "download", "gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_70");
        ToolAssert.Fails(r, 4, "layer_20/width_16k", "HF_HUB_OFFLINE"); // ExitCodes.Service: the hub could not be reached
        Assert.StartsWith("gemmascope: hub: ", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Help_lists_widths_by_size_and_download_names_what_it_fetches()
    {
        var list = tool.Run(_home, null, "list", "--help");
        Assert.Contains("4k|16k|32k|65k|131k|262k|524k|1m", list.Stdout, StringComparison.Ordinal);
        var download = tool.Run(_home, null, "download", "--help");
        Assert.Contains("transcoder", download.Stdout, StringComparison.Ordinal);
        Assert.Contains("params.safetensors", download.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Info_describes_a_transcoder()
    {
        var folder = Path.Combine(tool.RepoRoot, "tests", "GemmaScope.Core.Tests", "Fixtures", "transcoders", "gs2-transcoder-affine");
        var r = tool.Run(_home, null, "info", folder);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("transcoder d_in 21, d_sae 36, d_out 21", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("blocks.1.hook_mlp_in", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("blocks.1.hook_mlp_out", r.Stdout, StringComparison.Ordinal);
        var json = JsonDocument.Parse(tool.Run(_home, null, "info", folder, "--json").Stdout).RootElement;
        Assert.Equal("transcoder", json.GetProperty("kind").GetString());
    }

    [Fact]
    public void Features_takes_a_transcoder_and_shows_bos_one_way()
    {
        // A Gemma Scope 2 style transcoder for the tiny Gemma 2 (d 48): reads blocks.1.hook_mlp_in, writes hook_mlp_out.
        var dir = Path.Combine(_home, "tc");
        Directory.CreateDirectory(dir);
        WriteTranscoder(dir, dIn: 48, dSae: 24, seed: 5);
        var checkpoint = Path.Combine(tool.RepoRoot, "tests", "GemmaScope.Onnx.Tests", "Fixtures", "tiny-gemma2-hf", "single");
        const string text = "The cat sat on the mat";
        var r = tool.Run(_home, null, "features", "--model", checkpoint, "--sae", dir, "--no-descriptions", "--top", "3", "--json", text);
        Assert.True(r.ExitCode == 0, r.ToString());
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal("transcoder", o.GetProperty("kind").GetString());
        Assert.Equal("blocks.1.hook_mlp_in", o.GetProperty("hookName").GetString());
        Assert.Equal("blocks.1.hook_mlp_out", o.GetProperty("outputHookName").GetString());
        var tokens = o.GetProperty("tokens").EnumerateArray().ToList();

        // Reference: the library called directly (features at the input; error against the written site)
        using var model = GemmaModel.FromPretrained(checkpoint);
        using var tc = JumpReLUTranscoder.Load(dir);
        var run = model.Run(text, capture: [HookPoint.MlpIn(1), HookPoint.MlpOut(1)]);
        var x = run.Activations(HookPoint.MlpIn(1)).ToArray();
        var y = run.Activations(HookPoint.MlpOut(1)).ToArray();
        var batch = tc.EncodeSparse(x);
        var pred = tc.Reconstruct(x);
        Assert.Equal("<bos>", tokens[0].GetProperty("token").GetString());
        Assert.False(tokens[0].GetProperty("encoded").GetBoolean());
        Assert.Equal(JsonValueKind.Null, tokens[0].GetProperty("l0").ValueKind);
        Assert.Equal(JsonValueKind.Null, tokens[0].GetProperty("relativeError").ValueKind);
        Assert.Empty(tokens[0].GetProperty("features").EnumerateArray());
        for (int t = 1; t < tokens.Count; t++)
        {
            Assert.Equal(batch[t].TopK(3).Select(p => p.Feature), tokens[t].GetProperty("features").EnumerateArray().Select(g => g.GetProperty("feature").GetInt32()));
            double err = 0, norm = 0;
            for (int i = 0; i < 48; i++)
            {
                double d = y[(t * 48) + i] - pred[(t * 48) + i];
                err += d * d;
                norm += (double)y[(t * 48) + i] * y[(t * 48) + i];
            }

            Assert.Equal(Math.Sqrt(err / norm), tokens[t].GetProperty("relativeError").GetDouble(), 1e-6);
        }

        var withBos = JsonDocument.Parse(tool.Run(_home, null, "features", "--model", checkpoint, "--sae", dir, "--no-descriptions", "--json", "--include-bos", text).Stdout)
            .RootElement.GetProperty("tokens")[0];
        Assert.Equal("<bos>", withBos.GetProperty("token").GetString());
        Assert.True(withBos.GetProperty("encoded").GetBoolean());
        Assert.Equal(batch.L0(0), withBos.GetProperty("l0").GetInt32());
    }

    // params.safetensors (w_enc [d, s], w_dec [s, d], b_enc, b_dec, threshold) and Gemma Scope 2's config.json for a transcoder.
    private static void WriteTranscoder(string dir, int dIn, int dSae, int seed)
    {
        var rng = new Random(seed);
        float[] R(int n, double scale, double offset = 0) => [.. Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale + offset))];
        var tensors = new (string Name, int[] Shape, float[] Data)[]
        {
            ("w_enc", [dIn, dSae], R(dIn * dSae, 0.5)),
            ("w_dec", [dSae, dIn], R(dSae * dIn, 0.3)),
            ("b_enc", [dSae], R(dSae, 0.1)),
            ("b_dec", [dIn], R(dIn, 0.1)),
            ("threshold", [dSae], R(dSae, 0.05, 0.1)),
        };
        TestSafeTensors.WriteF32(Path.Combine(dir, "params.safetensors"), tensors);
        File.WriteAllText(Path.Combine(dir, "config.json"), GemmaScope2Files.Config(
            "transcoder", dSae, l0: 8, affine: false, "model.layers.1.pre_feedforward_layernorm.output", "model.layers.1.post_feedforward_layernorm.output", "tiny-gemma2"));
    }
}
