using System.Text.Json.Nodes;
using GemmaScope.Core.Tests.Support;
using GemmaScope.Formats;

namespace GemmaScope.Core.Tests.Sae;

/// <summary>
/// Transcoders (Gemma Scope's params.npz, Gemma Scope 2's params.safetensors + config.json, affine and not) and Gemma Scope 2
/// SAEs against float64 references computed by numpy (tools/fixtures/make_transcoder_fixtures.py).
/// </summary>
public sealed class TranscoderTests : IDisposable
{
    private const double Rtol = 2e-6;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Dir(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "transcoders", name);

    private static Dictionary<string, TestNpz.Array> Ref(string name) => TestNpz.Read(Path.Combine(Dir(name), "reference.npz"));

    private static float[] F32(TestNpz.Array a) => [.. a.Data.Select(d => (float)d)];

    private static void CheckAgainstReference(JumpReLUTranscoder tc, string name)
    {
        var r = Ref(name);
        var x = F32(r["x"]);
        int tokens = r["x"].Shape[0];
        Assert.Equal(r["x"].Shape[1], tc.InputSize);
        Assert.Equal(r["f"].Shape[1], tc.FeatureCount);
        Assert.Equal(r["out"].Shape[1], tc.OutputSize);

        var f = SaeReference.Poisoned(tokens * tc.FeatureCount);
        tc.Encode(x, f);
        SaeReference.Close(r["f"].Data, f, Rtol, name + " f", tc.FeatureCount);
        Assert.Contains(f, v => v > 0);

        var y = SaeReference.Poisoned(tokens * tc.OutputSize);
        tc.Reconstruct(x, y);
        SaeReference.Close(r["out"].Data, y, Rtol, name + " out", tc.OutputSize);

        // Sparse encoding agrees with dense.
        var sparse = tc.EncodeSparse(x);
        for (int t = 0; t < tokens; t++)
        {
            var row = sparse[t];
            for (int k = 0; k < row.Indices.Length; k++)
            {
                Assert.Equal(f[(t * tc.FeatureCount) + row.Indices[k]], row.Values[k]);
            }

            Assert.Equal(f.AsSpan(t * tc.FeatureCount, tc.FeatureCount).ToArray().Count(v => v != 0), row.Indices.Length);
        }
    }

    [Fact]
    public void GemmaScopeNpzTranscoderMatchesFloat64AndTakesSitesFromOptions()
    {
        var options = new SaeLoadOptions { Config = new SaeConfig { HookName = "blocks.4.ln2.hook_normalized", OutputHookName = "blocks.4.hook_mlp_out", HookLayer = 4 } };
        using var tc = JumpReLUTranscoder.Load(Path.Combine(Dir("gs1-transcoder"), "params.npz"), options);
        Assert.Equal(("blocks.4.ln2.hook_normalized", "blocks.4.hook_mlp_out"), (tc.InputHookName, tc.OutputHookName));
        Assert.False(tc.HasSkipConnection);
        CheckAgainstReference(tc, "gs1-transcoder");
    }

    [Fact]
    public void GemmaScope2TranscoderWithOtherOutputWidthMatchesFloat64()
    {
        using var tc = JumpReLUTranscoder.Load(Dir("gs2-transcoder"));
        Assert.Equal(("blocks.1.hook_mlp_in", "blocks.1.hook_mlp_out"), (tc.InputHookName, tc.OutputHookName));
        Assert.Equal((21, 44, 23), (tc.InputSize, tc.FeatureCount, tc.OutputSize));
        Assert.Equal((HookPoint.MlpIn(1), HookPoint.MlpOut(1)), (tc.Config.Site, tc.Config.OutputSite));
        Assert.Equal(1, tc.Config.HookLayer);
        Assert.Equal("google/gemma-3-270m-pt", tc.Config.ModelName);
        CheckAgainstReference(tc, "gs2-transcoder");

        // Without a skip connection, Decode(f) is the whole output.
        var r = Ref("gs2-transcoder");
        var y = SaeReference.Poisoned(r["out"].Data.Length);
        tc.Decode(tc.Encode(F32(r["x"])), y);
        SaeReference.Close(r["out"].Data, y, Rtol, "decode", tc.OutputSize);
    }

