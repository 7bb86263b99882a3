using System.Diagnostics;
using System.Globalization;

namespace GemmaScope.Onnx;

[DebuggerDisplay("{ToString(),nq}")]
public sealed partial class GemmaModel
{
    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"GemmaModel({LayerCount} layers, {(Engine == GemmaEngineKind.Native ? "native engine" : "ONNX Runtime")}{(_tokenizer is null ? "" : ", with tokenizer")}{(_disposed ? ", disposed" : "")}, {ModelPath})");
}
