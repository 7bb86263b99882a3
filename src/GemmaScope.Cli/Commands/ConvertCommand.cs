using System.CommandLine;
using GemmaScope.Cli.Output;
using GemmaScope.Onnx;

namespace GemmaScope.Cli.Commands;

/// <summary><c>gemmascope convert params.npz out/</c>: SAELens's layout (sae_weights.safetensors + cfg.json).</summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var input = new Argument<string>("input") { Description = "params.npz, a .safetensors file, or a folder holding one." };
        var output = new Argument<string>("output") { Description = "A folder (receives sae_weights.safetensors and cfg.json), or a path ending in .safetensors." };
        var hook = new Option<string?>("--hook") { Description = "The hook name to record, e.g. blocks.20.hook_resid_post (else the input's, if any)." };
        var model = new Option<string?>("--model-name") { Description = "The model name to record, e.g. gemma-2-2b." };
        var neuronpedia = new Option<string?>("--neuronpedia") { Description = "The Neuronpedia id to record, e.g. gemma-2-2b/20-gemmascope-res-16k." };
        var force = new Option<bool>("--force") { Description = "Overwrite existing output files." };
        var command = new Command("convert", "Convert an SAE to SAELens's safetensors + cfg.json layout.") { input, output, hook, model, neuronpedia, force };
        command.SetAction((p, ct) => ExitCodes.RunAsync(() => Task.FromResult(Run(
            p.GetValue(input)!, p.GetValue(output)!, p.GetValue(hook), p.GetValue(model), p.GetValue(neuronpedia), p.GetValue(force)))));
        return command;
    }

    private static int Run(string input, string output, string? hook, string? modelName, string? neuronpedia, bool force)
    {
        var site = hook is null ? null : UsageException.Hook("--hook", hook);

        var singleFile = output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
        string[] targets = singleFile ? [output] : [Path.Combine(output, "sae_weights.safetensors"), Path.Combine(output, "cfg.json")];
        if (!force && targets.FirstOrDefault(File.Exists) is { } existing)
        {
            throw new IOException($"{existing} exists; pass --force to overwrite it.");
        }

        using var loaded = JumpReLUSae.Load(input);
        var config = loaded.Config with
        {
            HookName = site?.Name ?? loaded.Config.HookName,
            ModelName = modelName ?? loaded.Config.ModelName,
            NeuronpediaId = neuronpedia ?? loaded.Config.NeuronpediaId,
        };
        using var sae = config == loaded.Config ? null : JumpReLUSae.Load(input, new SaeLoadOptions { Config = config });
        (sae ?? loaded).Save(output);
        foreach (var t in targets)
        {
            Console.Out.WriteLine($"wrote {t} ({Units.Bytes(new FileInfo(t).Length)})");
        }

        return ExitCodes.Ok;
    }
}
