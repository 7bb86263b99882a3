using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace GemmaScope.Hf;

/// <summary>Registers the Gemma Scope hub client with a DI container.</summary>
public static class GemmaScopeServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="GemmaScopeHubOptions"/> and a singleton <see cref="GemmaScopeHubClient"/> (with its own
    /// <see cref="HttpClient"/>, disposed with the container). Calling it again does not replace earlier registrations.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Adjusts the options, e.g. <c>o =&gt; o with { Offline = true }</c>; null keeps the environment's settings.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    public static IServiceCollection AddGemmaScope(
        this IServiceCollection services, Func<GemmaScopeHubOptions, GemmaScopeHubOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new GemmaScopeHubOptions();
        if (configure is not null)
        {
            options = configure(options) ?? throw new InvalidOperationException("The AddGemmaScope configure callback returned null options.");
        }

        services.TryAddSingleton(options);
        services.TryAddSingleton(sp => new GemmaScopeHubClient(sp.GetRequiredService<GemmaScopeHubOptions>()));
        return services;
    }
}
