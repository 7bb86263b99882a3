using System.Net;
using System.Net.Sockets;
using static GemmaScope.Hf.Tests.HubTestData;

namespace GemmaScope.Hf.Tests;

/// <summary>
/// Issue 20, new-user findings 2 and 3: a hub that cannot be reached, or accepts connections and never answers, fails with
/// the library's own <see cref="HuggingFaceHubException"/> saying what was asked, why ("timed out after N s") and what to
/// do; the metadata timeout is huggingface_hub's HF_HUB_ETAG_TIMEOUT (default 10 s).
/// </summary>
public sealed class HubUnreachableTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TcpListener _silent = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _accepted = [];

    public HubUnreachableTests()
    {
        // accepts every connection and never writes a byte
        _silent.Start();
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var s = await _silent.AcceptSocketAsync();
                    lock (_accepted)
                    {
                        _accepted.Add(s);
                    }
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        });
    }

    public void Dispose()
    {
        _silent.Stop();
        lock (_accepted)
        {
            _accepted.ForEach(s => s.Dispose());
        }

        _dir.Dispose();
    }

    private GemmaScopeHubClient Client(string endpoint, Dictionary<string, string>? env = null) => new(Options(endpoint, _dir, env));

    private string SilentEndpoint => $"http://127.0.0.1:{((IPEndPoint)_silent.LocalEndpoint).Port}";

    [Theory]
    [InlineData(SaeId)]                        // in the catalog: a HEAD request
    [InlineData("layer_20/width_16k/average_l0_9999")]    // outside it: the folder listing first
    public async Task A_hub_that_accepts_and_never_answers_times_out_after_HF_HUB_ETAG_TIMEOUT_and_says_so(string id)
    {
        using var client = Client(SilentEndpoint, new() { ["HF_HUB_ETAG_TIMEOUT"] = "0.5" });
        var e = await Assert.ThrowsAsync<HuggingFaceHubException>(() => client.LoadAsync(Release, id).WaitAsync(Bound));
        Assert.Contains("timed out after 0.5 s", e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_ETAG_TIMEOUT", e.Message, StringComparison.Ordinal);
        Assert.Contains(Repo, e.Message, StringComparison.Ordinal);
        Assert.Contains("HF_HUB_OFFLINE", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SaeId)]
    [InlineData("layer_20/width_16k/average_l0_9999")]
    public async Task A_hub_that_refuses_connections_gives_the_librarys_exception_naming_what_was_asked(string id)
    {
        using var client = Client(LoopbackServer.RefusingEndpoint());
        var e = await Assert.ThrowsAnyAsync<Exception>(() => client.LoadAsync(Release, id).WaitAsync(Bound));
        var hub = Assert.IsType<HuggingFaceHubException>(e);
        Assert.Contains(Repo, hub.Message, StringComparison.Ordinal);
        Assert.Contains(id.Contains("9999", StringComparison.Ordinal) ? "layer_20/width_16k" : id, hub.Message, StringComparison.Ordinal);
        Assert.Contains("HF_ENDPOINT", hub.Message, StringComparison.Ordinal);
        Assert.IsType<HttpRequestException>(hub.InnerException);
    }

    [Fact]
    public void The_metadata_timeout_is_HF_HUB_ETAG_TIMEOUT_default_10_s_like_huggingface_hub()
    {
        AssertTimeoutSetting("HF_HUB_ETAG_TIMEOUT", s => s.MetadataTimeout, (o, t) => o with { MetadataTimeout = t });
    }
}
