using System.Text;

namespace GemmaScope.Tokenizers.Model;

/// <summary>
/// The encoder: added tokens first (leftmost-longest), then BPE over each text run between them.
/// A run is one "word" (Gemma has no pre-tokenizer), so merges use a priority queue over a linked list
/// of symbols: O(n log n) in the run length instead of rescanning all pairs after every merge.
/// </summary>
internal static class BpeEncoder
{
    /// <summary>Encodes <paramref name="text"/> into <paramref name="output"/> (cleared first).</summary>
    public static void Encode(TokenizerData d, RunCache? cache, ReadOnlySpan<char> text, bool addSpecialTokens, bool normalize, EncodeScratch s, TokenBuffer output)
    {
        output.Clear();
        if (addSpecialTokens)
        {
            foreach (int id in d.PrefixIds)
            {
                output.Add(id, 0, 0);
            }
        }

        // Normalize once: space -> U+2581 is one char for one char, so offsets carry over unchanged.
        s.EnsureText(text.Length);
        Span<char> norm = s.Normalized.AsSpan(0, text.Length);
        if (normalize && d.EscapeSpaces)
        {
            text.Replace(norm, ' ', '\u2581');
        }
        else
        {
            text.CopyTo(norm);
        }

        // HF matches its (non-normalized) added tokens in the raw text; SentencePiece matches its
        // user-defined pieces in the normalized text (so "  " is the piece "▁▁" there).
        ReadOnlySpan<char> matchText = d.Algorithm == MergeAlgorithm.RankedMerges ? text : norm;
        AddedTokenMatcher added = d.Added;
        int segStart = 0;
        for (int i = 0; i < matchText.Length;)
        {
            if (added.MayStart(matchText[i]) && added.TryMatch(matchText, i, out int len, out int id))
            {
                EncodeRun(d, cache, norm, segStart, i, s, output);
                output.Add(id, i, i + len);
                i += len;
                segStart = i;
            }
            else
            {
                i++;
            }
        }

        EncodeRun(d, cache, norm, segStart, text.Length, s, output);
        if (addSpecialTokens)
        {
            foreach (int id in d.SuffixIds)
            {
                output.Add(id, text.Length, text.Length);
            }
        }
    }

    private static void EncodeRun(TokenizerData d, RunCache? cache, ReadOnlySpan<char> norm, int start, int end, EncodeScratch s, TokenBuffer output)
    {
        if (end <= start)
        {
            return;
        }

        bool cacheable = cache is not null && end - start <= RunCache.MaxRunLength;
        if (cacheable && cache!.TryEmit(norm[start..end], start, output))
        {
            return;
        }

        int from = output.Count;
        if (d.Algorithm == MergeAlgorithm.RankedMerges)
        {
            EncodeRankedRun(d, norm, start, end, s, output);
        }
        else
        {
            EncodeScoredRun(d, norm, start, end, s, output);
        }

        if (cacheable)
        {
            cache!.Add(norm[start..end], output, from, start);
        }
    }

    /// <summary>Hugging Face BPE (tokenizers::models::bpe::Word::merge_all) on norm[start, end).</summary>
    private static void EncodeRankedRun(TokenizerData d, ReadOnlySpan<char> norm, int start, int end, EncodeScratch s, TokenBuffer output)
    {
        s.EnsureSymbols(((end - start) * 4) + 1);
        int[] ids = s.Id, st = s.Start, en = s.End;
        int[] bmp = d.BmpToId;
        int n = 0;
        bool lastUnknown = false;
        for (int i = start; i < end;)
        {
            char c = norm[i];
            int len = 1;
            int id;
            if (!char.IsSurrogate(c))
            {
                id = bmp[c];
            }
            else if (char.IsHighSurrogate(c) && i + 1 < end && char.IsLowSurrogate(norm[i + 1]))
            {
                len = 2;
                id = d.Find(norm.Slice(i, 2));
            }
            else
            {
                // A lone surrogate reaches HF as U+FFFD (UTF-16 -> UTF-8 replaces it); do the same.
                id = bmp[0xFFFD];
            }

            if (id >= 0)
            {
                ids[n] = id;
                st[n] = i;
                en[n] = i + len;
                n++;
                lastUnknown = false;
            }
            else
            {
                n = AddBytesOrUnknown(d, norm, i, len, s, n, ref lastUnknown);
            }

            i += len;
        }

        MergeRanked(d.Merges!, s, n);
        for (int k = 0; k >= 0; k = s.Next[k])
        {
            EmitSymbol(d, s, k, output);
        }
    }

