using GemmaScope.Onnx.Building;

namespace GemmaScope.Onnx;

public sealed partial class GemmaModel
{
    /// <summary>
    /// The unembedding pieces of a model built by <see cref="FromPretrained"/>, for the logit lens (a direction through
    /// the final norm and the tied unembedding): the final RMSNorm's stored weight <c>w</c> (Gemma normalises with
    /// <c>(1 + w)</c>), its epsilon, and the token embedding <c>[vocab × d_model]</c>, all widened to float32 copies.
    /// The checkpoint is opened again for the read, so this works after the model released its mapped files.
    /// </summary>
    /// <remarks>Memory: the embedding copy is vocab × d_model × 4 bytes (2.4 GB for Gemma 2 2B); read once, keep it only while needed.</remarks>
    /// <exception cref="NotSupportedException">The model was loaded from an ONNX file (<see cref="Load"/>), whose weights are not addressable by name.</exception>
    public UnembeddingWeights ReadUnembedding()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var folder = _engine.CheckpointFolder ?? throw new NotSupportedException(
            $"'{ModelPath}' was loaded from an ONNX file; the logit lens needs a model built from its checkpoint by GemmaModel.FromPretrained.");
        using var checkpoint = GemmaScope.Formats.ModelCheckpoint.Open(folder);
        using var reader = new CheckpointWeights(checkpoint, WeightBinding.Initializers);
        var arch = checkpoint.Architecture;
        return new UnembeddingWeights(reader.Small("model.norm.weight"), reader.Small("model.embed_tokens.weight"), arch.Vocab, arch.DModel, arch.RmsNormEps);
    }
}

/// <summary>The final norm and unembedding of a Gemma model (see <see cref="GemmaModel.ReadUnembedding"/>).</summary>
/// <param name="FinalNormWeight">The final RMSNorm's stored weight <c>w</c> [d_model]; the norm multiplies by <c>1 + w</c>.</param>
/// <param name="Embedding">The token embedding, row-major [vocab × d_model]; Gemma ties the unembedding to it.</param>
/// <param name="VocabSize">Rows of <paramref name="Embedding"/>.</param>
/// <param name="ModelWidth">d_model.</param>
/// <param name="RmsNormEpsilon">The RMSNorm epsilon from config.json.</param>
public sealed record UnembeddingWeights(float[] FinalNormWeight, float[] Embedding, int VocabSize, int ModelWidth, double RmsNormEpsilon);
