using GemmaScope.Onnx.Graph;
using GemmaScope.Onnx.Runtime;
using GemmaScope.Onnx.Runtime.Engines;
using GemmaScope.Onnx.Runtime.Engines.Ort;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Onnx;

/// <summary>
/// Gemma 2 or Gemma 3 with TransformerLens hook points: capture activations, splice SAEs and transcoders, steer, edit
/// activations from C#, generate. A facade over an engine (<see cref="Engine"/>): the native C# engine, or ONNX Runtime
/// for <see cref="Load"/>ed graphs and CUDA (<see cref="GemmaModelOptions.Engine"/>). Thread-safety is stated once, in
/// the repository README ("Threads and lifetime").
/// </summary>
public sealed partial class GemmaModel : IDisposable
{
    private readonly IModelEngine _engine;
    private readonly GemmaModelOptions _options;
    private readonly Tokenizer? _tokenizer;
    private volatile bool _disposed;

    private GemmaModel(IModelEngine engine, Tokenizer? tokenizer, GemmaModelOptions options)
    {
        _engine = engine;
        _tokenizer = tokenizer;
        _options = options;
    }

    /// <summary>The ONNX file this model was loaded from, or the checkpoint folder of a model built by <see cref="FromPretrained"/>.</summary>
    public string ModelPath => _engine.ModelPath;

    /// <summary>Number of decoder layers.</summary>
    public int LayerCount => _engine.LayerCount;

    /// <summary>The tokenizer given at load, if any.</summary>
    public Tokenizer? Tokenizer => _tokenizer;

    /// <summary>Which engine runs this model: <see cref="GemmaEngineKind.Native"/> or <see cref="GemmaEngineKind.OnnxRuntime"/> (never Auto).</summary>
    public GemmaEngineKind Engine => _engine.Kind;

    /// <summary>Loads a Gemma 2 ONNX graph (torch.onnx/Optimum export, onnxruntime-genai builder, or any graph whose residual chain can be walked); it runs on ONNX Runtime.</summary>
    /// <param name="modelPath">The .onnx file; external data files are looked up in its folder.</param>
    /// <param name="tokenizer">Gemma's tokenizer, for text input and token strings; optional.</param>
    /// <param name="options">Session and resolution options.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxGraphException">The file is not ONNX, or not a Gemma 2 decoder graph.</exception>
    /// <exception cref="NotSupportedException"><see cref="GemmaModelOptions.Engine"/> is Native: a graph runs on ONNX Runtime only.</exception>
    public static GemmaModel Load(string modelPath, Tokenizer? tokenizer = null, GemmaModelOptions? options = null)
    {
        options ??= new GemmaModelOptions();
        if (options.Engine == GemmaEngineKind.Native)
        {
            throw new NotSupportedException(
                $"GemmaModel.Load('{modelPath}') runs an ONNX graph, which only the ONNX Runtime engine can do; the native engine reads a Hugging Face " +
                "checkpoint folder: use GemmaModel.FromPretrained(folder), or leave GemmaModelOptions.Engine at Auto.");
        }

        var graph = OnnxGraph.Load(Path.GetFullPath(modelPath));
        return new GemmaModel(new OrtModelEngine(graph, options), tokenizer, options);
    }