    private static void MergeRanked(MergeTable merges, EncodeScratch s, int n)
    {
        int[] ids = s.Id, en = s.End, prev = s.Prev, next = s.Next;

        // pairRank[k] / pairResult[k]: the merge of the pair (k, next[k]) as it is now, -1 when none.
        // Every change to a pair rewrites its entry, so a queued (rank, k) is current exactly when
        // pairRank[k] still equals rank: stale queue entries are skipped without a hash probe.
        int[] pairRank = s.PairRank, pairResult = s.PairResult;
        long[] heap = s.Heap;
        int count = 0;
        for (int k = 0; k < n; k++)
        {
            prev[k] = k - 1;
            next[k] = k + 1;
        }

        next[n - 1] = -1;
        pairRank[n - 1] = -1;
        for (int k = 0; k + 1 < n; k++)
        {
            int r = merges.Find(ids[k], ids[k + 1], out pairResult[k]);
            pairRank[k] = r;
            if (r >= 0)
            {
                heap[count++] = ((long)r << 32) | (uint)k;
            }
        }

        MinHeap.Heapify(heap, count);
        while (count > 0)
        {
            long top = MinHeap.Pop(heap, ref count);
            int pos = (int)top;
            if (pairRank[pos] != (int)(top >> 32))
            {
                continue;
            }

            int right = next[pos];
            ids[pos] = pairResult[pos];
            en[pos] = en[right];
            ids[right] = -1;
            pairRank[right] = -1;
            int after = next[right];
            next[pos] = after;
            pairRank[pos] = -1;
            if (after >= 0)
            {
                prev[after] = pos;
                int r = merges.Find(ids[pos], ids[after], out pairResult[pos]);
                pairRank[pos] = r;
                if (r >= 0)
                {
                    MinHeap.Push(heap, ref count, ((long)r << 32) | (uint)pos);
                }
            }

            int before = prev[pos];
            if (before >= 0)
            {
                int r = merges.Find(ids[before], ids[pos], out pairResult[before]);
                pairRank[before] = r;
                if (r >= 0)
                {
                    MinHeap.Push(heap, ref count, ((long)r << 32) | (uint)before);
                }
            }
        }
    }

    /// <summary>
    /// SentencePiece BPE (bpe_model.cc) on norm[start, end): symbols start as characters, user-defined
    /// pieces are matched before this (they never merge), and the adjacent pair whose concatenation is a
    /// piece with the highest score merges first, leftmost on ties.
    /// </summary>
    private static void EncodeScoredRun(TokenizerData d, ReadOnlySpan<char> norm, int start, int end, EncodeScratch s, TokenBuffer output)
    {
        s.EnsureSymbols(((end - start) * 4) + 1);
        int[] st = s.Start, en = s.End, prev = s.Prev, next = s.Next, ids = s.Id;
        int n = 0;
        for (int i = start; i < end;)
        {
            int len = char.IsHighSurrogate(norm[i]) && i + 1 < end && char.IsLowSurrogate(norm[i + 1]) ? 2 : 1;
            st[n] = i;
            en[n] = i + len;
            ids[n] = 0;
            prev[n] = n - 1;
            next[n] = n + 1;
            n++;
            i += len;
        }

        next[n - 1] = -1;
        int[] scoreRank = d.ScoreRank!;
        long[] heap = s.Heap;
        int count = 0;
        for (int k = 0; k + 1 < n; k++)
        {
            int r = PairRank(d, scoreRank, norm, st[k], en[k + 1]);
            if (r >= 0)
            {
                heap[count++] = ((long)r << 32) | (uint)k;
            }
        }

        MinHeap.Heapify(heap, count);
        while (count > 0)
        {
            long top = MinHeap.Pop(heap, ref count);
            int rank = (int)(top >> 32);
            int pos = (int)top;
            if (ids[pos] < 0)
            {
                continue;
            }

            int right = next[pos];
            if (right < 0 || PairRank(d, scoreRank, norm, st[pos], en[right]) != rank)
            {
                continue;
            }

            en[pos] = en[right];
            ids[right] = -1;
            int after = next[right];
            next[pos] = after;
            if (after >= 0)
            {
                prev[after] = pos;
            }

            int before = prev[pos];
            if (before >= 0)
            {
                int r = PairRank(d, scoreRank, norm, st[before], en[pos]);
                if (r >= 0)
                {
                    MinHeap.Push(heap, ref count, ((long)r << 32) | (uint)before);
                }
            }

            if (after >= 0)
            {
                int r = PairRank(d, scoreRank, norm, st[pos], en[after]);
                if (r >= 0)
                {
                    MinHeap.Push(heap, ref count, ((long)r << 32) | (uint)pos);
                }
            }
        }

        // Resolve each final symbol to its piece; unknown single characters fall back to bytes.
        for (int k = 0; k >= 0; k = next[k])
        {
            ReadOnlySpan<char> piece = norm[st[k]..en[k]];
            int id = d.Find(piece);
            if (id >= 0 && scoreRank[id] >= 0)
            {
                output.Add(id, st[k], en[k]);
            }
            else
            {
                EmitBytes(d, piece, st[k], output);
            }
        }
    }

