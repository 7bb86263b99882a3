using System.Buffers.Binary;
using System.Text;
using GemmaScope.Tokenizers.Model;

namespace GemmaScope.Tokenizers.Loading;

/// <summary>
/// Reads a SentencePiece tokenizer.model (a ModelProto protobuf) with a small varint reader: only the
/// fields that decide the ids are kept (pieces, model type, byte fallback, special ids, normalizer), and
/// options that would change the ids in ways this encoder does not implement are rejected by name.
/// </summary>
internal static class SentencePieceModelLoader
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    private ref struct ProtoReader(ReadOnlySpan<byte> data, string source, string message)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly bool End => _pos >= _data.Length;

        public readonly int Position => _pos;

        public ulong Varint()
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length)
                {
                    throw Truncated();
                }

                byte b = _data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new TokenizerFormatException(source, $"malformed protobuf in {message}: a varint longer than 10 bytes at byte {_pos}.");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong len = Varint();
            if (len > (ulong)(_data.Length - _pos))
            {
                throw Truncated();
            }

            var s = _data.Slice(_pos, (int)len);
            _pos += (int)len;
            return s;
        }

        public uint Fixed32()
        {
            if (_data.Length - _pos < 4)
            {
                throw Truncated();
            }

            uint v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
            _pos += 4;
            return v;
        }

        public (int Field, int Wire) Tag()
        {
            ulong tag = Varint();
            int field = (int)(tag >> 3), wire = (int)(tag & 7);
            if (field == 0 || wire is 3 or 4 or 6 or 7)
            {
                throw new TokenizerFormatException(source, $"not a SentencePiece model: malformed protobuf in {message} at byte {_pos} (field {field}, wire type {wire}).");
            }

            return (field, wire);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1:
                    if (_data.Length - _pos < 8)
                    {
                        throw Truncated();
                    }

                    _pos += 8;
                    break;
                case 2: Bytes(); break;
                case 5: Fixed32(); break;
            }
        }

        private readonly TokenizerFormatException Truncated() =>
            new(source, $"truncated or malformed protobuf: {message} ends inside a field at byte {_pos} of {_data.Length}.");
    }

    public static TokenizerData Load(byte[] data, string source, bool? addBos, bool? addEos)
    {
        if (data.Length == 0)
        {
            throw new TokenizerFormatException(source, "the file is empty, not a SentencePiece model.");
        }

        var pieces = new List<string>(256_000);
        var scores = new List<float>(256_000);
        var types = new List<int>(256_000);
        int modelType = 1; // proto default: UNIGRAM
        bool byteFallback = false;
        int unkId = 0, bosId = 1, eosId = 2, padId = -1; // proto defaults
        bool addDummyPrefix = true, removeExtraWhitespace = true, escapeWhitespace = true, suffixWhitespace = false;
        string normalizerName = "";
        int charsmapLength = 0;
        bool sawTrainer = false;

        var r = new ProtoReader(data, source, "ModelProto");
        while (!r.End)
        {
            var (field, wire) = r.Tag();
            if (field == 1 && wire == 2)
            {
                var p = new ProtoReader(r.Bytes(), source, $"pieces[{pieces.Count}]");
                string piece = "";
                float score = 0;
                int type = Normal;
                while (!p.End)
                {
                    var (f, w) = p.Tag();
                    if (f == 1 && w == 2)
                    {
                        piece = DecodeUtf8(p.Bytes(), source, pieces.Count);
                    }
                    else if (f == 2 && w == 5)
                    {
                        score = BitConverter.UInt32BitsToSingle(p.Fixed32());
                    }
                    else if (f == 3 && w == 0)
                    {
                        type = (int)p.Varint();
                    }
                    else
                    {
                        p.Skip(w);
                    }
                }

                pieces.Add(piece);
                scores.Add(score);
                types.Add(type);
            }
            else if (field == 2 && wire == 2)
            {
                sawTrainer = true;
                var t = new ProtoReader(r.Bytes(), source, "trainer_spec");
                while (!t.End)
                {
                    var (f, w) = t.Tag();
                    switch (f, w)
                    {
                        case (3, 0): modelType = (int)t.Varint(); break;
                        case (24, 0): suffixWhitespace = t.Varint() != 0; break;
                        case (35, 0): byteFallback = t.Varint() != 0; break;
                        case (40, 0): unkId = (int)t.Varint(); break;
                        case (41, 0): bosId = (int)t.Varint(); break;
                        case (42, 0): eosId = (int)t.Varint(); break;
                        case (43, 0): padId = (int)t.Varint(); break;
                        default: t.Skip(w); break;
                    }
                }
            }
            else if (field == 3 && wire == 2)
            {
                var n = new ProtoReader(r.Bytes(), source, "normalizer_spec");
                while (!n.End)
                {
                    var (f, w) = n.Tag();
                    switch (f, w)
                    {
                        case (1, 2): normalizerName = Encoding.UTF8.GetString(n.Bytes()); break;
                        case (2, 2): charsmapLength = n.Bytes().Length; break;
                        case (3, 0): addDummyPrefix = n.Varint() != 0; break;
                        case (4, 0): removeExtraWhitespace = n.Varint() != 0; break;
                        case (5, 0): escapeWhitespace = n.Varint() != 0; break;
                        default: n.Skip(w); break;
                    }
                }
            }
            else
            {
                r.Skip(wire);
            }
        }

        if (pieces.Count == 0)
        {
            throw new TokenizerFormatException(source, "not a SentencePiece model: the ModelProto has no pieces.");
        }

        if (!sawTrainer || modelType != 2)
        {
            string name = modelType switch { 1 => "UNIGRAM", 3 => "WORD", 4 => "CHAR", _ => modelType.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            throw new TokenizerFormatException(source, $"trainer_spec.model_type is {name}, but only a BPE vocabulary (Gemma's) is supported.");
        }

        if (charsmapLength > 0 || addDummyPrefix || removeExtraWhitespace || suffixWhitespace)
        {
            throw new TokenizerFormatException(source,
                $"normalizer '{normalizerName}' (charsmap {charsmapLength} bytes, add_dummy_prefix {addDummyPrefix}, remove_extra_whitespaces {removeExtraWhitespace}, treat_whitespace_as_suffix {suffixWhitespace}) is not supported; Gemma's is identity with all three off.");
        }

        int size = pieces.Count;
        var pieceToId = new Dictionary<string, int>(size, StringComparer.Ordinal);
        var scoreRank = new int[size];
        var isSpecial = new bool[size];
        var userDefined = new List<(string, int)>();
        var mergeable = new List<int>(size);
        for (int id = 0; id < size; id++)
        {
            int type = types[id];
            if (type == Unused)
            {
                throw new TokenizerFormatException(source, $"piece {id} {TokenizerData.Describe(pieces[id])} has type UNUSED, which this tokenizer does not implement.");
            }

            if (type is < Normal or > Byte)
            {
                throw new TokenizerFormatException(source, $"piece {id} {TokenizerData.Describe(pieces[id])} has unknown type {type}.");
            }

            if (!pieceToId.TryAdd(pieces[id], id))
            {
                throw new TokenizerFormatException(source, $"piece {TokenizerData.Describe(pieces[id])} appears twice (ids {pieceToId[pieces[id]]} and {id}).");
            }

            scoreRank[id] = -1;
            if (type is Normal or UserDefined)
            {
                mergeable.Add(id);
            }

            if (type == UserDefined)
            {
                userDefined.Add((pieces[id], id));
            }

            isSpecial[id] = type is Control or Unknown;
        }

        // Priority = rank of the score, highest first; equal scores share a rank so that position breaks the tie, as in SentencePiece.
        mergeable.Sort((a, b) => scores[b].CompareTo(scores[a]));
        for (int i = 0, rank = -1; i < mergeable.Count; i++)
        {
            if (i == 0 || scores[mergeable[i]] != scores[mergeable[i - 1]])
            {
                rank++;
            }

            scoreRank[mergeable[i]] = rank;
        }

        int Check(int id, string what)
        {
            if (id >= size)
            {
                throw new TokenizerFormatException(source, $"trainer_spec.{what} is {id}, outside the {size} pieces.");
            }

            return id;
        }

        bosId = Check(bosId, "bos_id");
        eosId = Check(eosId, "eos_id");
        padId = Check(padId, "pad_id");
        unkId = Check(unkId, "unk_id");
        int[] prefix = (addBos ?? true) && bosId >= 0 ? [bosId] : [];
        int[] suffix = (addEos ?? false) && eosId >= 0 ? [eosId] : [];
        if ((addBos ?? true) && bosId < 0)
        {
            throw new TokenizerFormatException(source, "AddBeginningOfSentence is set, but trainer_spec.bos_id is -1.");
        }

        return new TokenizerData
        {
            Source = source,
            Algorithm = MergeAlgorithm.PieceScores,
            Pieces = [.. pieces],
            PieceToId = pieceToId,
            Added = new AddedTokenMatcher(userDefined),
            IsSpecial = isSpecial,
            ScoreRank = scoreRank,
            UnknownId = unkId,
            FuseUnknown = true,
            ByteFallback = byteFallback,
            EscapeSpaces = escapeWhitespace,
            PrefixIds = prefix,
            SuffixIds = suffix,
            BosId = bosId,
            EosId = eosId,
            PadId = padId,
        }.Seal();
    }

    private static string DecodeUtf8(ReadOnlySpan<byte> bytes, string source, int index)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new TokenizerFormatException(source, $"pieces[{index}] is not valid UTF-8 (not a SentencePiece model?).", e);
        }
    }
}
