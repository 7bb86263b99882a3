using System.Collections.Concurrent;
using GemmaScope.Onnx.Graph;
using GemmaScope.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace GemmaScope.Onnx;

/// <summary>
/// A Gemma 2 ONNX model under ONNX Runtime with Gemma Scope hook points. Reads activations at any
/// <see cref="HookPoint"/> by editing a copy of the graph so the hooked tensors become outputs; one session per set of
/// hook points, cached. Weights in external data files (<c>model.onnx_data</c>) are never read or copied by the editing:
/// the edited graph is handed to ONNX Runtime as bytes with the model's folder as the external-data folder.
/// </summary>
/// <remarks>
/// Thread-safety: <c>Run</c> may be called from several threads at once (sessions are created once under a lock-free
/// cache and ONNX Runtime sessions are thread-safe for Run). <see cref="Dispose"/> must not race with runs.
/// </remarks>
public sealed partial class GemmaModel : IDisposable
{
    private const string ExternalDataFolderKey = "session.model_external_initializers_file_folder_path";

    private readonly OnnxGraph _graph;
    private readonly HookResolver _resolver;
    private readonly GemmaModelOptions _options;
    private readonly Tokenizer? _tokenizer;
    private readonly ConcurrentDictionary<string, Lazy<InferenceSession[]>> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RunPlan> _plans = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<HookPoint, int> _widths = new();
    private readonly Building.CheckpointWeights? _weights;
    private readonly PrePackedWeightsContainer? _prepacked;
    private bool _disposed;

    private GemmaModel(OnnxGraph graph, Tokenizer? tokenizer, GemmaModelOptions options, Building.CheckpointWeights? weights = null)
    {
        _graph = graph;
        _tokenizer = tokenizer;
        _options = options;
        _weights = weights;
        if (weights is not null)
        {
            // Every session of a built model shares one set of prepacked (MLAS-packed) weights.
            _prepacked = new PrePackedWeightsContainer();
        }

        _resolver = new HookResolver(graph, options.TensorNames);
        foreach (var required in new[] { "input_ids" })
        {
            if (!graph.IsGraphInput(required))
            {
                throw new OnnxGraphException(graph.Path, required, "the graph has no such input", $"an input named '{required}'", $"inputs [{string.Join(", ", graph.G.Input.Select(i => i.Name))}]");
            }
        }

        if (!graph.G.Output.Any(o => o.Name == "logits"))
        {
            throw new OnnxGraphException(graph.Path, "logits", "the graph has no such output", "an output named 'logits'", $"outputs [{string.Join(", ", graph.G.Output.Select(o => o.Name))}]");
        }
    }

    /// <summary>The ONNX file this model was loaded from, or the checkpoint folder of a model built by <see cref="FromPretrained"/>.</summary>
    public string ModelPath => _graph.Path;

    /// <summary>Number of decoder layers found in the graph.</summary>
    public int LayerCount => _resolver.LayerCount;

    /// <summary>The tokenizer given at load, if any.</summary>
    public Tokenizer? Tokenizer => _tokenizer;

    /// <summary>Loads a Gemma 2 ONNX graph (torch.onnx/Optimum export, onnxruntime-genai builder, or any graph whose residual chain can be walked).</summary>
    /// <param name="modelPath">The .onnx file; external data files are looked up in its folder.</param>
    /// <param name="tokenizer">Gemma's tokenizer, for text input and token strings; optional.</param>
    /// <param name="options">Session and resolution options.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxGraphException">The file is not ONNX, or not a Gemma 2 decoder graph.</exception>
    public static GemmaModel Load(string modelPath, Tokenizer? tokenizer = null, GemmaModelOptions? options = null)
    {
        var graph = OnnxGraph.Load(Path.GetFullPath(modelPath));
        return new GemmaModel(graph, tokenizer, options ?? new GemmaModelOptions());
    }

    /// <summary>Which tensor of the graph a hook point reads (for diagnostics).</summary>
    public string TensorName(HookPoint site) => _resolver.Resolve(site).Tensor;