    private static int PairRank(TokenizerData d, int[] scoreRank, ReadOnlySpan<char> norm, int start, int end)
    {
        int id = d.Find(norm[start..end]);
        return id >= 0 ? scoreRank[id] : -1;
    }

    private static int AddBytesOrUnknown(TokenizerData d, ReadOnlySpan<char> norm, int i, int len, EncodeScratch s, int n, ref bool lastUnknown)
    {
        Span<byte> bytes = stackalloc byte[4];
        int nb = ScalarToUtf8(norm.Slice(i, len), bytes);
        bool ok = d.ByteFallback;
        for (int b = 0; ok && b < nb; b++)
        {
            ok = d.ByteToId[bytes[b]] >= 0;
        }

        if (ok)
        {
            for (int b = 0; b < nb; b++)
            {
                s.Id[n] = d.ByteToId[bytes[b]];
                s.Start[n] = i;
                s.End[n] = b == nb - 1 ? i + len : i;
                n++;
            }

            lastUnknown = false;
            return n;
        }

        if (d.UnknownId < 0)
        {
            throw new InvalidOperationException($"{d.Source}: character U+{(len == 2 ? char.ConvertToUtf32(norm[i], norm[i + 1]) : norm[i]):X4} at {i} is not in the vocabulary, and the tokenizer has no byte fallback and no unknown token.");
        }

        if (lastUnknown && d.FuseUnknown)
        {
            s.End[n - 1] = i + len;
            return n;
        }

        s.Id[n] = d.UnknownId;
        s.Start[n] = i;
        s.End[n] = i + len;
        lastUnknown = true;
        return n + 1;
    }

    /// <summary>UTF-8 of one char or surrogate pair; a lone surrogate becomes U+FFFD's bytes.</summary>
    private static int ScalarToUtf8(ReadOnlySpan<char> scalar, Span<byte> bytes)
    {
        Rune r = scalar.Length == 2 ? new Rune(scalar[0], scalar[1]) : (char.IsSurrogate(scalar[0]) ? Rune.ReplacementChar : new Rune(scalar[0]));
        return r.EncodeToUtf8(bytes);
    }

    private static void EmitSymbol(TokenizerData d, EncodeScratch s, int k, TokenBuffer output)
    {
        int id = s.Id[k];
        int start = s.Start[k], end = s.End[k];

        // A byte token before the last byte of its character: empty span, marked partial.
        bool partial = start == end && d.IdToByte[id] >= 0;
        output.Add(id, start, end, partial);
    }

    private static void EmitBytes(TokenizerData d, ReadOnlySpan<char> piece, int start, TokenBuffer output)
    {
        Span<byte> bytes = stackalloc byte[4];
        for (int i = 0; i < piece.Length;)
        {
            int len = char.IsHighSurrogate(piece[i]) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1]) ? 2 : 1;
            int nb = ScalarToUtf8(piece.Slice(i, len), bytes);
            bool ok = d.ByteFallback;
            for (int b = 0; ok && b < nb; b++)
            {
                ok = d.ByteToId[bytes[b]] >= 0;
            }

            if (ok)
            {
                for (int b = 0; b < nb; b++)
                {
                    bool last = b == nb - 1;
                    output.Add(d.ByteToId[bytes[b]], start + i, last ? start + i + len : start + i, !last);
                }
            }
            else if (d.UnknownId >= 0)
            {
                output.Add(d.UnknownId, start + i, start + i + len);
            }
            else
            {
                throw new InvalidOperationException($"{d.Source}: character at {start + i} is not in the vocabulary, and the tokenizer has no byte fallback and no unknown token.");
            }

            i += len;
        }
    }
}
