using Microsoft.Extensions.DependencyInjection;

namespace GemmaScope.Hf.Tests;

/// <summary>HF_* environment variables are read like huggingface_hub reads them, and options win over them.</summary>
public sealed class SettingsAndServicesTests
{
    private static HubSettings Resolve(Dictionary<string, string> env, GemmaScopeHubOptions? options = null) =>
        HubSettings.Resolve((options ?? new GemmaScopeHubOptions()) with { EnvironmentReader = n => env.GetValueOrDefault(n) });

    [Fact]
    public void Defaults_are_huggingface_co_and_the_home_cache()
    {
        var s = Resolve(new() { ["HOME"] = "/home/u" });

        Assert.Equal(new Uri("https://huggingface.co"), s.Endpoint);
        Assert.Equal("/home/u/.cache/huggingface/hub", s.CacheDirectory);
        Assert.False(s.Offline);
        Assert.Null(s.Token);
        Assert.Equal("main", s.Revision);
    }

    [Fact]
    public void The_cache_folder_follows_HF_HUB_CACHE_then_HF_HOME_then_XDG_CACHE_HOME()
    {
        Assert.Equal("/x/hub", Resolve(new() { ["HOME"] = "/h", ["XDG_CACHE_HOME"] = "/x" }).CacheDirectory.Replace("huggingface/", string.Empty, StringComparison.Ordinal));
        Assert.Equal("/hf/hub", Resolve(new() { ["HOME"] = "/h", ["XDG_CACHE_HOME"] = "/x", ["HF_HOME"] = "/hf" }).CacheDirectory);
        Assert.Equal("/c", Resolve(new() { ["HF_HOME"] = "/hf", ["HF_HUB_CACHE"] = "/c" }).CacheDirectory);
        Assert.Equal("/o", Resolve(new() { ["HF_HUB_CACHE"] = "/c" }, new() { CacheDirectory = "/o" }).CacheDirectory);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("true", true)]
    [InlineData("YES", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData("false", false)]
    public void HF_HUB_OFFLINE_accepts_huggingface_hub_true_values(string value, bool offline)
    {
        Assert.Equal(offline, Resolve(new() { ["HF_HOME"] = "/hf", ["HF_HUB_OFFLINE"] = value }).Offline);
        Assert.False(Resolve(new() { ["HF_HOME"] = "/hf", ["HF_HUB_OFFLINE"] = value }, new() { Offline = false }).Offline);
    }

    [Fact]
    public void Endpoint_and_token_come_from_options_then_environment_then_the_token_file()
    {
        using var dir = new TempDir();
        File.WriteAllText(Path.Combine(dir.Path, "token"), "hf_from_file\n");

        Assert.Equal("hf_from_file", Resolve(new() { ["HF_HOME"] = dir.Path }).Token);
        Assert.Equal("hf_env", Resolve(new() { ["HF_HOME"] = dir.Path, ["HF_TOKEN"] = "hf_env" }).Token);
        Assert.Equal("hf_opt", Resolve(new() { ["HF_HOME"] = dir.Path, ["HF_TOKEN"] = "hf_env" }, new() { Token = "hf_opt" }).Token);
        Assert.Equal(new Uri("http://mirror.example:8080/hf"), Resolve(new() { ["HF_HOME"] = "/hf", ["HF_ENDPOINT"] = "http://mirror.example:8080/hf/" }).Endpoint);
        Assert.Equal(new Uri("http://o.example"), Resolve(new() { ["HF_HOME"] = "/hf", ["HF_ENDPOINT"] = "http://e.example" }, new() { Endpoint = "http://o.example" }).Endpoint);
    }

    [Fact]
    public void Bad_settings_are_refused_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => Resolve(new() { ["HF_HOME"] = "/hf", ["HF_ENDPOINT"] = "huggingface.co" }));
        Assert.Contains("HF_ENDPOINT", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => Resolve(new() { ["HF_HOME"] = "/hf" }, new() { DownloadRetries = -1 }));
        Assert.Throws<ArgumentException>(() => Resolve(new() { ["HF_HOME"] = "/hf" }, new() { Revision = " " }));
    }

    [Fact]
    public void AddGemmaScope_registers_the_options_and_one_client()
    {
        using var dir = new TempDir();
        var services = new ServiceCollection();

        services.AddGemmaScope(o => o with { CacheDirectory = dir.Cache, Offline = true, Endpoint = "http://127.0.0.1:9" });
        using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<GemmaScopeHubClient>();

        Assert.Same(client, provider.GetRequiredService<GemmaScopeHubClient>());
        Assert.Same(provider.GetRequiredService<GemmaScopeHubOptions>(), client.Options);
        Assert.Equal((Path.GetFullPath(dir.Cache), true, new Uri("http://127.0.0.1:9")), (client.CacheDirectory, client.IsOffline, client.Endpoint));
    }
}