    /// <summary>Runs one sequence of token ids, captures the given hook points and applies the interventions.</summary>
    /// <param name="ids">Token ids (BOS first, as Gemma expects).</param>
    /// <param name="capture">Hook points to capture.</param>
    /// <param name="interventions">SAE splices, steering vectors and C# hooks.</param>
    /// <param name="logits">
    /// False: no logits or loss; the graph stops after the last layer a capture, splice or hook needs (TransformerLens's
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

    /// <summary>Tokenizes several texts and runs them as one right-padded batch.</summary>
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

    /// <summary>Runs several sequences of token ids as one right-padded batch.</summary>
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

        return RunCore(sequences, capture, interventions, null, out _, wantLogits: logits);
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

    /// <summary>The width of a hook point's activation rows (d_model, or heads × head_dim for attn.hook_z), found by a one-token probe run and cached.</summary>
    public int Width(HookPoint site)
    {
        ArgumentNullException.ThrowIfNull(site);
        _resolver.Resolve(site);
        return _widths.GetOrAdd(site, s => RunCore([[_options.BosId]], [s], Interventions.None, null, out _, wantLogits: false).Width(s));
    }

    internal sealed class PastState
    {
        public required Dictionary<string, (float[] Data, long[] Shape)> Values { get; init; }

        public required int Length { get; init; }
    }

    internal bool HasKvCache =>
        _graph.G.Input.Any(i => i.Name.StartsWith("past_key_values", StringComparison.Ordinal)) &&
        _graph.G.Output.Any(o => o.Name.StartsWith("present", StringComparison.Ordinal));

