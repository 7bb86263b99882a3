namespace GemmaScope.TestSupport;

/// <summary>
/// A test class with a fake server and a temp folder of its own: xunit makes one instance per test, so every test starts a
/// fresh server (no files, no requests, no faults set) and a fresh folder, and both are disposed after it.
/// </summary>
/// <typeparam name="TServer">The fake, e.g. <see cref="FakeHub"/> or <see cref="FakeNeuronpedia"/>.</typeparam>
/// <param name="start">Starts the server, e.g. <c>FakeHub.StartAsync</c>.</param>
public abstract class FakeServerTest<TServer>(Func<Task<TServer>> start) : IAsyncLifetime
    where TServer : class, IAsyncDisposable
{
    /// <summary>The test's temp folder.</summary>
    protected TempDir Dir { get; } = new();

    /// <summary>The test's server (started before the test runs).</summary>
    protected TServer Server { get; private set; } = null!;

    /// <summary>Starts the server; an override that sets it up further calls this first.</summary>
    public virtual async Task InitializeAsync() => Server = await start();

    /// <summary>Stops the server and deletes the folder.</summary>
    public virtual async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Dir.Dispose();
    }
}
