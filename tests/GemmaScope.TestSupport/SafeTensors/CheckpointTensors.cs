namespace GemmaScope.TestSupport;

/// <summary>The tensors of Hugging Face Gemma checkpoints, written out by hand (not taken from the library's expectations).</summary>
public static class CheckpointTensors
{
    /// <summary>
    /// A Gemma 2 checkpoint's tensors, names and shapes in the order transformers saves them (embedding, layers, final norm);
    /// with <paramref name="qkNorm"/>, Gemma 3's q_norm and k_norm in every layer.
    /// </summary>
    public static List<(string Name, long[] Shape)> Gemma2(int vocab, int d, int ff, int layers, int heads, int kvHeads, int headDim, bool qkNorm = false)
    {
        var list = new List<(string Name, long[] Shape)> { ("model.embed_tokens.weight", [vocab, d]) };
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            list.Add((p + "input_layernorm.weight", [d]));
            list.Add((p + "post_attention_layernorm.weight", [d]));
            list.Add((p + "pre_feedforward_layernorm.weight", [d]));
            list.Add((p + "post_feedforward_layernorm.weight", [d]));
            list.Add((p + "self_attn.q_proj.weight", [heads * headDim, d]));
            list.Add((p + "self_attn.k_proj.weight", [kvHeads * headDim, d]));
            list.Add((p + "self_attn.v_proj.weight", [kvHeads * headDim, d]));
            list.Add((p + "self_attn.o_proj.weight", [d, heads * headDim]));
            if (qkNorm)
            {
                list.Add((p + "self_attn.q_norm.weight", [headDim]));
                list.Add((p + "self_attn.k_norm.weight", [headDim]));
            }

            list.Add((p + "mlp.gate_proj.weight", [ff, d]));
            list.Add((p + "mlp.up_proj.weight", [ff, d]));
            list.Add((p + "mlp.down_proj.weight", [d, ff]));
        }

        list.Add(("model.norm.weight", [d]));
        return list;
    }
}