    internal RunResult RunCore(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint> capture, Interventions iv, PastState? past, out PastState? present, bool wantPresent = false, bool wantLogits = true)
    {
        var plan = Plan(capture, iv, wantPresent, wantLogits);
        var sessions = Sessions(plan, wantPresent);
        int batch = sequences.Count;
        int length = sequences.Max(s => s.Length);
        int pastLength = past?.Length ?? 0;
        if (past is not null && batch != 1)
        {
            throw new NotSupportedException("A KV cache is supported for one sequence at a time.");
        }

        var inputIds = new long[batch * length];
        var mask = new long[batch * (pastLength + length)];
        var positions = new long[batch * length];
        for (int b = 0; b < batch; b++)
        {
            var seq = sequences[b];
            for (int t = 0; t < pastLength; t++)
            {
                mask[(b * (pastLength + length)) + t] = 1;
            }

            for (int t = 0; t < length; t++)
            {
                int k = (b * length) + t;
                inputIds[k] = t < seq.Length ? seq[t] : _options.PadId;
                mask[(b * (pastLength + length)) + pastLength + t] = t < seq.Length ? 1 : 0;
                positions[k] = pastLength + t;
            }
        }

        // Splice gate: every real position but BOS (padding is never read back).
        var apply = new bool[batch * length];
        for (int k = 0; k < apply.Length; k++)
        {
            apply[k] = inputIds[k] != _options.BosId;
        }

        var cutValues = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var hookWidths = new Dictionary<string, int>(StringComparer.Ordinal);
        var owned = new List<OrtValue>();
        try
        {
            OrtValue Feed(string name, NodeMetadata meta)
            {
                long[] shape = [batch, length];
                OrtValue v = name switch
                {
                    "input_ids" => OrtValue.CreateTensorValueFromMemory(inputIds, shape),
                    "attention_mask" => OrtValue.CreateTensorValueFromMemory(mask, [batch, pastLength + length]),
                    "position_ids" => OrtValue.CreateTensorValueFromMemory(positions, shape),
                    _ when name.StartsWith("past_", StringComparison.Ordinal) =>
                        past is not null && past.Values.TryGetValue(name, out var pv) ? OrtValue.CreateTensorValueFromMemory(pv.Data, pv.Shape) : EmptyPast(meta, batch),
                    _ when cutValues.TryGetValue(name, out var cut) => OrtValue.CreateTensorValueFromMemory(cut, [batch, length, hookWidths[name]]),
                    _ when name.EndsWith(".apply", StringComparison.Ordinal) => OrtValue.CreateTensorValueFromMemory(apply, [batch, length, 1]),
                    _ => InterventionInput(plan, iv, name) ?? throw new OnnxGraphException(
                        _graph.Path, name, "a graph input that a Gemma 2 runner does not know how to feed", "input_ids, attention_mask, position_ids, past_key_values.*", name),
                };
                owned.Add(v);
                return v;
            }

            // Callback segments: compute the hooked tensor, let C# edit it per sequence, feed it to the later segments.
            for (int k = 0; k < plan.Hooks.Length; k++)
            {
                var session = sessions[k];
                var names = session.InputMetadata.Keys.ToList();
                var values = names.Select(n => Feed(n, session.InputMetadata[n])).ToList();
                using var ro = new RunOptions();
                using var res = session.Run(ro, names, values, [plan.HookOutputs[plan.Hooks[k].Site]]);
                var data = res[0].GetTensorDataAsSpan<float>().ToArray();
                int width = checked((int)(data.Length / ((long)batch * length)));
                for (int b = 0; b < batch; b++)
                {
                    int n = sequences[b].Length;
                    FindHook(iv, plan.Hooks[k].Site).Edit(data.AsSpan(b * length * width, n * width), n, width);
                }

                cutValues[plan.Hooks[k].CutInput] = data;
                hookWidths[plan.Hooks[k].CutInput] = width;
            }

            var final = sessions[^1];
            var inNames = final.InputMetadata.Keys.ToList();
            var inValues = inNames.Select(n => Feed(n, final.InputMetadata[n])).ToList();
            var fetch = new List<string>();
            if (wantLogits)
            {
                fetch.Add("logits");
            }

            var presentNames = wantPresent ? final.OutputMetadata.Keys.Where(n => n.StartsWith("present", StringComparison.Ordinal)).ToList() : [];
            fetch.AddRange(presentNames);
            fetch.AddRange(plan.CaptureOutputs.Values.Distinct());
            fetch.AddRange(plan.FeatureOutputs.Values.Where(v => !fetch.Contains(v)));
            fetch.AddRange(plan.EditedOutputs.Values.Distinct().Where(v => !fetch.Contains(v)));
            using var runOptions = new RunOptions();
            using var results = final.Run(runOptions, inNames, inValues, fetch);

            int vocab = 0;
            float[]? logits = null;
            if (wantLogits)
            {
                var logitsShape = results[0].GetTensorTypeAndShape().Shape;
                if (logitsShape.Length != 3 || logitsShape[0] != batch || logitsShape[1] != length)
                {
                    throw new OnnxGraphException(_graph.Path, "logits", "logits have the wrong shape", $"[{batch}, {length}, vocab]", $"[{string.Join(", ", logitsShape)}]");
                }

                vocab = checked((int)logitsShape[2]);
                logits = results[0].GetTensorDataAsSpan<float>().ToArray();
            }

            present = null;
            if (wantPresent)
            {
                var dict = new Dictionary<string, (float[], long[])>(StringComparer.Ordinal);
                foreach (var pn in presentNames)
                {
                    var v = results[fetch.IndexOf(pn)];
                    dict["past_key_values" + pn["present".Length..]] = (v.GetTensorDataAsSpan<float>().ToArray(), v.GetTensorTypeAndShape().Shape);
                }

                present = new PastState { Values = dict, Length = pastLength + length };
            }

            (float[], int) Rows(string output, string what)
            {
                var value = results[fetch.IndexOf(output)];
                var s = value.GetTensorTypeAndShape().Shape;
                long rows = (long)batch * length;
                long count = value.GetTensorTypeAndShape().ElementCount;
                if (s.Length < 2 || s[0] != batch || s[1] != length || count % rows != 0)
                {
                    throw new OnnxGraphException(_graph.Path, output, $"{what} has the wrong shape", $"[{batch}, {length}, …]", $"[{string.Join(", ", s)}]");
                }

                return (value.GetTensorDataAsSpan<float>().ToArray(), checked((int)(count / rows)));
            }

            var acts = new Dictionary<HookPoint, (float[] Data, int Width)>();
            foreach (var (site, output) in plan.CaptureOutputs)
            {
                acts[site] = Rows(output, $"Hook {site.Name}");
            }

            var edited = new Dictionary<HookPoint, (float[] Data, int Width)>();
            foreach (var (site, output) in plan.EditedOutputs)
            {
                edited[site] = Rows(output, $"Hook {site.Name} after its interventions");
            }

            var features = new Dictionary<HookPoint, (float[] Data, int Width)>();
            foreach (var s in plan.Splices.Where(s => s.Features))
            {
                features[s.Site] = Rows(plan.FeatureOutputs[s.Prefix], $"SAE features at {s.Site.Name}");
            }

            var ids = new int[batch][];
            float[][]? loss = logits is null ? null : new float[batch][];
            var scratch = new float[vocab];
            for (int b = 0; b < batch; b++)
            {
                ids[b] = (int[])sequences[b].Clone();
                if (logits is not null)
                {
                    loss![b] = new float[ids[b].Length - 1];
                    CrossEntropy.PerToken(logits.AsSpan(b * length * vocab, ids[b].Length * vocab), vocab, ids[b], loss[b], scratch);
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

            return new RunResult(acts, edited, features, logits, vocab, length, ids, loss, tokens);
        }
        finally
        {
            foreach (var v in owned)
            {
                v.Dispose();
            }
        }
    }

    /// <summary>The node names of the graph a capture-only run executes (tests: what stop_at_layer prunes).</summary>
    internal IReadOnlyList<string> CaptureGraphNodes(IReadOnlyList<HookPoint> capture, bool logits)
    {
        var plan = Plan(capture, Interventions.None, kv: false, logits);
        var fresh = new RunPlan { Key = plan.Key, Captures = plan.Captures, CaptureSites = plan.CaptureSites, Splices = [], Steers = [], Hooks = [], WantLogits = logits };
        return fresh.BuildSegments(_graph, plan.Captures, keepPresent: false)[^1].G.Node.Select(n => n.Name).ToList();
    }

    private static ActivationHook FindHook(Interventions iv, HookPoint site) => iv.Hooks.First(h => h.Site == site);

    private RunPlan Plan(IReadOnlyList<HookPoint> capture, Interventions iv, bool kv, bool logits)
    {
        var sites = capture.Distinct().ToArray();
        var resolved = sites.Select(_resolver.Resolve).ToArray();
        var splices = new List<RunPlan.SpliceSpec>();
        for (int i = 0; i < iv.Splice.Count; i++)
        {
            var s = iv.Splice[i] ?? throw new ArgumentException($"Splice {i} is null.");
            ArgumentNullException.ThrowIfNull(s.Sae);
            var r = _resolver.Resolve(s.Site);
            int width = Width(s.Site);
            if (s.Sae.InputSize != width)
            {
                throw new ArgumentException(
                    $"Splice {i}: SAE d_in {s.Sae.InputSize} ({s.Sae.HookName ?? "no hook name"}) does not match {s.Site.Name}, whose activations have width {width} " +
                    $"({(s.Site.Kind == HookKind.AttnZ ? "heads × head_dim" : "d_model")}) in '{_graph.Path}'.");
            }

            CheckOwnSite($"Splice {i}", s.Sae.ToString() ?? "the SAE", s.Sae.HookName, s.Site, s.AllowOtherSite, "SaeSplice.AllowOtherSite");

            foreach (var c in s.Clamp)
            {
                if ((uint)c.Feature >= (uint)s.Sae.FeatureCount)
                {
                    throw new ArgumentOutOfRangeException(nameof(iv), $"Clamp of feature {c.Feature} at {s.Site.Name}: the SAE has {s.Sae.FeatureCount} features.");
                }
            }

            splices.Add(new(s.Site, r.Tensor, $"gemmascope.sae{i}", s.Sae.InputSize, s.Sae.FeatureCount, s.Clamp.Count > 0, s.UseErrorTerm, s.CaptureFeatures, s.ExcludeBos));
        }

        if (splices.GroupBy(s => s.Site).Any(g => g.Count() > 1))
        {
            throw new ArgumentException("Two SAEs are spliced at the same hook point; splice one per site.");
        }

        var steers = new List<RunPlan.SteerSpec>();
        for (int i = 0; i < iv.Steer.Count; i++)
        {
            var s = iv.Steer[i];
            int width = Width(s.Site);
            if (s.Vector.Length != width)
            {
                throw new ArgumentException(
                    $"Steering {i} ({s.Source ?? "a vector"}{(s.SaeHookName is null ? "" : ", trained on " + s.SaeHookName)}) has {s.Vector.Length} elements; {s.Site.Name} has width {width} in '{_graph.Path}'.");
            }

            CheckOwnSite($"Steering {i}", s.Source ?? "the vector", s.SaeHookName, s.Site, s.AllowOtherSite, "Steering.AllowOtherSite (steering with { AllowOtherSite = true })");

            steers.Add(new(s.Site, _resolver.Resolve(s.Site).Tensor, $"gemmascope.steer{i}", width));
        }

        var hookSites = iv.Hooks.Select(h => h.Site).ToList();
        if (hookSites.Distinct().Count() != hookSites.Count)
        {
            throw new ArgumentException("Two C# hooks at the same hook point; combine them into one callback.");
        }

        // Callbacks run in graph order: the order of the resolved tensors' producers (ONNX nodes are topologically sorted).
        var hooks = iv.Hooks
            .Select(h => (h.Site, Tensor: _resolver.Resolve(h.Site).Tensor))
            .OrderBy(h => h.Site.ForwardOrder)
            .Select((h, k) => new RunPlan.HookSpec(h.Site, h.Tensor, $"gemmascope.cut{k}"))
            .ToArray();

        string key = (logits ? "" : "nologits\n") + RunPlan.MakeKey(sites.Select((p, i) => p.Name + "=" + resolved[i].Tensor), splices, steers, hooks, kv);
        return _plans.GetOrAdd(key, _ => new RunPlan
        {
            Key = key,
            Captures = resolved,
            CaptureSites = sites,
            Splices = [.. splices],
            Steers = [.. steers],
            Hooks = hooks,
            WantLogits = logits,
        });
    }

    // An SAE that knows its hook point is applied there only, unless the caller opted in to another site.
    private static void CheckOwnSite(string what, string sae, string? saeHookName, HookPoint site, bool allowed, string optIn)
    {
        if (allowed || saeHookName is null || saeHookName == site.Name)
        {
            return;
        }

        throw new ArgumentException(
            $"{what}: {sae} was trained on {saeHookName}, not {site.Name}. Apply it at {saeHookName}, or set {optIn} to use it at {site.Name} anyway.");
    }

    private OrtValue? InterventionInput(RunPlan plan, Interventions iv, string name)
    {
        for (int i = 0; i < plan.Splices.Length; i++)
        {
            var spec = plan.Splices[i];
            if (!name.StartsWith(spec.Prefix + ".", StringComparison.Ordinal))
            {
                continue;
            }

            var sae = iv.Splice[i].Sae;
            return name[(spec.Prefix.Length + 1)..] switch
            {
                "W_enc" => Over(sae.EncoderWeights, [spec.DIn, spec.DSae]),
                "b_enc" => Over(sae.EncoderBias, [spec.DSae]),
                "threshold" => Over(sae.Threshold, [spec.DSae]),
                "W_dec" => Over(sae.DecoderWeights, [spec.DSae, spec.DIn]),
                "b_dec" => Over(sae.DecoderBias, [spec.DIn]),
                "clamp_keep" => ClampVector(iv.Splice[i], spec.DSae, keep: true),
                "clamp_set" => ClampVector(iv.Splice[i], spec.DSae, keep: false),
                _ => null,
            };
        }

        for (int i = 0; i < plan.Steers.Length; i++)
        {
            if (name == plan.Steers[i].Prefix + ".vector")
            {
                return Over(iv.Steer[i].Vector, [plan.Steers[i].Width]);
            }
        }

        return null;
    }

    // ONNX Runtime reads the caller's memory in place (pinned for the run); inputs are never written.
    private static OrtValue Over(ReadOnlyMemory<float> memory, long[] shape) =>
        OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, System.Runtime.InteropServices.MemoryMarshal.AsMemory(memory), shape);

    private static OrtValue ClampVector(SaeSplice splice, int dSae, bool keep)
    {
        var v = new float[dSae];
        if (keep)
        {
            Array.Fill(v, 1f);
        }

        foreach (var c in splice.Clamp)
        {
            v[c.Feature] = keep ? 0f : c.Value;
        }

        return OrtValue.CreateTensorValueFromMemory(v, [dSae]);
    }

    /// <summary>Releases every cached ONNX Runtime session.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var s in _sessions.Values)
        {
            if (s.IsValueCreated)
            {
                foreach (var session in s.Value)
                {
                    session.Dispose();
                }
            }
        }

        _sessions.Clear();
        _prepacked?.Dispose();
        _weights?.Dispose();
    }

