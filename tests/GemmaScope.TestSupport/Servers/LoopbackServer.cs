using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace GemmaScope.TestSupport;

/// <summary>Starts a Kestrel app on 127.0.0.1 with an ephemeral port, every request going to one handler (the test fakes' shared start-up).</summary>
public static class LoopbackServer
{
    /// <summary>Starts the app; <paramref name="handler"/> is looked up per request, so it may be set after the app starts.</summary>
    /// <returns>The running app and the address it listens on (e.g. <c>http://127.0.0.1:41234</c>).</returns>
    public static async Task<(WebApplication App, string Address)> StartAsync(Func<Func<HttpContext, Task>> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.Run(ctx => handler()(ctx));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return (app, address);
    }

    /// <summary>An address on 127.0.0.1 where nothing listens (a port just freed), so that connections to it are refused.</summary>
    public static string RefusingEndpoint()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop(); // nothing listens on that port now
        return $"http://127.0.0.1:{port}";
    }
}