    [Fact]
    public void AffineTranscoderAddsTheSkipTerm()
    {
        using var tc = JumpReLUTranscoder.Load(Path.Combine(Dir("gs2-transcoder-affine"), "params.safetensors"));
        Assert.True(tc.HasSkipConnection);
        CheckAgainstReference(tc, "gs2-transcoder-affine");

        // Decode alone omits x·W_skip, so it differs from the full output by exactly that term.
        var r = Ref("gs2-transcoder-affine");
        var x = F32(r["x"]);
        var dec = SaeReference.Poisoned(r["out"].Data.Length);
        tc.Decode(tc.Encode(x), dec);
        Assert.Contains(Enumerable.Range(0, dec.Length), k => Math.Abs(dec[k] - r["out"].Data[k]) > 1e-2);
    }

    /// <summary>
    /// A transcoder is an SAE: every encode and decode overload of <see cref="JumpReLUSae"/> serves it, decode-side at
    /// OutputSize (21 in, 23 out here), checked against the numpy float64 reference.
    /// </summary>
    [Fact]
    public void TranscoderTakesEveryOverloadOfTheSaeFamily()
    {
        using var tc = JumpReLUTranscoder.Load(Dir("gs2-transcoder"));
        JumpReLUSae sae = tc;
        var r = Ref("gs2-transcoder");
        var x = F32(r["x"]);
        int tokens = r["x"].Shape[0];
        Assert.Equal((21, 23), (sae.InputSize, sae.OutputSize));

        // Encode: ActivationBatch (site checked against the input hook), tensor, reusable buffer, one-token spans.
        var batch = new ActivationBatch(x, tc.InputSize, tc.InputHookName);
        var dense = SaeReference.Poisoned(tokens * tc.FeatureCount);
        sae.EncodeSparse(batch).ToDense(dense);
        SaeReference.Close(r["f"].Data, dense, Rtol, "EncodeSparse(ActivationBatch)", tc.FeatureCount);
        SaeReference.Close(r["f"].Data, sae.Encode(batch), Rtol, "Encode(ActivationBatch)", tc.FeatureCount);
        var e = Assert.Throws<ArgumentException>(() => sae.Encode(new ActivationBatch(x, tc.InputSize, "blocks.1.hook_mlp_out")));
        Assert.Contains("blocks.1.hook_mlp_in", e.Message, StringComparison.Ordinal);
        var tensor = sae.Encode(System.Numerics.Tensors.Tensor.Create(x, [tokens, tc.InputSize]));
        Assert.Equal([tokens, tc.FeatureCount], tensor.Lengths.ToArray());
        SaeReference.Close(r["f"].Data, tensor.ToArray(), Rtol, "Encode(Tensor)", tc.FeatureCount);
        var buffer = new SparseFeatureBuffer();
        sae.EncodeSparse(x, buffer);
        dense = SaeReference.Poisoned(tokens * tc.FeatureCount);
        buffer.ToBatch().ToDense(dense);
        SaeReference.Close(r["f"].Data, dense, Rtol, "EncodeSparse(buffer)", tc.FeatureCount);
        var idx = new int[tc.FeatureCount];
        var val = new float[tc.FeatureCount];
        int n = sae.EncodeSparse(x.AsSpan(0, tc.InputSize), idx, val);
        var row0 = new float[tc.FeatureCount];
        for (int k = 0; k < n; k++)
        {
            row0[idx[k]] = val[k];
        }

        SaeReference.Close(r["f"].Data.AsSpan(0, tc.FeatureCount), row0, Rtol, "EncodeSparse(one token)");

        // Decode side, OutputSize wide (no skip term here, so the decoder is the whole output).
        var f = sae.Encode(x);
        var y = SaeReference.Poisoned(tokens * tc.OutputSize);
        sae.DecodeSparse(sae.EncodeSparse(x), y);
        SaeReference.Close(r["out"].Data, y, Rtol, "DecodeSparse", tc.OutputSize);
        var decoded = sae.Decode(System.Numerics.Tensors.Tensor.Create(f, [tokens, tc.FeatureCount]));
        Assert.Equal([tokens, tc.OutputSize], decoded.Lengths.ToArray());
        SaeReference.Close(r["out"].Data, decoded.ToArray(), Rtol, "Decode(Tensor)", tc.OutputSize);
        var predicted = sae.Reconstruct(batch);
        Assert.Equal((tc.OutputSize, tc.OutputHookName), (predicted.Width, predicted.HookName));
        SaeReference.Close(r["out"].Data, predicted.Span, Rtol, "Reconstruct(ActivationBatch)", tc.OutputSize);
        var wDec = new float[tc.FeatureCount * tc.OutputSize];
        sae.CopyDecoderWeights(wDec);
        var direction = new float[tc.OutputSize];
        sae.GetDecoderDirection(5, direction);
        Assert.Equal(wDec.AsSpan(5 * tc.OutputSize, tc.OutputSize).ToArray(), direction);
        Assert.Equal(tc.FeatureCount * tc.OutputSize, sae.GetFloat32Memory(SaeTensor.DecoderWeights).Length);
        Assert.Equal(tc.OutputSize, sae.GetFloat32Memory(SaeTensor.DecoderBias).Length);

        // What has no meaning for a transcoder says so.
        Assert.Throws<InvalidOperationException>(() => sae.ReconstructionError(x, new float[x.Length]));
        Assert.Throws<NotSupportedException>(() => sae.Save(_dir.File("tc.safetensors")));
    }

