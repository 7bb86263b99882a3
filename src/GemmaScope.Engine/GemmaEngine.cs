using System.Collections.Concurrent;
using GemmaScope.Engine.Kernels;
using GemmaScope.Engine.Weights;
using GemmaScope.Formats;
using GemmaScope.Models;

namespace GemmaScope.Engine;

/// <summary>Options of <see cref="GemmaEngine.Open(string, GemmaEngineOptions?)"/>. Immutable.</summary>
public sealed record GemmaEngineOptions
{
    /// <summary>Threads a Forward call uses (GEMMs and attention); 0: every core. Results do not depend on it.</summary>
    public int Threads { get; init; }

    /// <summary>
    /// Hold a float32 checkpoint's weights as bfloat16, rounded to nearest even once at open (half the bytes, faster
    /// decode; anonymous memory of half the fp32 weight bytes). Not exact: results equal those of the rounded weights.
    /// Has no effect on bf16 or f16 checkpoints. Default false: the checkpoint's own values.
    /// </summary>
    public bool RoundWeightsToBFloat16 { get; init; }
}

/// <summary>
/// A native CPU forward engine for Gemma 2 and Gemma 3 (text) over a Hugging Face checkpoint folder. The weights are
/// used where the mapped shards hold them, in their stored dtype (f32, bf16, f16): opening costs page-table work, not a
/// copy. Activations are float32; norms, softmax and RoPE angles are computed as Hugging Face does, in float32 or wider.
/// Every TransformerLens hook point is a place in the loop (<see cref="IForwardHooks"/>). Deterministic: a sequence's
/// activations and logits are bit-identical whatever the thread count, the other sequences in the call, or timing.
/// Thread-safe: concurrent <see cref="Forward"/> calls share the weights and use their own scratch.
/// </summary>
public sealed class GemmaEngine : IDisposable
{
    private readonly ModelCheckpoint _checkpoint;
    private readonly bool _ownsCheckpoint;
    private readonly ConcurrentBag<Scratch> _scratch = [];
    private int _disposed;

    private GemmaEngine(ModelCheckpoint checkpoint, GemmaEngineOptions options, bool ownsCheckpoint)
    {
        _checkpoint = checkpoint;
        _ownsCheckpoint = ownsCheckpoint;
        Options = options;
        Architecture = checkpoint.Architecture;
        Weights = new ModelWeights(checkpoint, options.RoundWeightsToBFloat16);
        // one RoPE table per distinct (θ, linear factor): Gemma 2 has one, Gemma 3 a local and a global one
        var tables = new List<RopeTable>();
        RopeKindOfLayer = new int[Architecture.Layers];
        for (int l = 0; l < Architecture.Layers; l++)
        {
            var kind = Architecture.LayerKinds[l];
            int i = tables.FindIndex(t => t.Theta == kind.RopeTheta && t.LinearFactor == kind.RopePositionScale);
            if (i < 0)
            {
                i = tables.Count;
                tables.Add(new RopeTable(Architecture.HeadDim, kind.RopeTheta, kind.RopePositionScale));
            }

            RopeKindOfLayer[l] = i;
        }

        RopeTables = [.. tables];
        Points = new HookPoint[Architecture.Layers][];
        for (int l = 0; l < Architecture.Layers; l++)
        {
            Points[l] = new HookPoint[(int)HookKind.LnFinalNormalized + 1];
            foreach (var kind in Enum.GetValues<HookKind>())
            {
                if (kind is not (HookKind.Embed or HookKind.LnFinalScale or HookKind.LnFinalNormalized))
                {
                    Points[l][(int)kind] = HookPoint.Create(l, kind);
                }
            }
        }
    }

    /// <summary>The model's configuration.</summary>
    public GemmaArchitecture Architecture { get; }

    /// <summary>The options the engine was opened with.</summary>
    public GemmaEngineOptions Options { get; }

