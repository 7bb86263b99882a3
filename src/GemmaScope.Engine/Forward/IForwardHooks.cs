namespace GemmaScope.Engine;

/// <summary>
/// Receives activations during <see cref="GemmaEngine.Forward"/>. <see cref="Wants"/> is asked once per hook point per
/// call, before any computation; <see cref="OnHook"/> is called only for wanted points, in
/// <see cref="HookPoint.ForwardOrder"/>, on the thread that called Forward.
/// </summary>
public interface IForwardHooks
{
    /// <summary>Whether <see cref="OnHook"/> should be called for this point (points not wanted cost nothing).</summary>
    bool Wants(HookPoint point);

    /// <summary>
    /// The activations of the whole call at <paramref name="point"/>: [total rows, <see cref="HookSite.Width"/>] row-major,
    /// rows packed sequence-major as <paramref name="site"/> describes. Edits made to <paramref name="rows"/> flow downstream
    /// (into later layers, the KV cache and the logits). The span is valid only during the call: copy what you keep.
    /// </summary>
    void OnHook(HookPoint point, in HookSite site, Span<float> rows);
}
