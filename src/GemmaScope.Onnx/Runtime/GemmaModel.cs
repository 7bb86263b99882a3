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
public sealed class GemmaModel : IDisposable
{
    private const string ExternalDataFolderKey = "session.model_external_initializers_file_folder_path";

    private readonly OnnxGraph _graph;
    private readonly HookResolver _resolver;
    private readonly GemmaModelOptions _options;
    private readonly Tokenizer? _tokenizer;
    private readonly ConcurrentDictionary<string, Lazy<InferenceSession>> _sessions = new(StringComparer.Ordinal);
    private bool _disposed;

    private GemmaModel(OnnxGraph graph, Tokenizer? tokenizer, GemmaModelOptions options)
    {
        _graph = graph;
        _tokenizer = tokenizer;
        _options = options;
        _resolver = new HookResolver(graph, options.TensorNames);
        foreach (var required in new[] { "input_ids" })
        {
            if (!graph.IsGraphInput(required))
            {
                throw new InvalidDataException($"'{graph.Path}' has no '{required}' input; inputs: [{string.Join(", ", graph.G.Input.Select(i => i.Name))}].");
            }
        }

        if (!graph.G.Output.Any(o => o.Name == "logits"))
        {
            throw new InvalidDataException($"'{graph.Path}' has no 'logits' output; outputs: [{string.Join(", ", graph.G.Output.Select(o => o.Name))}].");
        }
    }

    /// <summary>The ONNX file this model was loaded from.</summary>
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
    /// <exception cref="InvalidDataException">The file is not ONNX, or not a Gemma 2 decoder graph.</exception>
    public static GemmaModel Load(string modelPath, Tokenizer? tokenizer = null, GemmaModelOptions? options = null)
    {
        var graph = OnnxGraph.Load(Path.GetFullPath(modelPath));
        return new GemmaModel(graph, tokenizer, options ?? new GemmaModelOptions());
    }

    /// <summary>Which tensor of the graph a hook point reads (for diagnostics).</summary>
    public string TensorName(HookPoint site) => _resolver.Resolve(site).Tensor;

    /// <summary>Runs one sequence of token ids and captures the given hook points.</summary>
    public RunResult Run(ReadOnlySpan<int> ids, IReadOnlyList<HookPoint>? capture = null) =>
        RunBatch([ids.ToArray()], capture);

    /// <summary>Tokenizes <paramref name="text"/> (BOS added as Gemma does), runs it and captures the given hook points.</summary>
    public RunResult Run(string text, IReadOnlyList<HookPoint>? capture = null) => RunBatch([text], capture);

    /// <summary>Tokenizes several texts and runs them as one right-padded batch.</summary>
    public RunResult RunBatch(IReadOnlyList<string> texts, IReadOnlyList<HookPoint>? capture = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var ids = new int[texts.Count][];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = Tokenize(texts[i]);
        }

