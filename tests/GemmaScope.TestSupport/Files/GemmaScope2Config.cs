using System.Text.Json;

namespace GemmaScope.TestSupport;

/// <summary>The config.json Gemma Scope 2 writes next to each params.safetensors (where an SAE's or transcoder's hook sites come from).</summary>
public static class GemmaScope2Config
{
    /// <summary>The file's text, keys in Gemma Scope 2's order.</summary>
    /// <param name="type"><c>sae</c> or <c>transcoder</c>.</param>
    /// <param name="width">d_sae.</param>
    /// <param name="affine">Whether it has an affine skip connection (transcoders).</param>
    /// <param name="hookIn">The Hugging Face module output it reads, e.g. <c>model.layers.3.output</c>.</param>
    /// <param name="hookOut">The one it writes (the same as <paramref name="hookIn"/> for an SAE).</param>
    /// <param name="modelName">The model it was trained on.</param>
    /// <param name="l0">Its L0 target.</param>
    public static string Json(string type, int width, bool affine, string hookIn, string hookOut, string modelName = "google/gemma-3-tiny", int l0 = 9) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
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
