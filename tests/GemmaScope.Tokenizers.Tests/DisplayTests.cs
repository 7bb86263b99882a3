namespace GemmaScope.Tokenizers.Tests;

public class DisplayTests
{
    [Fact]
    public void ToStringNamesTheSourceAndTheVocabulary()
    {
        var json = TestFixtures.Json;
        Assert.Equal($"GemmaTokenizer(tokenizer.json, {json.VocabularySize} ids, BOS added)", json.ToString());
        Assert.StartsWith("GemmaTokenizer(tokenizer.rebuilt.model, ", TestFixtures.Model.ToString(), StringComparison.Ordinal);
        Assert.Contains("SentencePiece model", TestFixtures.Model.ToString(), StringComparison.Ordinal);
    }
}
