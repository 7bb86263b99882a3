using System.Collections.Concurrent;
using GemmaScope.Onnx.Graph;
using Microsoft.ML.OnnxRuntime;

namespace GemmaScope.Onnx.Runtime.Engines.Ort;

/// <summary>
/// The ONNX Runtime engine: reads activations at any <see cref="HookPoint"/> by editing a copy of the graph so the hooked
/// tensors become outputs (splices and steering become graph nodes; C# callbacks cut the graph into segments); one set of
/// sessions per request structure, cached. Weights in external data files (<c>model.onnx_data</c>) are never read or copied
/// by the editing: the edited graph is handed to ONNX Runtime as bytes with the model's folder as the external-data folder.
/// Batches are right-padded to the longest sequence.
/// </summary>
internal sealed class OrtModelEngine : IModelEngine
{
    private const string ExternalDataFolderKey = "session.model_external_initializers_file_folder_path";

    // Hook kinds that only a graph built by FromPretrained could name, and that it does not build: they run on the native engine.
    private static readonly HashSet<HookKind> NativeOnlyKinds =
    [
        HookKind.Ln1Scale, HookKind.Ln1Normalized, HookKind.Ln2Scale, HookKind.AttnQ, HookKind.AttnK, HookKind.AttnV,
        HookKind.AttnRotQ, HookKind.AttnRotK, HookKind.AttnScores, HookKind.AttnPattern, HookKind.LnFinalScale,
    ];

    private readonly OnnxGraph _graph;
    private readonly HookResolver _resolver;
    private readonly GemmaModelOptions _options;
    private readonly ConcurrentDictionary<string, Lazy<InferenceSession[]>> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RunPlan> _plans = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<HookPoint, int> _widths = new();
    private readonly Building.CheckpointWeights? _weights;
    private readonly PrePackedWeightsContainer? _prepacked;

    public OrtModelEngine(OnnxGraph graph, GemmaModelOptions options, Building.CheckpointWeights? weights = null, int? headDim = null)
    {
        _graph = graph;
        _options = options;
        _weights = weights;
        HeadDim = headDim;
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

    public GemmaEngineKind Kind => GemmaEngineKind.OnnxRuntime;

    public string ModelPath => _graph.Path;

    public string? CheckpointFolder => _weights?.Checkpoint.Folder;

    public int LayerCount => _resolver.LayerCount;

    public int? HeadDim { get; }

    public bool Supports(HookPoint point, out string? why)
    {
        ArgumentNullException.ThrowIfNull(point);
        try
        {
            _resolver.Resolve(point);
            why = null;
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentOutOfRangeException)
        {
            why = e.Message;
            return false;
        }
    }

    /// <summary>The tensor a hook point reads; new hook kinds that the graph lacks are refused with the engine that has them.</summary>
    public string Describe(HookPoint point) => Resolve(point).Tensor;

    private ResolvedHook Resolve(HookPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        if (NativeOnlyKinds.Contains(point.Kind) && point.Layer < LayerCount && !Supports(point, out _))
        {
            throw new NotSupportedException(
                $"Hook point {point.Name} is not available on the ONNX Runtime engine ('{_graph.Path}' has no tensor for it): attention " +
                "internals (attn.hook_q/k/v, hook_rot_q/k, hook_attn_scores, hook_pattern) and the norms' hook_scale run on the native engine. " +
                "Load the checkpoint folder with GemmaModel.FromPretrained and GemmaModelOptions.Engine = GemmaEngineKind.Native (the default on the CPU).");
        }

        return _resolver.Resolve(point);
    }

    /// <summary>The width of a hook point's activation rows, found by a one-token probe run and cached.</summary>
    public int Width(HookPoint site)
    {
        ArgumentNullException.ThrowIfNull(site);
        Resolve(site);
        return _widths.GetOrAdd(site, s => RunCore([[_options.BosId]], [s], Interventions.None, null, out _, wantLogits: false).Activations[s].Width);
    }

    public EngineOutput Run(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint> capture, Interventions interventions, bool wantLogits) =>
        RunCore(sequences, capture, interventions, null, out _, wantLogits: wantLogits);

    public IDecoder Decode(Interventions interventions, bool useKvCache) => new Decoder(this, interventions, useKvCache && HasKvCache);

    private sealed class Decoder(OrtModelEngine engine, Interventions iv, bool kv) : IDecoder
    {
        private PastState? _past;

        public bool UsesKvCache => kv;

        public ReadOnlySpan<float> Step(int[] ids)
        {
            var run = engine.RunCore([ids], [], iv, _past, out var present, wantPresent: kv);
            _past = present;
            return run.Logits.AsSpan((ids.Length - 1) * run.Vocab, run.Vocab);
        }

        public void Dispose() => _past = null;
    }

    internal sealed class PastState
    {
        public required Dictionary<string, (float[] Data, long[] Shape)> Values { get; init; }

        public required int Length { get; init; }
    }

    public bool HasKvCache =>
        _graph.G.Input.Any(i => i.Name.StartsWith("past_key_values", StringComparison.Ordinal)) &&
        _graph.G.Output.Any(o => o.Name.StartsWith("present", StringComparison.Ordinal));

    internal EngineOutput RunCore(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint> capture, Interventions iv, PastState? past, out PastState? present, bool wantPresent = false, bool wantLogits = true)
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

            var rowStart = new int[batch];
            for (int b = 0; b < batch; b++)
            {
                rowStart[b] = b * length;
            }

            return new EngineOutput { Activations = acts, Edited = edited, Features = features, Logits = logits, Vocab = vocab, RowStart = rowStart };
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

    // The structure of a run; the interventions were checked by the facade (InterventionChecks), so this only lays them out.
    private RunPlan Plan(IReadOnlyList<HookPoint> capture, Interventions iv, bool kv, bool logits)
    {
        var sites = capture.Distinct().ToArray();
        var resolved = sites.Select(Resolve).ToArray();
        var splices = new List<RunPlan.SpliceSpec>();
        for (int i = 0; i < iv.Splice.Count; i++)
        {
            var s = iv.Splice[i];
            splices.Add(new(s.Site, Resolve(s.Site).Tensor, $"gemmascope.sae{i}", s.Sae.InputSize, s.Sae.FeatureCount, s.Clamp.Count > 0, s.UseErrorTerm, s.CaptureFeatures, s.ExcludeBos));
        }

        var steers = new List<RunPlan.SteerSpec>();
        for (int i = 0; i < iv.Steer.Count; i++)
        {
            var s = iv.Steer[i];
            steers.Add(new(s.Site, Resolve(s.Site).Tensor, $"gemmascope.steer{i}", s.Vector.Length));
        }

        // Callbacks run in graph order: the order of the resolved tensors' producers (ONNX nodes are topologically sorted).
        var hooks = iv.Hooks
            .Select(h => (h.Site, Tensor: Resolve(h.Site).Tensor))
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
            var all = plan.Captures.Concat(plan.Splices.Select(s => Resolve(s.Site)))
                .Concat(plan.Steers.Select(s => Resolve(s.Site)))
                .Concat(plan.Hooks.Select(h => Resolve(h.Site))).ToList();
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