    private int[] Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_tokenizer is null)
        {
            throw new InvalidOperationException($"Text input needs a tokenizer: pass one to GemmaModel.Load (model '{_graph.Path}').");
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

    private static OrtValue EmptyPast(NodeMetadata meta, int batch)
    {
        // [batch, kv_heads, past_sequence_length = 0, head_dim]: fixed dims kept, the batch set, other symbolic dims 0.
        var dims = meta.Dimensions.Select((d, i) => i == 0 ? batch : d < 0 ? 0 : (long)d).ToArray();
        return OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, meta.ElementDataType, dims);
    }

    private InferenceSession[] Sessions(RunPlan plan, bool keepPresent)
    {
        return _sessions.GetOrAdd(plan.Key, _ => new Lazy<InferenceSession[]>(() =>
        {
            var all = plan.Captures.Concat(plan.Splices.Select(s => _resolver.Resolve(s.Site)))
                .Concat(plan.Steers.Select(s => _resolver.Resolve(s.Site)))
                .Concat(plan.Hooks.Select(h => _resolver.Resolve(h.Site))).ToList();
            if (plan.WantLogits && plan.Captures.Length == 0 && plan.Splices.Length == 0 && plan.Steers.Length == 0 && plan.Hooks.Length == 0)
            {
                // A clean run needs no edit: ONNX Runtime reads the file itself (no protobuf copy in managed memory).
                return [CreateSession(null)];
            }

            var segments = plan.BuildSegments(_graph, all, keepPresent);
            var result = new InferenceSession[segments.Count];
            try
            {
                for (int i = 0; i < segments.Count; i++)
                {
                    result[i] = CreateSession(segments[i]);
                }
            }
            catch
            {
                foreach (var s in result)
                {
                    s?.Dispose();
                }

                throw;
            }

            return result;
        }, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
    }

    private InferenceSession CreateSession(OnnxGraph? edited)
    {
        var so = new SessionOptions { GraphOptimizationLevel = _options.OptimizationLevel };
        try
        {
            if (_options.IntraOpThreads > 0)
            {
                so.IntraOpNumThreads = _options.IntraOpThreads;
            }

            if (_options.ExecutionProvider == ExecutionProvider.Cuda)
            {
                try
                {
                    so.AppendExecutionProvider_CUDA(_options.DeviceId);
                }
                catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
                {
                    throw new InvalidOperationException(
                        $"The CUDA execution provider (device {_options.DeviceId}) is not available: {e.Message} " +
                        "Reference the Microsoft.ML.OnnxRuntime.Gpu package (instead of the CPU package) and install CUDA, or use ExecutionProvider.Cpu.", e);
                }
            }

            _options.ConfigureSession?.Invoke(so);

            if (_weights is not null)
            {
                var g = edited ?? _graph;
                if (_weights.Binding == Building.WeightBinding.Initializers)
                {
                    foreach (var init in g.G.Initializer)
                    {
                        if (_weights.IsBound(init.Name))
                        {
                            so.AddInitializer(init.Name, _weights.Value(init.Name));
                        }
                    }
                }

                so.AddSessionConfigEntry(ExternalDataFolderKey, _weights.DataRoot);

                return new InferenceSession(g.ToBytes(), so, _prepacked!);
            }

            if (edited is null)
            {
                return new InferenceSession(_graph.Path, so);
            }

            // Loaded from bytes: ONNX Runtime then resolves external data against this folder, not the working directory.
            so.AddSessionConfigEntry(ExternalDataFolderKey, Path.GetDirectoryName(_graph.Path)!);
            return new InferenceSession(edited.ToBytes(), so);
        }
        finally
        {
            so.Dispose();
        }
    }
}
