using System.CommandLine;
using GemmaScope.Cli;
using GemmaScope.Cli.Commands;

// Exit codes (ExitCodes.cs): 0 success, 1 the command failed, 2 the command line was wrong (usage), 3 a malformed input
// file (SAE, checkpoint, tokenizer, ONNX, corpus), 4 the hub or Neuronpedia failed.
var root = new RootCommand("Gemma Scope sparse autoencoders from the command line: catalog, download, inspect, convert, features, explanations.")
{
    ListCommand.Create(),
    DownloadCommand.Create(),
    InfoCommand.Create(),
    ConvertCommand.Create(),
    FeaturesCommand.Create(),
    ExplainCommand.Create(),
    ScanCommand.Create(),
};

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine($"gemmascope: {error.Message}");
    }

    Console.Error.WriteLine("Run 'gemmascope --help' for usage.");
    return ExitCodes.Usage;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
return await parse.InvokeAsync(cancellationToken: cancel.Token);
