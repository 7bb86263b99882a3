namespace GemmaScope.Tokenizers.Tests;

public class SpansAndDecodeTests
{
    public static IEnumerable<object[]> Both() => [[true], [false]];

    private static GemmaTokenizer Pick(bool json) => json ? TestFixtures.Json : TestFixtures.Model;

    [Theory]
    [MemberData(nameof(Both))]
    public void Decode_of_encode_gives_the_text_back(bool json)
    {
        var t = Pick(json);
        foreach (var (text, _) in TestFixtures.Golden)
        {
            Assert.Equal(text, t.Decode(t.EncodeToIdArray(text)));
            Assert.Equal(text, t.Decode(t.EncodeToIdArray(text, addSpecialTokens: false), skipSpecialTokens: false));
        }
    }

    [Theory]
    [MemberData(nameof(Both))]
    public void Spans_cover_the_text_in_order_without_gaps_or_overlaps(bool json)
    {
        var t = Pick(json);
        foreach (var (text, ids) in TestFixtures.Golden)
        {
            GemmaToken[] tokens = t.EncodeWithSpans(text);
            Assert.Equal(t.EncodeToIdArray(text), tokens.Select(k => k.Id));
            Assert.Equal(2, tokens[0].Id);
            Assert.Equal((0, 0), (tokens[0].Start, tokens[0].End));
            int at = 0;
            foreach (var k in tokens.Skip(1))
            {
                Assert.Equal(at, k.Start);
                Assert.True(k.End >= k.Start);
                at = k.End;
            }

            Assert.Equal(text.Length, at);

            // What a token shows is the text it covers (spaces shown as spaces); byte runs show their
            // character on the last byte token.
            foreach (var k in tokens.Skip(1))
            {
                Assert.Equal(text[k.Start..k.End].Replace('\u2581', ' '), k.Display.Replace('\u2581', ' '));
            }

            Assert.Equal(text.Replace('\u2581', ' '), string.Concat(tokens.Skip(1).Select(k => k.Display)).Replace('\u2581', ' '));
        }
    }

    [Fact]
    public void Byte_fallback_tokens_join_into_their_character()
    {
        // U+1D11E (musical G clef) is not a Gemma piece: it falls back to <0xF0><0x9D><0x84><0x9E>.
        string text = "a\U0001D11Eb";
        GemmaToken[] tokens = TestFixtures.Json.EncodeWithSpans(text, addSpecialTokens: false);
        int[] bytes = tokens.Where(k => TestFixtures.Json.IdToToken(k.Id).StartsWith("<0x", StringComparison.Ordinal)).Select(k => k.Id).ToArray();
        Assert.Equal(["<0xF0>", "<0x9D>", "<0x84>", "<0x9E>"], bytes.Select(TestFixtures.Json.IdToToken));
        var byteTokens = tokens.Where(k => bytes.Contains(k.Id)).ToArray();
        Assert.Equal(["", "", "", "\U0001D11E"], byteTokens.Select(k => k.Display));
        Assert.Equal((1, 3), (byteTokens[^1].Start, byteTokens[^1].End));
        Assert.All(byteTokens[..^1], k => Assert.Equal((1, 1), (k.Start, k.End)));
        Assert.Equal(text, TestFixtures.Json.Decode(tokens.Select(k => k.Id)));
    }

    [Fact]
    public void Display_shows_spaces_and_added_tokens()
    {
        GemmaToken[] tokens = TestFixtures.Json.EncodeWithSpans("<start_of_turn>user\nThe Eiffel");
        Assert.Equal(["<bos>", "<start_of_turn>", "user", "\n", "The", " Eiffel"], tokens.Select(k => k.Display));
        Assert.Equal((0, 15), (tokens[1].Start, tokens[1].End));
    }

