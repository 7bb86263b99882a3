using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace GemmaScope.TestSupport;

/// <summary>
/// A Kestrel server on 127.0.0.1 that answers like Neuronpedia: <c>/api/feature/{model}/{source}/{index}</c> from <see cref="Features"/>,
/// and any other path (the bucket layout <c>v1/{model}/{source}/explanations/batch-N.jsonl.gz</c>) from <see cref="Files"/>; missing
/// bucket keys answer 403 as the real bucket does.
/// </summary>
public sealed class FakeNeuronpedia : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<string> _seen = new();

    private FakeNeuronpedia(WebApplication app, string endpoint)
    {
        _app = app;
        Endpoint = endpoint;
    }

    public string Endpoint { get; }

    public ConcurrentDictionary<string, string> Features { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);

    /// <summary>Bodies of files are cut (connection aborted) after this many bytes; -1 never.</summary>
    public int CutAfterBytes { get; set; } = -1;

    public IReadOnlyList<string> Requests => _seen.ToArray();

    public static async Task<FakeNeuronpedia> StartAsync()
    {
        FakeNeuronpedia? server = null;
        var (app, address) = await LoopbackServer.StartAsync(() => server!.HandleAsync);
        server = new FakeNeuronpedia(app, address.Replace("localhost", "127.0.0.1", StringComparison.Ordinal));
        return server;
    }

    /// <summary>gzip of the lines joined by '\n', as the exports are written.</summary>
    public static byte[] Gzip(params string[] lines)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest))
        {
            gz.Write(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        }

        return ms.ToArray();
    }

    public static string Record(string model, string source, object index, string description, string type = "oai_token-act-pair", string explainer = "gpt-4o-mini") =>
        System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["modelId"] = model,
            ["layer"] = source,
            ["index"] = index,
            ["description"] = description,
            ["typeName"] = type,
            ["explanationModelName"] = explainer,
            ["authorId"] = "x",
            ["createdAt"] = "2024-08-01",
        });

    public int Count(string pathContains) => Requests.Count(r => r.Contains(pathContains, StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var path = ctx.Request.Path.Value ?? string.Empty;
        _seen.Enqueue(path);
        if (path.StartsWith("/api/feature/", StringComparison.Ordinal))
        {
            if (Features.TryGetValue(path["/api/feature/".Length..], out var json))
            {
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(json);
            }
            else
            {
                ctx.Response.StatusCode = 404;
            }

            return;
        }

        if (!Files.TryGetValue(path.TrimStart('/'), out var body))
        {
            ctx.Response.StatusCode = 403;
            return;
        }

        ctx.Response.ContentLength = body.Length;
        if (CutAfterBytes >= 0 && CutAfterBytes < body.Length)
        {
            await ctx.Response.Body.WriteAsync(body.AsMemory(0, CutAfterBytes));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
            return;
        }

        await ctx.Response.Body.WriteAsync(body);
    }
}
