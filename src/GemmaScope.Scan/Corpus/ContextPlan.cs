using System.IO.Hashing;
using System.Runtime.InteropServices;
using GemmaScope.Tokenizers;

namespace GemmaScope.Scan;

/// <summary>
/// How a corpus becomes batches. The documents' tokens (no BOS) are concatenated into one stream with BOS between
/// documents (SAELens's separator); the stream is cut into contexts of ContextLength − 1 tokens, each prefixed with BOS
/// (the last context may be shorter); contexts are grouped into fixed batches of BatchSize. A shard is a range of whole
/// batches, so every shard count runs exactly the same forward passes and the statistics cannot depend on it.
/// </summary>
internal sealed class ContextPlan
{
    private ContextPlan(long streamTokens, long contexts, long batches, ulong fingerprint, long documents)
    {
        StreamTokens = streamTokens;
        Contexts = contexts;
        Batches = batches;
        Fingerprint = fingerprint;
        Documents = documents;
    }

    public long StreamTokens { get; }

    public long Contexts { get; }

    public long Batches { get; }

    public long Documents { get; }

    /// <summary>XxHash64 of every token id of the stream and the cut: shards and merges check they scanned the same thing.</summary>
    public ulong Fingerprint { get; }

    /// <summary>Tokenizes the whole corpus once to count it (streaming: memory does not grow with it) and validates every file.</summary>
    /// <exception cref="CorpusFormatException">A file is malformed, or the corpus has no tokens.</exception>
    public static ContextPlan Count(TextCorpus corpus, GemmaTokenizer tokenizer, ScanOptions options)
    {
        long tokens = 0, docs = 0;
        var hash = new XxHash64();
        Span<int> header = [options.ContextLength, options.BatchSize];
        hash.Append(MemoryMarshal.AsBytes(header));
        foreach (var ids in Stream(corpus, tokenizer))
        {
            hash.Append(MemoryMarshal.AsBytes(ids.AsSpan()));
            tokens += ids.Length;
            docs++;
        }

        if (tokens == 0)
        {
            var files = corpus.Files.Count == 0 ? "(no files)" : string.Join(", ", corpus.Files);
            throw new CorpusFormatException(corpus.Files.Count == 1 ? corpus.Files[0] : files, string.Empty, "the corpus has no tokens (empty, or only empty lines/texts)");
        }

        long contexts = (tokens + options.ContextLength - 2) / (options.ContextLength - 1);
        long batches = (contexts + options.BatchSize - 1) / options.BatchSize;
        return new ContextPlan(tokens, contexts, batches, hash.GetCurrentHashAsUInt64(), docs);
    }

    /// <summary>Each document's ids as the stream has them: BOS first for every document after the first.</summary>
    private static IEnumerable<int[]> Stream(TextCorpus corpus, GemmaTokenizer tokenizer)
    {
        bool first = true;
        foreach (var doc in corpus.Documents())
        {
            var ids = tokenizer.EncodeToIdArray(doc.Text, addSpecialTokens: false);
            if (ids.Length == 0)
            {
                continue;
            }

            if (!first)
            {
                var withSep = new int[ids.Length + 1];
                withSep[0] = tokenizer.BeginningOfSentenceId;
                ids.CopyTo(withSep, 1);
                ids = withSep;
            }

            first = false;
            yield return ids;
        }
    }

    /// <summary>Batches [start, end): their index and their contexts (BOS + up to ContextLength − 1 stream tokens).</summary>
    public IEnumerable<(long Index, int[][] Contexts)> Read(TextCorpus corpus, GemmaTokenizer tokenizer, ScanOptions options, long start, long end)
    {
        int body = options.ContextLength - 1;
        long firstToken = start * options.BatchSize * body;
        long position = 0;
        var pending = new List<int>(body * 2);
        var batch = new List<int[]>(options.BatchSize);
        long batchIndex = start;
        if (start >= end)
        {
            yield break;
        }

        foreach (var ids in Stream(corpus, tokenizer))
        {
            // Skip whole documents before this shard's first token (they were tokenized to find where it starts).
            if (position + ids.Length <= firstToken)
            {
                position += ids.Length;
                continue;
            }

            int skip = (int)Math.Max(0, firstToken - position);
            position += ids.Length;
            for (int i = skip; i < ids.Length; i++)
            {
                pending.Add(ids[i]);
                if (pending.Count == body)
                {
                    batch.Add(Context(pending, tokenizer));
                    pending.Clear();
                    if (batch.Count == options.BatchSize)
                    {
                        yield return (batchIndex, batch.ToArray());
                        batch.Clear();
                        if (++batchIndex == end)
                        {
                            yield break;
                        }
                    }
                }
            }
        }

        if (pending.Count > 0)
        {
            batch.Add(Context(pending, tokenizer));
        }

        if (batch.Count > 0)
        {
            yield return (batchIndex, batch.ToArray());
        }
    }

    private static int[] Context(List<int> body, GemmaTokenizer tokenizer)
    {
        var c = new int[body.Count + 1];
        c[0] = tokenizer.BeginningOfSentenceId;
        body.CopyTo(c, 1);
        return c;
    }

    /// <summary>Batches of shard <paramref name="shard"/> of <paramref name="shards"/>: [⌊i·B/n⌋, ⌊(i+1)·B/n⌋).</summary>
    public (long Start, long End) ShardRange(int shard, int shards) =>
        ((long)((Int128)shard * Batches / shards), (long)((Int128)(shard + 1) * Batches / shards));

    /// <summary>Corpus tokens (stream tokens, not the BOS of each context) in batches [start, end).</summary>
    public long TokensIn(long start, long end, ScanOptions options)
    {
        long per = (long)options.BatchSize * (options.ContextLength - 1);
        return Math.Min(StreamTokens, end * per) - Math.Min(StreamTokens, start * per);
    }
}

