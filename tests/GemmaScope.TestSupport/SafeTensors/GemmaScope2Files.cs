using System.Text.Json;

namespace GemmaScope.TestSupport;

/// <summary>An SAE's or transcoder's files as Gemma Scope 2 releases them: params.safetensors (lower-case keys, float32) and config.json.</summary>
public static class GemmaScope2Files
{
    /// <summary>
    /// Random weights (never zeros) under params.safetensors' names, drawn in this order from one <c>Random(seed)</c>, each
    /// uniform around its offset: <c>w_enc</c> [d_in, d_sae] (± <paramref name="encScale"/>/2), <c>w_dec</c> [d_sae, d_out]
    /// (± <paramref name="decScale"/>/2), <c>b_enc</c>, <c>b_dec</c> (± 0.1), <c>threshold</c> (0.06 ± 0.025) and, with
    /// <paramref name="skip"/>, <c>affine_skip_connection</c> [d_in, d_out] (± 0.15).
    /// </summary>
    public static List<(string Name, int[] Shape, float[] Data)> RandomParams(int dIn, int dOut, int dSae, int seed, bool skip, float encScale, float decScale)
    {
        var rng = new Random(seed);
        float[] Fill(int n, float scale, float offset = 0) => [.. Enumerable.Range(0, n).Select(_ => offset + (scale * ((float)rng.NextDouble() - 0.5f)))];
        var tensors = new List<(string Name, int[] Shape, float[] Data)>
        {
            ("w_enc", [dIn, dSae], Fill(dIn * dSae, encScale)),
            ("w_dec", [dSae, dOut], Fill(dSae * dOut, decScale)),
            ("b_enc", [dSae], Fill(dSae, 0.2f)),
            ("b_dec", [dOut], Fill(dOut, 0.2f)),
            ("threshold", [dSae], Fill(dSae, 0.05f, 0.06f)),
        };
        if (skip)
        {
            tensors.Add(("affine_skip_connection", [dIn, dOut], Fill(dIn * dOut, 0.3f)));
        }

        return tensors;
    }

    /// <summary>
    /// config.json of a Gemma Scope 2 SAE (<paramref name="type"/> "sae") or transcoder ("transcoder") of the tiny Gemma 3:
    /// the Hugging Face module outputs it reads and writes (<c>hf_hook_point_in</c>, <c>hf_hook_point_out</c>).
    /// </summary>
    public static string Config(string type, int width, int l0, bool affine, string hookIn, string hookOut) =>
        Config(type, width, l0, affine, hookIn, hookOut, "google/gemma-3-tiny");

    /// <summary>The same for an SAE or transcoder of the model named <paramref name="modelName"/>.</summary>
    public static string Config(string type, int width, int l0, bool affine, string hookIn, string hookOut, string modelName) => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["width"] = width,
        ["model_name"] = modelName,
        ["architecture"] = "jump_relu",
        ["l0"] = l0,
        ["affine_connection"] = affine,
        ["type"] = type,
        ["hf_hook_point_in"] = hookIn,
        ["hf_hook_point_out"] = hookOut,
    });
}