    [Fact]
    public void TranscoderScreenedAndBf16EncodeAndDisposeAsTheSaeDoes()
    {
        var r = Ref("gs2-transcoder-affine");
        var x = F32(r["x"]);
        using var plain = JumpReLUTranscoder.Load(Dir("gs2-transcoder-affine"), new SaeLoadOptions { PackEncoder = false });
        using var screened = JumpReLUTranscoder.Load(Dir("gs2-transcoder-affine"), new SaeLoadOptions { Screening = true });
        Assert.True(screened.Screening);
        Assert.Equal(plain.Encode(x), screened.Encode(x));
        SaeReference.Close(r["out"].Data, screened.Reconstruct(x), Rtol, "screened out", screened.OutputSize);
        using (var bf16 = JumpReLUTranscoder.Load(Dir("gs2-transcoder-affine"), new SaeLoadOptions { Precision = SaePrecision.BFloat16 }))
        {
            // bf16 keeps 8 significant bits, and a feature near its threshold may flip: compare in aggregate (1 %).
            Assert.Equal(SaePrecision.BFloat16, bf16.Precision);
            var y = bf16.Reconstruct(x);
            double err = 0, mag = 0;
            for (int k = 0; k < y.Length; k++)
            {
                err += Math.Abs(y[k] - r["out"].Data[k]);
                mag += Math.Abs(r["out"].Data[k]);
            }

            Assert.True(err <= 0.01 * mag, $"bf16 output differs by {err / mag:P2} in aggregate");
        }

        plain.Dispose();
        plain.Dispose();
        Assert.Throws<ObjectDisposedException>(() => plain.Encode(x));
        Assert.Throws<ObjectDisposedException>(() => plain.Reconstruct(x));
    }

