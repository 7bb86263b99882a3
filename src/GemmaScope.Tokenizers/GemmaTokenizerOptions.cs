namespace GemmaScope.Tokenizers;

/// <summary>Options for loading a <see cref="GemmaTokenizer"/>.</summary>
public sealed record GemmaTokenizerOptions
{
    /// <summary>
    /// Prepend &lt;bos&gt; when encoding. Null: as the file says (tokenizer.json's post-processor;
    /// for tokenizer.model, true as Gemma's add_bos_token).
    /// </summary>
    public bool? AddBeginningOfSentence { get; init; }

    /// <summary>Append &lt;eos&gt; when encoding. Null: as the file says (false for tokenizer.model, as Gemma's add_eos_token).</summary>
    public bool? AddEndOfSentence { get; init; }
}
