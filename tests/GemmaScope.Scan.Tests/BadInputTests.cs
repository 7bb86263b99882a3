using Parquet.Serialization;

namespace GemmaScope.Scan.Tests;

/// <summary>Bad corpora and SAEs fail before anything is written, with the file and the line or row in the message.</summary>
[Collection("scan")]
public sealed class BadInputTests(ScanFixture fx)
{
    private (Exception Error, string Part) Scan(string corpusFile)
    {
        var part = Path.Combine(fx.NewDir("bad"), "part");
        var scan = new FeatureScan(fx.Model, fx.Saes(), new TextCorpus([corpusFile]), ScanFixture.SmallOptions);
        var e = Assert.ThrowsAny<Exception>(() => scan.RunShard(part, 0, 1));
        Assert.False(File.Exists(Path.Combine(part, "_SUCCESS")), "a failed scan left a part marked complete");
        Assert.False(Directory.Exists(part) && Directory.GetDirectories(part, "gen-*").Length > 0, "a failed scan left a state generation");
        return (e, part);
    }

    [Fact]
    public void Empty_corpus()
    {
        var file = Path.Combine(fx.NewDir("empty"), "empty.txt");
        File.WriteAllText(file, "\n\n");
        var (e, _) = Scan(file);
        var c = Assert.IsType<CorpusFormatException>(e);
        Assert.Contains(file, c.Message, StringComparison.Ordinal);
        Assert.Contains("no tokens", c.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Not_utf8_names_the_line()
    {
        var file = Path.Combine(fx.NewDir("latin1"), "latin1.txt");
        File.WriteAllBytes(file, [.. "the cat\nsat on\n"u8, .. "caf"u8, 0xE9, .. " au lait\n"u8]);
        var (e, _) = Scan(file);
        var c = Assert.IsType<CorpusFormatException>(e);
        Assert.Contains($"{file}, line 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("UTF-8", e.Message, StringComparison.Ordinal);
        Assert.Equal(file, c.FilePath);
        Assert.Equal("line 3", c.Field);
    }

    [Fact]
    public void Jsonl_line_without_the_field()
    {
        var file = Path.Combine(fx.NewDir("jsonl"), "docs.jsonl");
        File.WriteAllLines(file, ["{\"text\": \"the cat sat\"}", "", "{\"body\": \"no text here\", \"id\": 2}"]);
        var (e, _) = Scan(file);
        Assert.IsType<CorpusFormatException>(e);
        Assert.Contains($"{file}, line 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("no 'text' field", e.Message, StringComparison.Ordinal);
        Assert.Contains("body", e.Message, StringComparison.Ordinal);
    }

    public sealed class BodyRow
    {
        public string Body { get; set; } = "";
    }

    public sealed class TextRow
    {
        public string? Text { get; set; }
    }

    [Fact]
    public async Task Parquet_without_the_column()
    {
        var file = Path.Combine(fx.NewDir("parquet"), "docs.parquet");
        await ParquetSerializer.SerializeAsync(new[] { new BodyRow { Body = "the cat" } }, file);
        var (e, _) = Scan(file);
        Assert.IsType<CorpusFormatException>(e);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains("no column 'text'", e.Message, StringComparison.Ordinal);
        Assert.Contains("Body", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parquet_and_jsonl_corpora_give_the_text_corpus_result()
    {
        var dir = fx.NewDir("formats");
        var lines = File.ReadAllLines(fx.Corpus).Take(12).ToArray();
        File.WriteAllLines(Path.Combine(dir, "a.txt"), lines);
        File.WriteAllLines(Path.Combine(dir, "b.jsonl"), lines.Select(l => System.Text.Json.JsonSerializer.Serialize(new { id = 1, text = l })));
        await ParquetSerializer.SerializeAsync(lines.Select(l => new TextRow { Text = l }), Path.Combine(dir, "c.parquet"));
        var docs = new[] { "a.txt", "b.jsonl", "c.parquet" }.Select(f => new TextCorpus([Path.Combine(dir, f)], f.EndsWith(".parquet", StringComparison.Ordinal) ? "Text" : "text").Documents().Select(d => d.Text).ToArray()).ToArray();
        Assert.Equal(lines, docs[0]);
        Assert.Equal(lines, docs[1]);
        Assert.Equal(lines, docs[2]);
    }

    [Fact]
    public void Sae_hook_the_model_lacks()
    {
        var e = Assert.Throws<ArgumentException>(() => new FeatureScan(fx.Model, [ScanSae.From(fx.Sae, hook: HookPoint.ResidPost(9))], new TextCorpus([fx.Corpus])));
        Assert.Contains("blocks.9.hook_resid_post", e.Message, StringComparison.Ordinal);
        Assert.Contains(ScanFixture.SaePath, e.Message, StringComparison.Ordinal);
        Assert.Contains("4 layers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cli_reports_the_file_and_line_and_exits_3_as_a_bad_file()
    {
        var dir = fx.NewDir("cli-bad");
        var file = Path.Combine(dir, "docs.jsonl");
        File.WriteAllLines(file, ["{\"text\": \"the cat sat\"}", "{\"txt\": 1}"]);
        var (code, _, err) = ScanFixture.RunCli("scan", "-m", ScanFixture.ModelDir, "--sae", ScanFixture.SaePath + "@" + ScanFixture.SaeHook, "-c", file, "-o", Path.Combine(dir, "out"), "--shard", "0", "--shards", "2");
        Assert.Equal(3, code);
        Assert.Contains($"gemmascope: invalid corpus: {file}, line 2: no 'text' field", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dir, "out", "parts")) && Directory.EnumerateFiles(Path.Combine(dir, "out", "parts"), "_SUCCESS", SearchOption.AllDirectories).Any());
    }
}