    [Fact]
    public void TranscoderDecoderDirectionIsTheDecoderRow()
    {
        using var tc = JumpReLUTranscoder.Load(Dir("gs2-transcoder"));
        var f = new float[tc.FeatureCount];
        f[7] = 1;
        var withBias = new float[tc.OutputSize];
        tc.Decode(f, withBias);
        var bias = new float[tc.OutputSize];
        tc.Decode(new float[tc.FeatureCount], bias);
        var d = tc.GetDecoderDirection(7);
        Assert.Equal(tc.OutputSize, d.Length);
        for (int i = 0; i < d.Length; i++)
        {
            Assert.Equal(withBias[i] - bias[i], d[i], 5);
        }

        Assert.Contains(d, v => v != 0);
    }

    [Fact]
    public void GemmaScope2SaeLoadsWithItsConfigAndMatchesFloat64()
    {
        using var sae = JumpReLUSae.Load(Dir("gs2-sae"));
        Assert.Equal("blocks.3.hook_resid_post", sae.Config.HookName);
        Assert.Null(sae.Config.OutputHookName);
        Assert.Equal(3, sae.Config.HookLayer);
        var r = Ref("gs2-sae");
        var x = F32(r["x"]);
        var f = SaeReference.Poisoned(r["f"].Data.Length);
        sae.Encode(x, f);
        SaeReference.Close(r["f"].Data, f, Rtol, "f", sae.FeatureCount);
        var xhat = SaeReference.Poisoned(x.Length);
        sae.Reconstruct(x, xhat);
        SaeReference.Close(r["out"].Data, xhat, Rtol, "x̂", sae.InputSize);
    }

    [Theory]
    [InlineData("gs2-transcoder-affine", "affine_skip_connection")]
    [InlineData("gs2-transcoder", "config.json type")]
    public void TranscodersNeverLoadAsSaes(string name, string tensor)
    {
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(Dir(name)));
        Assert.Equal(tensor, e.Tensor);
        Assert.Contains("JumpReLUTranscoder.Load", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gs2-transcoder", true, false)]
    [InlineData("gs2-transcoder-affine", true, true)]
    [InlineData("gs2-sae", false, false)]
    public void LoadAnyLoadsWhicheverTheFilesHold(string name, bool transcoder, bool skip)
    {
        using var any = JumpReLUSae.LoadAny(Dir(name));
        Assert.Equal(transcoder, any is JumpReLUTranscoder);
        Assert.Equal(skip, any is JumpReLUTranscoder { HasSkipConnection: true });
        using JumpReLUSae same = transcoder ? JumpReLUTranscoder.Load(Dir(name)) : JumpReLUSae.Load(Dir(name));
        Assert.Equal(same.Config, any.Config);
        Assert.Equal((same.InputSize, same.FeatureCount, same.OutputSize), (any.InputSize, any.FeatureCount, any.OutputSize));
        var x = F32(Ref(name)["x"]);
        Assert.Equal(same.Reconstruct(x), any.Reconstruct(x));
    }

    [Fact]
    public void LoadAnyTellsTranscodersBySkipConnectionAndTakesNpzWithoutOneAsAnSae()
    {
        var folder = Copy("gs2-transcoder-affine");
        File.Delete(Path.Combine(folder, "config.json"));
        using (var tc = JumpReLUSae.LoadAny(folder))
        {
            Assert.True(tc is JumpReLUTranscoder { HasSkipConnection: true });
        }

        // Nothing in a Gemma Scope params.npz tells a transcoder without W_skip from an SAE.
        using (var npz = JumpReLUSae.LoadAny(Path.Combine(Dir("gs1-transcoder"), "params.npz")))
        {
            Assert.IsNotType<JumpReLUTranscoder>(npz);
        }

        // Transcoders take no input scale, whichever entry point loads them; SAEs do.
        var scaled = new SaeLoadOptions { InputScale = 2f };
        Assert.Throws<ArgumentOutOfRangeException>(() => JumpReLUSae.LoadAny(Dir("gs2-transcoder"), scaled));
        using var sae = JumpReLUSae.LoadAny(Dir("gs2-sae"), scaled);
        Assert.IsNotType<JumpReLUTranscoder>(sae);
    }

    [Fact]
    public void SkipTensorWithoutConfigStillRefusedAsSae()
    {
        var folder = Copy("gs2-transcoder-affine");
        File.Delete(Path.Combine(folder, "config.json"));
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(folder));
        Assert.Equal("affine_skip_connection", e.Tensor);
        using var tc = JumpReLUTranscoder.Load(folder);
        Assert.True(tc.HasSkipConnection);
    }

