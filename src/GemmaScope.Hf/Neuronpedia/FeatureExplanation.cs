namespace GemmaScope.Hf;

/// <summary>One Neuronpedia explanation of one feature, as its exports and API give it.</summary>
/// <param name="ModelId">Neuronpedia's model id, e.g. <c>gemma-2-2b</c>.</param>
/// <param name="SourceId">Neuronpedia's SAE (source) id, the exports' <c>layer</c> field, e.g. <c>20-gemmascope-res-16k</c>.</param>
/// <param name="Index">The feature index.</param>
/// <param name="Description">The explanation text.</param>
/// <param name="TypeName">How it was made, e.g. <c>oai_token-act-pair</c>, when given.</param>
/// <param name="ExplanationModelName">The model that wrote it, e.g. <c>gpt-4o-mini</c>, when given.</param>
public sealed record FeatureExplanation(
    string ModelId, string SourceId, int Index, string Description, string? TypeName, string? ExplanationModelName)
{
    /// <summary><c>{modelId}/{sourceId}/{index}: {description}</c>.</summary>
    public override string ToString() => $"{ModelId}/{SourceId}/{Index}: {Description}";
}
