namespace GemmaScope.Hf.Tests;

/// <summary>A test class with its own fake hub and temp cache per test (see <see cref="FakeServerTest{TServer}"/>).</summary>
public abstract class HubTestBase() : FakeServerTest<FakeHub>(FakeHub.StartAsync)
{
    /// <summary>The test's fake hub.</summary>
    protected FakeHub Hub => Server;

    /// <summary>Options aimed at <see cref="Hub"/> and a cache in <see cref="FakeServerTest{TServer}.Dir"/> (see <see cref="HubTestData.Options(FakeHub, TempDir, Dictionary{string, string}?)"/>).</summary>
    protected GemmaScopeHubOptions Options(Dictionary<string, string>? env = null) => HubTestData.Options(Hub, Dir, env);
}