    [Theory]
    [InlineData("affine_skip_connection")]
    [InlineData("W_skip")]
    public void NpzWithASkipConnectionIsATranscoderNeverAnSae(string name)
    {
        // The Gemma Scope layout (W_enc …) plus a skip matrix: the SAE loader must see it and refuse; the transcoder adds it.
        var r = TestNpz.Read(Path.Combine(Dir("gs1-transcoder"), "params.npz"));
        var skip = Enumerable.Range(0, 19 * 19).Select(i => (float)Math.Sin(i)).ToArray();
        var members = r.Select(kv => (kv.Key + ".npy", TestNpz.Npy(F32(kv.Value), kv.Value.Shape))).ToList();
        members.Add((name + ".npy", TestNpz.Npy(skip, [19, 19])));
        var path = _dir.File("skip.npz");
        File.WriteAllBytes(path, TestNpz.Zip(members));

        var e = Assert.Throws<SaeFormatException>(() => JumpReLUSae.Load(path));
        Assert.Equal(name, e.Tensor);
        using var tc = JumpReLUTranscoder.Load(path);
        Assert.True(tc.HasSkipConnection);
        var reference = Ref("gs1-transcoder");
        var x = F32(reference["x"]);
        var y = tc.Reconstruct(x);
        for (int t = 0; t < 5; t++)
        {
            for (int j = 0; j < 19; j++)
            {
                double expected = reference["out"].Data[(t * 19) + j];
                for (int i = 0; i < 19; i++)
                {
                    expected += reference["x"].Data[(t * 19) + i] * skip[(i * 19) + j];
                }

                Assert.True(Math.Abs(expected - y[(t * 19) + j]) <= 1e-5 * (1 + Math.Abs(expected)), $"[{t}, {j}]: expected {expected}, actual {y[(t * 19) + j]}");
            }
        }
    }