        return RunBatch(ids, capture);
    }

    /// <summary>Runs several sequences of token ids as one right-padded batch.</summary>
    public RunResult RunBatch(IReadOnlyList<int[]> sequences, IReadOnlyList<HookPoint>? capture = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0)
        {
            throw new ArgumentException("At least one sequence is needed.", nameof(sequences));
        }

        var sites = (capture ?? []).Distinct().ToArray();
        var resolved = sites.Select(_resolver.Resolve).ToArray();
        var outputs = new string[sites.Length];
        var session = Session(resolved, outputs);

        int batch = sequences.Count;
        int length = 0;
        for (int b = 0; b < batch; b++)
        {
            if (sequences[b] is null || sequences[b].Length == 0)
            {
                throw new ArgumentException($"Sequence {b} is empty.", nameof(sequences));
            }

            length = Math.Max(length, sequences[b].Length);
        }

        var inputIds = new long[batch * length];
        var mask = new long[batch * length];
        var positions = new long[batch * length];
        for (int b = 0; b < batch; b++)
        {
            var seq = sequences[b];
            for (int t = 0; t < length; t++)
            {
                int k = (b * length) + t;
                inputIds[k] = t < seq.Length ? seq[t] : _options.PadId;
                mask[k] = t < seq.Length ? 1 : 0;
                positions[k] = t;
            }
        }

        var owned = new List<OrtValue>();
        try
        {
            var names = new List<string>();
            var values = new List<OrtValue>();
            long[] shape = [batch, length];
            foreach (var (name, meta) in session.InputMetadata)
            {
                OrtValue v = name switch
                {
                    "input_ids" => OrtValue.CreateTensorValueFromMemory(inputIds, shape),
                    "attention_mask" => OrtValue.CreateTensorValueFromMemory(mask, shape),
                    "position_ids" => OrtValue.CreateTensorValueFromMemory(positions, shape),
                    _ when name.StartsWith("past_key_values", StringComparison.Ordinal) || name.StartsWith("past_", StringComparison.Ordinal) =>
                        EmptyPast(meta, batch),
                    _ => throw new InvalidDataException(
                        $"'{_graph.Path}' has input '{name}' that a Gemma 2 runner does not know how to feed (expected input_ids, attention_mask, position_ids, past_key_values.*)."),
                };
                owned.Add(v);
                names.Add(name);
                values.Add(v);
            }

            var fetch = new List<string>(outputs.Length + 1) { "logits" };
            fetch.AddRange(outputs.Distinct());
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, fetch);

            var logitsValue = results[0];
            var logitsShape = logitsValue.GetTensorTypeAndShape().Shape;
            if (logitsShape.Length != 3 || logitsShape[0] != batch || logitsShape[1] != length)
            {
                throw new InvalidDataException($"'{_graph.Path}': logits have shape [{string.Join(", ", logitsShape)}], expected [{batch}, {length}, vocab].");
            }

            int vocab = checked((int)logitsShape[2]);
            var logits = logitsValue.GetTensorDataAsSpan<float>().ToArray();

            var acts = new Dictionary<HookPoint, (float[] Data, int Width)>();
            for (int i = 0; i < sites.Length; i++)
            {
                var value = results[fetch.IndexOf(outputs[i])];
                var s = value.GetTensorTypeAndShape().Shape;
                long rows = (long)batch * length;
                long count = value.GetTensorTypeAndShape().ElementCount;
                if (s.Length < 2 || s[0] != batch || s[1] != length || count % rows != 0)
                {
                    throw new InvalidDataException(
                        $"Hook {sites[i].Name} (tensor '{resolved[i].Tensor}', found by {resolved[i].Source}) has shape [{string.Join(", ", s)}], expected [{batch}, {length}, …].");
                }

                acts[sites[i]] = (value.GetTensorDataAsSpan<float>().ToArray(), checked((int)(count / rows)));
            }

            var ids = new int[batch][];
            var loss = new float[batch][];
            var scratch = new float[vocab];
            for (int b = 0; b < batch; b++)
            {
                ids[b] = (int[])sequences[b].Clone();
                loss[b] = new float[ids[b].Length - 1];
                CrossEntropy.PerToken(logits.AsSpan(b * length * vocab, ids[b].Length * vocab), vocab, ids[b], loss[b], scratch);
            }

            string[][]? tokens = null;
            if (_tokenizer is not null)
            {
                tokens = new string[batch][];
                for (int b = 0; b < batch; b++)
                {
                    tokens[b] = ids[b].Select(id => _tokenizer.Decode([id]) ?? string.Empty).ToArray();
                }
            }

            return new RunResult(acts, logits, vocab, length, ids, loss, tokens);
        }
        finally
        {
            foreach (var v in owned)
            {
                v.Dispose();
            }
        }
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
                s.Value.Dispose();
            }
        }

        _sessions.Clear();
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

    private InferenceSession Session(ResolvedHook[] hooks, string[] outputNames)
    {
        // The key is the list of tensors exposed; several hook points on one tensor share a session.
        var key = string.Join("\n", hooks.Select(h => h.Tensor).Distinct().Order(StringComparer.Ordinal));
        var lazy = _sessions.GetOrAdd(key, _ => new Lazy<InferenceSession>(() => CreateSession(hooks), LazyThreadSafetyMode.ExecutionAndPublication));
        var session = lazy.Value;
        for (int i = 0; i < hooks.Length; i++)
        {
            outputNames[i] = OutputNameFor(hooks[i]);
        }

        return session;
    }

    private string OutputNameFor(ResolvedHook hook) =>
        _graph.ElementType(hook.Tensor) == (int)global::Onnx.TensorProto.Types.DataType.Float ? hook.Tensor : hook.Tensor + "/gemmascope_cast_f32";

    private InferenceSession CreateSession(ResolvedHook[] hooks)
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
                so.AppendExecutionProvider_CUDA(_options.DeviceId);
            }

            _options.ConfigureSession?.Invoke(so);
            if (hooks.Length == 0)
            {
                return new InferenceSession(_graph.Path, so);
            }

            var edited = _graph.Clone();
            foreach (var h in hooks)
            {
                h.Materialize(edited);
                edited.AddFloatOutput(h.Tensor);
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
