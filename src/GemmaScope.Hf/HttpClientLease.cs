using System.Net;

namespace GemmaScope.Hf;

/// <summary>
/// The <see cref="HttpClient"/> behind a <see cref="GemmaScopeHubClient"/> or a <see cref="NeuronpediaClient"/>: one the
/// client made for itself (<see cref="Own"/>, disposed with it) or a caller's (<see cref="Borrow"/>, never disposed here).
/// The one place where the library sets up its own HTTP clients.
/// </summary>
internal readonly struct HttpClientLease : IDisposable
{
    private readonly bool _owned;

    private HttpClientLease(HttpClient client, bool owned)
    {
        Client = client;
        _owned = owned;
    }

    /// <summary>The client to send with.</summary>
    public HttpClient Client { get; }

    /// <summary>
    /// A client of the library's own: pooled connections renewed every 5 minutes (so DNS changes are seen), the bytes as sent
    /// (no automatic decompression) and no overall <see cref="HttpClient.Timeout"/>: each request is timed by its caller (the
    /// hub's metadata and stall timeouts, <see cref="NeuronpediaOptions.Timeout"/>), and downloads of gigabytes must not have one.
    /// </summary>
    /// <param name="followRedirects">
    /// False for the hub: its metadata is on its redirect answers, and it follows redirects itself so that the token is not sent
    /// to other hosts.
    /// </param>
    public static HttpClient Create(bool followRedirects) =>
        new(new SocketsHttpHandler
        {
            AllowAutoRedirect = followRedirects,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

    /// <summary>A client made here (<see cref="Create"/>), disposed by <see cref="Dispose"/>.</summary>
    public static HttpClientLease Own(bool followRedirects) => new(Create(followRedirects), owned: true);

    /// <summary>A caller's client, which <see cref="Dispose"/> leaves alone.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="client"/> is null.</exception>
    public static HttpClientLease Borrow(HttpClient client, string paramName) =>
        new(client ?? throw new ArgumentNullException(paramName), owned: false);

    /// <summary>Disposes the client if it was made here.</summary>
    public void Dispose()
    {
        if (_owned)
        {
            Client.Dispose();
        }
    }
}
