namespace GemmaScope.Hf;

/// <summary>
/// Settings of the <see cref="NeuronpediaClient"/>. Every property left null falls back to an environment variable, then to a default;
/// a value set here wins over the environment.
/// </summary>
/// <remarks>Immutable record; change it with <c>with</c>. Thread-safe.</remarks>
public sealed record NeuronpediaOptions
{
    /// <summary>The default API address.</summary>
    public const string DefaultApiEndpoint = "https://www.neuronpedia.org";

    /// <summary>The default address of the public bulk exports (the <c>neuronpedia-datasets</c> bucket).</summary>
    public const string DefaultExportsEndpoint = "https://neuronpedia-datasets.s3.us-east-1.amazonaws.com";

    /// <summary>
    /// The API address serving <c>GET {endpoint}/api/feature/{modelId}/{sourceId}/{index}</c>; else <c>NEURONPEDIA_ENDPOINT</c>;
    /// else <see cref="DefaultApiEndpoint"/>.
    /// </summary>
    public string? ApiEndpoint { get; init; }

    /// <summary>
    /// The address serving exports as <c>{endpoint}/v1/{modelId}/{sourceId}/explanations/batch-N.jsonl.gz</c>; else
    /// <c>NEURONPEDIA_EXPORTS_ENDPOINT</c>; else <see cref="DefaultExportsEndpoint"/>.
    /// </summary>
    public string? ExportsEndpoint { get; init; }

    /// <summary>
    /// Where answers and exports are cached (in the export layout, <c>v1/…</c>, plus <c>api/feature/…</c>); else <c>NEURONPEDIA_CACHE</c>;
    /// else a <c>neuronpedia</c> folder next to the Hugging Face hub cache (e.g. <c>~/.cache/huggingface/neuronpedia</c>).
    /// </summary>
    public string? CacheDirectory { get; init; }

    /// <summary>
    /// A folder the user downloaded exports into, laid out as the bucket (<c>v1/{modelId}/{sourceId}/explanations/batch-N.jsonl.gz</c>);
    /// else <c>NEURONPEDIA_EXPORTS</c>; else none. It is read before the cache and never written.
    /// </summary>
    public string? ExportDirectory { get; init; }

    /// <summary>True: never touch the network. Else <c>NEURONPEDIA_OFFLINE</c>, else <c>HF_HUB_OFFLINE</c> (1/true/yes/on); else false.</summary>
    public bool? Offline { get; init; }

    /// <summary>Timeout of each request (a stalled export download fails after it). Default 60 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Reads environment variables; replaced in tests so that they need not change the process environment.</summary>
    internal Func<string, string?> EnvironmentReader { get; init; } = Environment.GetEnvironmentVariable;
}
