namespace GemmaScope.Onnx.Tests;

/// <summary>The package's public surface against its checked-in listing under api/ (see PublicApiListing).</summary>
public class PublicApiTests
{
    [Fact]
    public void Public_API_matches_the_checked_in_listing() => PublicApiListing.AssertMatches(typeof(GemmaScope.Onnx.GemmaModel).Assembly);
}