    [Fact]
    public void Decode_matches_huggingface_decoder_rules()
    {
        var t = TestFixtures.Json;
        int[] ids = t.EncodeToIdArray("<start_of_turn>user\nhi there");
        Assert.Equal("<bos><start_of_turn>user\nhi there", t.Decode(ids, skipSpecialTokens: false));
        Assert.Equal("user\nhi there", t.Decode(ids, skipSpecialTokens: true));

        // An invalid byte run: one U+FFFD per byte, as HF's ByteFallback decoder does.
        int f0 = t.TokenToId("<0xF0>")!.Value, x41 = t.TokenToId("<0x41>")!.Value, a = t.TokenToId("a")!.Value;
        Assert.Equal("\uFFFD\uFFFDa", t.Decode([f0, f0, a], skipSpecialTokens: false));
        Assert.Equal("Aa", t.Decode([x41, a], skipSpecialTokens: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([256_000], skipSpecialTokens: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Decode([-1], skipSpecialTokens: false));
    }

    [Fact]
    public void Decode_into_a_span_reports_a_short_destination()
    {
        var t = TestFixtures.Json;
        int[] ids = t.EncodeToIdArray("Hello world");
        Span<char> big = stackalloc char[64];
        Assert.Equal(System.Buffers.OperationStatus.Done, t.Decode(ids, big, out int used, out int written));
        Assert.Equal((ids.Length, "Hello world"), (used, big[..written].ToString()));
        Span<char> small = stackalloc char[7];
        Assert.Equal(System.Buffers.OperationStatus.DestinationTooSmall, t.Decode(ids, small, out used, out written));
        Assert.Equal("Hello", small[..written].ToString());
        Assert.Equal(2, used);
    }

    [Fact]
    public void MaxTokenCount_does_not_split_a_character()
    {
        Microsoft.ML.Tokenizers.Tokenizer t = TestFixtures.Json;
        string text = "a\U0001D11Eb";
        var all = t.EncodeToIds(text);
        Assert.Equal(7, all.Count); // bos, a, 4 bytes, b
        var cut = t.EncodeToIds(text, 4, out _, out int consumed);
        Assert.Equal(all.Take(2), cut);
        Assert.Equal(1, consumed);
        cut = t.EncodeToIds(text, 6, out _, out consumed);
        Assert.Equal(all.Take(6), cut);
        Assert.Equal(3, consumed);
    }

    [Fact]
    public void Chat_template_formats_gemma_turns()
    {
        GemmaChatMessage[] chat = [new("user", "  What is 2+2? "), new("assistant", "4"), new("user", "And 3+3?")];
        string text = GemmaChatTemplate.Format(chat);
        Assert.Equal("<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n", text);
        Assert.Equal(text[..^"<start_of_turn>model\n".Length], GemmaChatTemplate.Format(chat, addGenerationPrompt: false));

        int[] ids = TestFixtures.Json.EncodeChat(chat);
        Assert.Equal(2, ids[0]);
        Assert.Equal(1, ids.Count(i => i == 2));
        Assert.Equal([106, 2516, 108], ids[^3..]); // <start_of_turn> model \n
        Assert.Equal(3, ids.Count(i => i == 107));

        Assert.Throws<ArgumentException>(() => GemmaChatTemplate.Format([new("system", "be brief"), new("user", "hi")]));
        Assert.Throws<ArgumentException>(() => GemmaChatTemplate.Format([new("user", "a"), new("user", "b")]));
        Assert.Throws<ArgumentException>(() => GemmaChatTemplate.Format([new("model", "a")]));
        Assert.Throws<ArgumentException>(() => GemmaChatTemplate.Format([new("tool", "a")]));
    }

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public void Batch_pads_with_pad_id_and_masks_padding(PaddingSide side)
    {
        var t = TestFixtures.Json;
        string[] texts = ["The Eiffel Tower is in", "", "Hello"];
        GemmaBatch batch = t.EncodeBatch(texts, side);
        int[][] rows = texts.Select(x => t.EncodeToIdArray(x)).ToArray();
        int len = rows.Max(r => r.Length);
        Assert.Equal((3, len), (batch.BatchSize, batch.SequenceLength));
        for (int i = 0; i < texts.Length; i++)
        {
            int pad = len - rows[i].Length;
            int[] expectIds = side == PaddingSide.Right ? [.. rows[i], .. Enumerable.Repeat(0, pad)] : [.. Enumerable.Repeat(0, pad), .. rows[i]];
            int[] expectMask = side == PaddingSide.Right ? [.. Enumerable.Repeat(1, rows[i].Length), .. Enumerable.Repeat(0, pad)] : [.. Enumerable.Repeat(0, pad), .. Enumerable.Repeat(1, rows[i].Length)];
            Assert.Equal(expectIds, batch.Row(i).ToArray());
            Assert.Equal(expectMask, batch.MaskRow(i).ToArray());
            Assert.Equal(rows[i].Length, batch.Lengths[i]);
        }
    }

    [Fact]
    public void Encoding_is_thread_safe()
    {
        var t = TestFixtures.Json;
        var golden = TestFixtures.Golden;
        Parallel.For(0, 8, _ =>
        {
            for (int rep = 0; rep < 3; rep++)
            {
                foreach (var (text, ids) in golden)
                {
                    Assert.Equal(ids, t.EncodeToIdArray(text));
                }
            }
        });
    }
}

public class RunCacheTests
{
    [Fact]
    public void Cached_and_uncached_encodings_are_identical()
    {
        var cached = GemmaTokenizer.FromTokenizerJson(new MemoryStream(TestFixtures.JsonBytes), new GemmaTokenizerOptions { CacheCapacity = 50 });
        var uncached = GemmaTokenizer.FromTokenizerJson(new MemoryStream(TestFixtures.JsonBytes), new GemmaTokenizerOptions { CacheCapacity = 0 });
        var rng = new Random(7);
        var texts = TestFixtures.Golden.Select(g => g.Text).Concat(Enumerable.Range(0, 200).Select(_ => DifferentialTests.RandomText(rng))).ToList();

        // Twice, so that the second pass reads runs back from the cache (which fills up after 50 runs).
        for (int pass = 0; pass < 2; pass++)
        {
            foreach (string text in texts)
            {
                Assert.Equal(uncached.EncodeWithSpans(text), cached.EncodeWithSpans(text));
            }
        }

        foreach (var (text, ids) in TestFixtures.Golden)
        {
            Assert.Equal(ids, uncached.EncodeToIdArray(text));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => GemmaTokenizer.FromTokenizerJson(new MemoryStream(TestFixtures.JsonBytes), new GemmaTokenizerOptions { CacheCapacity = -1 }));
    }
}