    /// <summary>Where a hook point is read (for diagnostics): the graph tensor on ONNX Runtime, the place in the forward loop on the native engine.</summary>
    /// <exception cref="NotSupportedException">The hook point needs the native engine (attention internals, norm scales).</exception>
    public string TensorName(HookPoint site)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _engine.Describe(site);
    }

    /// <summary>Runs one sequence of token ids, captures the given hook points and applies the interventions.</summary>
    /// <param name="ids">Token ids (BOS first, as Gemma expects).</param>
    /// <param name="capture">Hook points to capture.</param>
    /// <param name="interventions">SAE splices, steering vectors and C# hooks.</param>
    /// <param name="logits">
    /// False: no logits or loss; the forward stops after the last layer a capture, splice or hook needs (TransformerLens's
    /// <c>stop_at_layer</c>) and skips the LM head.
    /// </param>
    public RunResult Run(ReadOnlySpan<int> ids, IReadOnlyList<HookPoint>? capture = null, Interventions? interventions = null, bool logits = true) =>
        RunBatch([ids.ToArray()], capture, interventions, logits);

    /// <summary>Tokenizes <paramref name="text"/> (BOS added as Gemma does), runs it, captures the given hook points and applies the interventions.</summary>
    /// <param name="text">The text.</param>
    /// <param name="capture">Hook points to capture.</param>
    /// <param name="interventions">SAE splices, steering vectors and C# hooks.</param>
    /// <param name="logits">False: stop after the last layer needed (no logits, no loss).</param>
    public RunResult Run(string text, IReadOnlyList<HookPoint>? capture = null, Interventions? interventions = null, bool logits = true) =>
        RunBatch([text], capture, interventions, logits);

    /// <summary>Tokenizes several texts and runs them as one batch.</summary>
    /// <param name="texts">The texts.</param>
    /// <param name="capture">Hook points to capture.</param>
    /// <param name="interventions">SAE splices, steering vectors and C# hooks.</param>
    /// <param name="logits">False: stop after the last layer needed (no logits, no loss).</param>
    public RunResult RunBatch(IReadOnlyList<string> texts, IReadOnlyList<HookPoint>? capture = null, Interventions? interventions = null, bool logits = true)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var ids = new int[texts.Count][];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = Tokenize(texts[i]);
        }

        return RunBatch(ids, capture, interventions, logits);
    }

    /// <summary>
    /// Runs several sequences of token ids as one batch (ONNX Runtime right-pads them to the longest; the native engine packs
    /// them without padding). Each sequence's results are those of its real tokens either way.
    /// </summary>
    /// <param name="sequences">Token ids per sequence.</param>
    /// <param name="capture">Hook points to capture.</param>
    /// <param name="interventions">SAE splices, steering vectors and C# hooks.</param>
    /// <param name="logits">False: stop after the last layer needed (no logits, no loss).</param>
    public RunResult RunBatch(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint>? capture = null, Interventions? interventions = null, bool logits = true)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0)
        {
            throw new ArgumentException("At least one sequence is needed.", nameof(sequences));
        }

        for (int b = 0; b < sequences.Count; b++)
        {
            if (sequences[b] is null || sequences[b].Length == 0)
            {
                throw new ArgumentException($"Sequence {b} is empty.", nameof(sequences));
            }
        }

        capture ??= [];
        interventions ??= Interventions.None;
        if (!logits && capture.Count == 0 && !interventions.Splice.Any(s => s is not null && s.CaptureFeatures))
        {
            throw new ArgumentException("A run without logits needs something to return: capture a hook point or SAE features.", nameof(logits));
        }

        foreach (var site in capture)
        {
            ArgumentNullException.ThrowIfNull(site, nameof(capture));
            _engine.Describe(site); // an unknown or unsupported site is refused before any work
        }

        InterventionChecks.Validate(interventions, _engine.Width, ModelPath);
        return Result(sequences, _engine.Run(sequences, capture, interventions, logits));
    }

    /// <summary>
    /// Runs one sequence and caches every hook point the engine has (or those <paramref name="names"/> accepts), like
    /// TransformerLens's <c>run_with_cache(names_filter=…)</c>: <c>model.RunWithCache(ids, p =&gt; p.Name.Contains("resid"))</c>.
    /// On ONNX Runtime, hook points its graph lacks (attention internals, norm scales) are left out.
    /// </summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="names">Which hook points to keep; null for all.</param>
    /// <param name="interventions">Interventions applied during the run.</param>
    /// <param name="logits">False: stop after the last layer needed.</param>
    public RunResult RunWithCache(ReadOnlySpan<int> ids, Func<HookPoint, bool>? names = null, Interventions? interventions = null, bool logits = true) =>
        RunBatchWithCache([ids.ToArray()], names, interventions, logits);

    /// <summary>Tokenizes <paramref name="text"/> and runs <see cref="RunWithCache(ReadOnlySpan{int}, Func{HookPoint, bool}?, Interventions?, bool)"/>.</summary>
    public RunResult RunWithCache(string text, Func<HookPoint, bool>? names = null, Interventions? interventions = null, bool logits = true) =>
        RunBatchWithCache([Tokenize(text)], names, interventions, logits);

    /// <summary>A batch with every (filtered) hook point cached; see <see cref="RunWithCache(ReadOnlySpan{int}, Func{HookPoint, bool}?, Interventions?, bool)"/>.</summary>
    public RunResult RunBatchWithCache(IReadOnlyList<int[]> sequences, Func<HookPoint, bool>? names = null, Interventions? interventions = null, bool logits = true)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var sites = new List<HookPoint>();
        foreach (var p in HookPoint.All(LayerCount))
        {
            if ((names is null || names(p)) && _engine.Supports(p, out _))
            {
                sites.Add(p);
            }
        }

        if (sites.Count == 0 && !logits)
        {
            throw new ArgumentException($"The name filter accepts none of the {Engine} engine's hook points, and logits: false leaves nothing to return.", nameof(names));
        }

        return RunBatch(sequences, sites, interventions, logits);
    }

    /// <summary>
    /// Δ loss, the Gemma Scope paper's fidelity metric: mean next-token loss with the interventions minus without, on one sequence.
    /// </summary>
    public double DeltaLoss(ReadOnlySpan<int> ids, Interventions interventions)
    {
        var arr = ids.ToArray();
        return RunBatch([arr], null, interventions).MeanLoss() - RunBatch([arr]).MeanLoss();
    }

    /// <summary>Δ loss on a text (tokenized with BOS): mean next-token loss with the interventions minus without.</summary>
    public double DeltaLoss(string text, Interventions interventions) => DeltaLoss(Tokenize(text), interventions);

    /// <summary>The width of a hook point's activation rows (d_model, heads × head_dim for attn.hook_z, 1 for a norm's hook_scale; −1 for attention scores and patterns, whose rows are heads × key positions).</summary>
    public int Width(HookPoint site)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(site);
        return _engine.Width(site);
    }

    /// <summary>The node names of the graph a capture-only run executes (tests: what stop_at_layer prunes); ONNX Runtime only.</summary>
    internal IReadOnlyList<string> CaptureGraphNodes(IReadOnlyList<HookPoint> capture, bool logits) =>
        (_engine as OrtModelEngine ?? throw new InvalidOperationException("Graph nodes exist on the ONNX Runtime engine only.")).CaptureGraphNodes(capture, logits);

    /// <summary>Releases the engine (sessions, memory maps).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _engine.Dispose();
    }

    private RunResult Result(IReadOnlyList<int[]> sequences, EngineOutput output)
    {
        int batch = sequences.Count;
        var ids = new int[batch][];
        int vocab = output.Vocab;
        float[][]? loss = output.Logits is null ? null : new float[batch][];
        var scratch = output.Logits is null ? [] : new float[vocab];
        for (int b = 0; b < batch; b++)
        {
            ids[b] = (int[])sequences[b].Clone();
            if (output.Logits is not null)
            {
                loss![b] = new float[ids[b].Length - 1];
                CrossEntropy.PerToken(output.Logits.AsSpan(output.RowStart[b] * vocab, ids[b].Length * vocab), vocab, ids[b], loss[b], scratch);
            }
        }

        string[][]? tokens = null;
        if (_tokenizer is not null)
        {
            tokens = new string[batch][];
            for (int b = 0; b < batch; b++)
            {
                // BOS decodes to '' (a special token); it is shown as <bos> everywhere (tokenizer, CLI, HTML views).
                tokens[b] = ids[b].Select(id => id == _options.BosId ? "<bos>" : _tokenizer.Decode([id]) ?? string.Empty).ToArray();
            }
        }

        return new RunResult(output.Activations, output.Edited, output.Features, output.Logits, vocab, output.RowStart, ids, loss, tokens, _engine.HeadDim);
    }

    private int[] Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_tokenizer is null)
        {
            throw new InvalidOperationException($"Text input needs a tokenizer: pass one to GemmaModel.Load (model '{ModelPath}').");
        }

        var ids = _tokenizer.EncodeToIds(text);
        bool addBos = _options.AddBos && (ids.Count == 0 || ids[0] != _options.BosId);
        var result = new int[ids.Count + (addBos ? 1 : 0)];
        if (addBos)
        {
            result[0] = _options.BosId;
        }

        for (int i = 0; i < ids.Count; i++)
        {
            result[i + (addBos ? 1 : 0)] = ids[i];
        }

        return result;
    }
}