    [Fact]
    public void SaeConfigRefusedAsTranscoder()
    {
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUTranscoder.Load(Dir("gs2-sae")));
        Assert.Equal("config.json type", e.Tensor);
        Assert.Contains("JumpReLUSae.Load", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("type")]
    [InlineData("hf_hook_point_in")]
    [InlineData("width")]
    [InlineData("affine_connection")]
    [InlineData("architecture")]
    public void MissingConfigFieldIsNamed(string field)
    {
        var (folder, e) = RefusedWithConfig(o => o.Remove(field));
        Assert.Equal("config.json " + field, e.Tensor);
        Assert.Equal(Path.Combine(folder, "config.json"), e.FilePath);
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hf_hook_point_in", "model.layers.1.mlp.down_proj.output")]
    [InlineData("hf_hook_point_out", "model.layers.2.post_feedforward_layernorm.output")]
    [InlineData("architecture", "topk")]
    [InlineData("type", "crosscoder")]
    public void BadConfigValuesAreRefused(string field, string value)
    {
        var (_, e) = RefusedWithConfig(o => o[field] = value);
        Assert.Equal("config.json " + field, e.Tensor);
        Assert.Contains(value, e.Actual, StringComparison.Ordinal);
    }

    [Fact]
    public void WidthDisagreeingWithConfigIsRefused()
    {
        var (_, e) = RefusedWithConfig(o => o["width"] = 45);
        Assert.Equal("w_enc", e.Tensor);
        Assert.Equal("[d_in, 45]", e.Expected);
        Assert.Equal("[21, 44]", e.Actual);
    }

    [Fact]
    public void AffineFlagWithoutSkipTensorIsRefused()
    {
        var (_, e) = RefusedWithConfig(o => o["affine_connection"] = true);
        Assert.Equal("affine_skip_connection", e.Tensor);
        Assert.Equal(("present", "absent"), (e.Expected, e.Actual));
    }

    [Theory]
    [InlineData("b_dec", new long[] { 24 }, "[23]")] // d_out from w_dec is 23
    [InlineData("affine_skip_connection", new long[] { 23, 21 }, "[21, 23]")] // W_skip is [d_in, d_out]
    [InlineData("threshold", new long[] { 43 }, "[44]")]
    public void ShapesThatDisagreeAreNamed(string tensor, long[] shape, string expected)
    {
        var folder = _dir.File("bad");
        Directory.CreateDirectory(folder);
        var rng = new Random(5);
        (string, int[], float[]) T(string name, params int[] s)
        {
            if (name == tensor)
            {
                s = [.. shape.Select(d => (int)d)];
            }

            return (name, s, [.. Enumerable.Range(0, s.Aggregate(1, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() - 0.5))]);
        }

        var tensors = new List<(string, int[], float[])>
        {
            T("w_enc", 21, 44), T("w_dec", 44, 23), T("b_enc", 44), T("b_dec", 23), T("threshold", 44),
        };
        if (tensor == "affine_skip_connection")
        {
            tensors.Add(T("affine_skip_connection", 21, 23));
        }

        TestSafeTensors.WriteF32(Path.Combine(folder, "params.safetensors"), tensors);
        File.Copy(Path.Combine(Dir("gs2-transcoder"), "config.json"), Path.Combine(folder, "config.json"));
        EditConfig(folder, o => o["affine_connection"] = tensor == "affine_skip_connection");
        var e = Assert.Throws<SaeFormatException>(() => JumpReLUTranscoder.Load(folder));
        Assert.Equal(tensor, e.Tensor);
        Assert.Equal(expected, e.Expected);
        Assert.Equal("[" + string.Join(", ", shape) + "]", e.Actual);
        Assert.Equal(Path.Combine(folder, "params.safetensors"), e.FilePath);
    }

    [Theory]
    [InlineData("model.layers.5.output", "sae", "blocks.5.hook_resid_post")]
    [InlineData("model.layers.5.post_feedforward_layernorm.output", "sae", "blocks.5.hook_mlp_out")]
    [InlineData("model.layers.12.self_attn.o_proj.input", "sae", "blocks.12.attn.hook_z")]
    [InlineData("model.layers.7.pre_feedforward_layernorm.output", "transcoder", "blocks.7.hook_mlp_in")]
    public void HookPointsMapToTransformerLensNames(string hf, string type, string expected)
    {
        Assert.Equal(expected, Scope2Config.MapHook("f", "hf_hook_point_in", hf, type == "transcoder", isInput: true).Name);
    }

    [Fact]
    public void PreFeedforwardNormIsNotAnSaeSite()
    {
        // Only transcoders are known to read it; an SAE claiming it is refused rather than guessed.
        Assert.Throws<SaeFormatException>(() => Scope2Config.MapHook("f", "hf_hook_point_in", "model.layers.7.pre_feedforward_layernorm.output", false, true));
    }

    /// <summary>A copy of gs2-transcoder with its config.json edited, and the exception loading it raises.</summary>
    private (string Folder, SaeFormatException Error) RefusedWithConfig(Action<JsonObject> edit)
    {
        var folder = Copy("gs2-transcoder");
        EditConfig(folder, edit);
        return (folder, Assert.Throws<SaeFormatException>(() => JumpReLUTranscoder.Load(folder)));
    }

    private string Copy(string name) => TestFiles.CopyFolder(Dir(name), _dir.File(name));

    private static void EditConfig(string folder, Action<JsonObject> edit) => TestFiles.EditJson(Path.Combine(folder, "config.json"), edit);
}