    /// <summary>The checkpoint the weights are read from (valid while the engine is).</summary>
    public ModelCheckpoint Checkpoint => _checkpoint;

    /// <summary>Bytes of weights the engine holds in anonymous memory: 0 unless <see cref="GemmaEngineOptions.RoundWeightsToBFloat16"/> rounded fp32 weights.</summary>
    public long OwnedWeightBytes => Weights.OwnedBytes;

    internal ModelWeights Weights { get; }

    internal HookPoint[][] Points { get; }

    internal RopeTable[] RopeTables { get; }

    internal int[] RopeKindOfLayer { get; }

    internal int ThreadCount => Options.Threads > 0 ? Options.Threads : Environment.ProcessorCount;

    /// <summary>Opens the checkpoint folder (config.json plus model.safetensors or an index and its shards).</summary>
    /// <exception cref="CheckpointFormatException">The checkpoint is invalid or does not match its config.</exception>
    public static GemmaEngine Open(string folder, GemmaEngineOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var checkpoint = ModelCheckpoint.Open(folder);
        try
        {
            return Open(checkpoint, options, ownsCheckpoint: true);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>An engine over an opened checkpoint; disposes it with the engine when <paramref name="ownsCheckpoint"/>.</summary>
    public static GemmaEngine Open(ModelCheckpoint checkpoint, GemmaEngineOptions? options = null, bool ownsCheckpoint = false)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        options ??= new GemmaEngineOptions();
        ArgumentOutOfRangeException.ThrowIfNegative(options.Threads, nameof(options.Threads));
        return new GemmaEngine(checkpoint, options, ownsCheckpoint);
    }

    /// <summary>
    /// Floats per row that <see cref="IForwardHooks.OnHook"/> receives at <paramref name="point"/>: d_model, heads ×
    /// head_dim, kv_heads × head_dim or 1; −1 for <c>attn.hook_attn_scores</c> and <c>hook_pattern</c>, whose width is
    /// heads × key positions of the call (<see cref="HookSite.KeyPositions"/>).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The point's layer is not a layer of this model.</exception>
    public int Width(HookPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        var a = Architecture;
        if (!point.IsFinal && point.Layer >= a.Layers)
        {
            throw new ArgumentOutOfRangeException(nameof(point), point.Name, $"The model has {a.Layers} layers (0 … {a.Layers - 1}).");
        }

        return point.Kind switch
        {
            HookKind.AttnZ or HookKind.AttnQ or HookKind.AttnRotQ => a.Heads * a.HeadDim,
            HookKind.AttnK or HookKind.AttnV or HookKind.AttnRotK => a.KvHeads * a.HeadDim,
            HookKind.Ln1Scale or HookKind.Ln2Scale or HookKind.LnFinalScale => 1,
            HookKind.AttnScores or HookKind.AttnPattern => -1,
            _ => a.DModel,
        };
    }

    /// <summary>A new, empty KV cache for one sequence of this engine.</summary>
    public KvCache CreateCache()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return new KvCache(this, Architecture);
    }

    /// <summary>Runs the model over the request's sequences (see <see cref="ForwardRequest"/>).</summary>
    /// <exception cref="ArgumentException">Empty or out-of-vocabulary sequences, mismatched caches or options.</exception>
    public ForwardResult Forward(ForwardRequest request)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ArgumentNullException.ThrowIfNull(request);
        if (!_scratch.TryTake(out var scratch))
        {
            scratch = new Scratch();
        }

        try
        {
            return new ForwardPass(this, request, scratch).Run();
        }
        finally
        {
            // keep at most a few scratch sets (one per concurrent caller)
            if (_scratch.Count < Math.Max(2, Environment.ProcessorCount))
            {
                _scratch.Add(scratch);
            }
        }
    }

    /// <summary>Releases owned weight copies and, when owned, the checkpoint's mappings.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Weights.Dispose();
        if (_ownsCheckpoint)
        {
            _checkpoint.Dispose();
        }
    }
}
