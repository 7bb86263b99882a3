using System.Runtime.CompilerServices;

namespace GemmaScope.Onnx;

/// <summary>Options for <see cref="GemmaModel.Generate(ReadOnlySpan{int}, GenerationOptions?, Interventions?)"/>.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to add after the prompt.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>0 picks the most likely token (greedy); above 0 samples from softmax(logits / temperature).</summary>
    public float Temperature { get; init; }

    /// <summary>Nucleus sampling: sample among the most likely tokens whose probabilities sum to at least this (1 = all).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Seed of the sampler, so sampled text is reproducible.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Keep a key/value cache so each step runs only the new token (the native engine's KV cache, with a ring buffer for
    /// sliding layers; on ONNX Runtime the graph's past_key_values.* in, present.* out). Graphs without those inputs (e.g. a
    /// torch.onnx export without past) always recompute the whole prefix.
    /// </summary>
    public bool UseKvCache { get; init; } = true;

    /// <summary>Stop after this token (Gemma's EOS is 1); null never stops early.</summary>
    public int? EosId { get; init; } = 1;
}

/// <summary>One generated token.</summary>
/// <param name="Id">The token id.</param>
/// <param name="Text">Its text when the model has a tokenizer, else null.</param>
public sealed record GeneratedToken(int Id, string? Text);

/// <summary>The result of a generation.</summary>
/// <param name="PromptIds">The prompt's ids (BOS included when added).</param>
/// <param name="NewIds">The generated ids, EOS included when it stopped the generation.</param>
/// <param name="Text">The generated text when the model has a tokenizer, else null.</param>
/// <param name="UsedKvCache">Whether the KV cache was used (false: the prefix was recomputed each step).</param>
[System.Diagnostics.DebuggerDisplay("{ToString(),nq}")]
public sealed record GenerationResult(IReadOnlyList<int> PromptIds, IReadOnlyList<int> NewIds, string? Text, bool UsedKvCache)
{
    /// <summary>The prompt and new ids (at most 16 of each shown), the new text when known, and whether the KV cache was used.</summary>
    public override string ToString()
    {
        static string Ids(IReadOnlyList<int> ids) =>
            "[" + string.Join(", ", ids.Take(16)) + (ids.Count > 16 ? $", … {ids.Count - 16} more" : "") + "]";
        string text = Text is null ? "" : $" \"{(Text.Length > 200 ? Text[..200] + "…" : Text)}\"";
        return $"GenerationResult({PromptIds.Count} prompt tokens {Ids(PromptIds)} + {NewIds.Count} new {Ids(NewIds)}{text}, KV cache {(UsedKvCache ? "on" : "off")})";
    }
}

public sealed partial class GemmaModel
{
    /// <summary>Generates from token ids, with any interventions active at every step (prompt included). One sequence.</summary>
    public GenerationResult Generate(ReadOnlySpan<int> prompt, GenerationOptions? options = null, Interventions? interventions = null)
    {
        var o = options ?? new GenerationOptions();
        var ids = prompt.ToArray();
        bool kv = UsesKv(o);
        var added = Steps(ids, o, interventions ?? Interventions.None, kv).ToList();
        return new GenerationResult(ids, added, _tokenizer?.Decode(added), kv);
    }

    /// <summary>Tokenizes the prompt (BOS added) and generates; the result's <see cref="GenerationResult.Text"/> holds the new text.</summary>
    public GenerationResult Generate(string prompt, GenerationOptions? options = null, Interventions? interventions = null) =>
        Generate(Tokenize(prompt), options, interventions);

    /// <summary>Generates token by token, yielding each as soon as it is chosen.</summary>
    public async IAsyncEnumerable<GeneratedToken> GenerateStreaming(int[] prompt, GenerationOptions? options = null, Interventions? interventions = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var o = options ?? new GenerationOptions();
        using var steps = Steps((int[])prompt.Clone(), o, interventions ?? Interventions.None, UsesKv(o)).GetEnumerator();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            bool more = await Task.Run(steps.MoveNext, cancellationToken).ConfigureAwait(false);
            if (!more)
            {
                yield break;
            }

            int id = steps.Current;
            yield return new GeneratedToken(id, _tokenizer?.Decode([id]));
        }
    }

    /// <summary>Tokenizes the prompt (BOS added) and streams the generated tokens.</summary>
    public IAsyncEnumerable<GeneratedToken> GenerateStreaming(string prompt, GenerationOptions? options = null, Interventions? interventions = null,
        CancellationToken cancellationToken = default) =>
        GenerateStreaming(Tokenize(prompt), options, interventions, cancellationToken);

    private bool UsesKv(GenerationOptions o) => o.UseKvCache && _engine.HasKvCache;

    private IEnumerable<int> Steps(int[] prompt, GenerationOptions o, Interventions iv, bool kv)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (prompt.Length == 0)
        {
            throw new ArgumentException("The prompt is empty.", nameof(prompt));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(o.MaxNewTokens);
        if (o.TopP is <= 0 or > 1 || o.Temperature < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(o), $"TopP must be in (0, 1] and Temperature ≥ 0 (got {o.TopP}, {o.Temperature}).");
        }

        InterventionChecks.Validate(iv, _engine.Width, ModelPath);
        var rng = new Random(o.Seed);
        var ids = new List<int>(prompt);
        float[]? scratch = null, keys = null;
        int[]? order = null;
        using var decoder = _engine.Decode(iv, kv);
        for (int step = 0; step < o.MaxNewTokens; step++)
        {
            // With the cache, the prompt first and then one new token per step; without, the whole sequence every step.
            int[] input = kv && step > 0 ? [ids[^1]] : [.. ids];
            var last = decoder.Step(input);
            int vocab = last.Length;
            scratch ??= new float[vocab];
            keys ??= new float[vocab];
            order ??= new int[vocab];
            int next = o.Temperature == 0 ? Sampling.ArgMax(last) : Sampling.Sample(last, o.Temperature, o.TopP, rng, scratch, keys, order);
            ids.Add(next);
            yield return next;
            if (next == o.EosId)
            {
                yield break;
            }
        }
    }
}
