using System.Text;

namespace GemmaScope.Formats;

/// <summary>
/// The header of a numpy .npy array: magic "\x93NUMPY", version 1.0 (u16 header length), 2.0 (u32) or 3.0 (u32, UTF-8),
/// then one Python dict literal such as <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2304, 16384), }</c>,
/// padded with spaces and ended by '\n'. Parsed as strictly as numpy's <c>_read_array_header</c>: exactly the three keys,
/// <c>shape</c> a tuple of non-negative ints, <c>fortran_order</c> a bool, at most 10,000 characters, nothing after the dict.
/// </summary>
internal readonly record struct NpyHeader(string Descr, bool FortranOrder, long[] Shape, int DataOffset)
{
    /// <summary>numpy's <c>_MAX_HEADER_SIZE</c>: longer headers are refused as unsafe to evaluate.</summary>
    public const int MaxHeaderChars = 10_000;

    /// <summary>Most bytes <see cref="Parse"/> reads: preamble plus the longest header (3.0 headers are UTF-8, up to 4 bytes a char).</summary>
    public const int MaxHeaderBytes = 12 + (4 * MaxHeaderChars);

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Parses the header at the start of <paramref name="npy"/>; <paramref name="file"/> and <paramref name="member"/> name errors.</summary>
    public static NpyHeader Parse(ReadOnlySpan<byte> npy, string file, string member)
    {
        if (npy.Length < 10 || !npy[..6].SequenceEqual(Magic))
        {
            throw new SaeFormatException(file, member, "not a .npy array (bad magic)", "\\x93NUMPY", npy.Length < 6 ? $"{npy.Length} bytes" : Convert.ToHexString(npy[..6]));
        }

        int major = npy[6], minor = npy[7];
        if (major is not (1 or 2 or 3) || minor != 0)
        {
            throw new SaeFormatException(file, member, "unsupported .npy format version", "1.0, 2.0 or 3.0", $"{major}.{minor}");
        }

        long headerLen;
        int start;
        if (major == 1)
        {
            headerLen = npy[8] | (npy[9] << 8);
            start = 10;
        }
        else
        {
            if (npy.Length < 12)
            {
                throw new SaeFormatException(file, member, "truncated .npy header", ">= 12 bytes", $"{npy.Length} bytes");
            }

            headerLen = BitConverter.ToUInt32(npy.Slice(8, 4));
            start = 12;
        }

        if (headerLen > (major == 3 ? 4 * MaxHeaderChars : MaxHeaderChars))
        {
            throw new SaeFormatException(file, member, ".npy header is longer than numpy reads safely", $"<= {MaxHeaderChars} characters", $"{headerLen} bytes");
        }

        if (start + headerLen > npy.Length)
        {
            throw new SaeFormatException(file, member, "truncated .npy header", $"{start + headerLen} bytes", $"{npy.Length} bytes");
        }

        string text;
        try
        {
            text = (major == 3 ? StrictUtf8 : Encoding.Latin1).GetString(npy.Slice(start, (int)headerLen));
        }
        catch (DecoderFallbackException)
        {
            throw new SaeFormatException(file, member, ".npy 3.0 header is not valid UTF-8");
        }

        if (text.Length > MaxHeaderChars)
        {
            throw new SaeFormatException(file, member, ".npy header is longer than numpy reads safely", $"<= {MaxHeaderChars} characters", $"{text.Length} characters");
        }

        var parser = new DictParser(text, file, member);
        var (descr, fortran, shape) = parser.Parse();
        return new NpyHeader(descr, fortran, shape, start + (int)headerLen);
    }

    /// <summary>At most 60 characters of <paramref name="s"/>, control characters escaped, with its full length when cut.</summary>
    public static string Quote(string s)
    {
        const int Max = 60;
        var sb = new StringBuilder(Max + 32);
        sb.Append('\'');
        foreach (char c in s.AsSpan(0, Math.Min(s.Length, Max)))
        {
            if (c < ' ' || c == 0x7F)
            {
                sb.Append($"\\x{(int)c:x2}");
            }
            else
            {
                sb.Append(c);
            }
        }

        sb.Append('\'');
        if (s.Length > Max)
        {
            sb.Append($"… ({s.Length} characters)");
        }

        return sb.ToString();
    }

    /// <summary>Maps a numpy descr to an element type. bfloat16 arrays written through ml_dtypes appear as void 'V2'.</summary>
    public static (TensorDType DType, bool BigEndian) ParseDescr(string descr, bool uint16IsBFloat16, string file, string member)
    {
        if (descr.Length < 2)
        {
            throw new SaeFormatException(file, member, "unsupported dtype", "<f4, <f2, <f8 or bfloat16", descr);
        }

        char order = descr[0];
        string kind = descr[1..];
        bool big = order == '>' || (order == '!');
        if (order is not ('<' or '>' or '|' or '=' or '!'))
        {
            kind = descr;
            big = !BitConverter.IsLittleEndian;
        }

        if (order == '=')
        {
            big = !BitConverter.IsLittleEndian;
        }

        return kind switch
        {
            "f4" => (TensorDType.Float32, big),
            "f2" => (TensorDType.Float16, big),
            "f8" => (TensorDType.Float64, big),
            "V2" => (TensorDType.BFloat16, big),
            "u2" when uint16IsBFloat16 => (TensorDType.BFloat16, big),
            "u2" => throw new SaeFormatException(file, member,
                "uint16 data is not weights unless declared bfloat16; set SaeLoadOptions.UInt16AsBFloat16 if this file stores bfloat16 bits as uint16",
                "<f4, <f2, <f8 or bfloat16 (V2)", descr),
            _ => throw new SaeFormatException(file, member, "unsupported dtype", "<f4, <f2, <f8 or bfloat16 (V2)", descr),
        };
    }

    /// <summary>
    /// A parser for the Python dict literals numpy writes: string keys, a string, a bool and a tuple of ints, whitespace
    /// between tokens, an optional trailing comma. Anything else (an expression, a comment, a second literal) is an error.
    /// </summary>
    private ref struct DictParser(string text, string file, string member)
    {
        private int _pos;

        public (string Descr, bool Fortran, long[] Shape) Parse()
        {
            string? descr = null;
            bool? fortran = null;
            long[]? shape = null;

            // ast.literal_eval strips leading spaces and tabs; numpy writes none.
            while (Peek() is ' ' or '\t')
            {
                _pos++;
            }

            Expect('{');
            SkipSpace();
            while (Peek() != '}')
            {
                var key = ReadString();
                Expect(':');
                SkipSpace();
                switch (key)
                {
                    case "descr" when descr is null:
                        if (Peek() is not ('\'' or '"'))
                        {
                            throw Fail("structured dtypes are not supported; descr must be a simple type string");
                        }

                        descr = ReadString();
                        break;
                    case "fortran_order" when fortran is null:
                        fortran = ReadBool();
                        break;
                    case "shape" when shape is null:
                        shape = ReadShape();
                        break;
                    case "descr" or "fortran_order" or "shape":
                        throw Fail($"key '{key}' appears twice");
                    default:
                        throw Fail($"unexpected key {Quote(key)}; numpy writes exactly 'descr', 'fortran_order' and 'shape'");
                }

                SkipSpace();
                if (Peek() == ',')
                {
                    _pos++;
                    SkipSpace();
                }
                else if (Peek() != '}')
                {
                    throw Fail($"expected ',' or '}}' at position {_pos}");
                }
            }

            _pos++;

            // numpy pads the dict with spaces to its alignment and ends it with '\n'; nothing else may follow.
            for (int i = _pos; i < text.Length; i++)
            {
                if (text[i] is not (' ' or '\n'))
                {
                    throw Fail($"text after the dict at position {i}");
                }
            }

            if (descr is null || fortran is null || shape is null)
            {
                throw Fail("the header lacks one of 'descr', 'fortran_order', 'shape'");
            }

            return (descr, fortran.Value, shape);
        }

        private readonly char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void SkipSpace()
        {
            // Python's whitespace between tokens inside brackets (implicit line joining).
            while (_pos < text.Length && text[_pos] is ' ' or '\t' or '\n' or '\r' or '\f')
            {
                _pos++;
            }
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (Peek() != c)
            {
                throw Fail($"expected '{c}' at position {_pos}");
            }

            _pos++;
        }

        private string ReadString()
        {
            SkipSpace();
            char q = Peek();
            if (q is not ('\'' or '"'))
            {
                throw Fail($"expected a quoted string at position {_pos}");
            }

            int end = text.IndexOfAny([q, '\\', '\n'], _pos + 1);
            if (end < 0 || text[end] != q)
            {
                throw Fail(end < 0 || text[end] == '\n' ? "unterminated string" : "escape sequences in strings are not supported");
            }

            var s = text.Substring(_pos + 1, end - _pos - 1);
            _pos = end + 1;
            return s;
        }

        private bool ReadBool()
        {
            bool value;
            if (string.CompareOrdinal(text, _pos, "True", 0, 4) == 0)
            {
                _pos += 4;
                value = true;
            }
            else if (string.CompareOrdinal(text, _pos, "False", 0, 5) == 0)
            {
                _pos += 5;
                value = false;
            }
            else
            {
                throw Fail("fortran_order must be True or False");
            }

            if (char.IsAsciiLetterOrDigit(Peek()) || Peek() == '_')
            {
                throw Fail("fortran_order must be True or False");
            }

            return value;
        }

        /// <summary>A tuple: "()", "(n,)" or "(n, m, ...)" with an optional trailing comma. "(n)" is an int, not a tuple.</summary>
        private long[] ReadShape()
        {
            if (Peek() != '(')
            {
                throw Fail($"shape must be a tuple, at position {_pos}");
            }

            _pos++;
            var dims = new List<long>(2);
            bool comma = false;
            while (true)
            {
                SkipSpace();
                if (Peek() == ')')
                {
                    _pos++;
                    if (dims.Count == 1 && !comma)
                    {
                        throw Fail($"shape ({dims[0]}) is an int, not a tuple; a 1-D shape is written ({dims[0]},)");
                    }

                    return [.. dims];
                }

                if (dims.Count > 0 && !comma)
                {
                    throw Fail($"expected ',' or ')' in shape at position {_pos}");
                }

                int s = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos]))
                {
                    _pos++;
                }

                // Python 3 refuses leading zeros ("010"); numpy's Python 2 era files may end ints with 'L'.
                if (s == _pos || (text[s] == '0' && _pos - s > 1) || !long.TryParse(text.AsSpan(s, _pos - s), out long d))
                {
                    throw Fail($"bad shape entry at position {s}: expected a non-negative int below 2^63");
                }

                if (Peek() == 'L')
                {
                    _pos++;
                }

                dims.Add(d);
                SkipSpace();
                comma = Peek() == ',';
                if (comma)
                {
                    _pos++;
                }
                else if (Peek() != ')')
                {
                    throw Fail($"expected ',' or ')' in shape at position {_pos}");
                }
            }
        }

        private readonly SaeFormatException Fail(string why) => new(file, member, "malformed .npy header: " + why, null, Quote(text.TrimEnd()));
    }
}
