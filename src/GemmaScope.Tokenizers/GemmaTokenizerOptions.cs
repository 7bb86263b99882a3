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

    /// <summary>The default of <see cref="CacheCapacity"/>: 10,000 runs, as Hugging Face's BPE cache.</summary>
    public const int DefaultCacheCapacity = 10_000;

    /// <summary>
    /// How many distinct short text runs (up to 256 chars between added tokens) to remember with their tokens,
    /// so that repeated text skips the merge loop. 0 turns the cache off; ids are the same either way.
    /// </summary>
    public int CacheCapacity { get; init; } = DefaultCacheCapacity;
}
