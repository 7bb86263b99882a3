using System.Text;

namespace GemmaScope.Formats;

/// <summary>
/// The header of a numpy .npy array: magic "\x93NUMPY", version (1.0: u16 header length; 2.0 and 3.0: u32; 3.0 is UTF-8),
/// then a Python dict literal such as <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2304, 16384), }</c>.
/// </summary>
internal readonly record struct NpyHeader(string Descr, bool FortranOrder, long[] Shape, int DataOffset)
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Parses the header at the start of <paramref name="npy"/>; <paramref name="file"/> and <paramref name="member"/> name errors.</summary>
    public static NpyHeader Parse(ReadOnlySpan<byte> npy, string file, string member)
    {
        if (npy.Length < 10 || !npy[..6].SequenceEqual(Magic))
        {
            throw new SaeFormatException(file, member, "not a .npy array (bad magic)", "\\x93NUMPY", npy.Length < 6 ? $"{npy.Length} bytes" : Convert.ToHexString(npy[..6]));
        }

        int major = npy[6];
        int headerLen, start;
        switch (major)
        {
            case 1:
                headerLen = npy[8] | (npy[9] << 8);
                start = 10;
                break;
            case 2 or 3:
                if (npy.Length < 12)
                {
                    throw new SaeFormatException(file, member, "truncated .npy header");
                }

                long len = BitConverter.ToUInt32(npy.Slice(8, 4));
                if (len > 1 << 20)
                {
                    throw new SaeFormatException(file, member, ".npy header length is implausible", "< 1 MiB", $"{len} bytes");
                }

                headerLen = (int)len;
                start = 12;
                break;
            default:
                throw new SaeFormatException(file, member, "unsupported .npy format version", "1.0, 2.0 or 3.0", $"{major}.{npy[7]}");
        }

        if (start + headerLen > npy.Length)
        {
            throw new SaeFormatException(file, member, "truncated .npy header", $"{start + headerLen} bytes", $"{npy.Length} bytes");
        }

        var text = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(npy.Slice(start, headerLen));
        var parser = new DictParser(text, file, member);
        var (descr, fortran, shape) = parser.Parse();
        return new NpyHeader(descr, fortran, shape, start + headerLen);
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

    /// <summary>A parser for exactly the dict literals numpy writes; anything else is an error, not a guess.</summary>
    private ref struct DictParser(string text, string file, string member)
    {
        private int _pos;

        public (string Descr, bool Fortran, long[] Shape) Parse()
        {
            string? descr = null;
            bool? fortran = null;
            long[]? shape = null;
            Expect('{');
            while (true)
            {
                SkipSpace();
                if (Peek() == '}')
                {
                    _pos++;
                    break;
                }

                var key = ReadString();
                Expect(':');
                switch (key)
                {
                    case "descr":
                        SkipSpace();
                        if (Peek() != '\'' && Peek() != '"')
                        {
                            throw Fail("structured dtypes are not supported; descr must be a simple type string");
                        }

                        descr = ReadString();
                        break;
                    case "fortran_order":
                        fortran = ReadBool();
                        break;
                    case "shape":
                        shape = ReadShape();
                        break;
                    default:
                        throw Fail($"unexpected key '{key}' in .npy header");
                }

                SkipSpace();
                if (Peek() == ',')
                {
                    _pos++;
                }
            }

            if (descr is null || fortran is null || shape is null)
            {
                throw Fail("the .npy header lacks one of 'descr', 'fortran_order', 'shape'");
            }

            return (descr, fortran.Value, shape);
        }

        private readonly char Peek() => _pos < text.Length ? text[_pos] : '\0';

        private void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
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

            int end = text.IndexOf(q, _pos + 1);
            if (end < 0)
            {
                throw Fail("unterminated string");
            }

            var s = text.Substring(_pos + 1, end - _pos - 1);
            _pos = end + 1;
            return s;
        }

        private bool ReadBool()
        {
            SkipSpace();
            if (string.CompareOrdinal(text, _pos, "True", 0, 4) == 0)
            {
                _pos += 4;
                return true;
            }

            if (string.CompareOrdinal(text, _pos, "False", 0, 5) == 0)
            {
                _pos += 5;
                return false;
            }

            throw Fail("fortran_order must be True or False");
        }

        private long[] ReadShape()
        {
            Expect('(');
            var dims = new List<long>(2);
            while (true)
            {
                SkipSpace();
                if (Peek() == ')')
                {
                    _pos++;
                    return [.. dims];
                }

                int s = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos]))
                {
                    _pos++;
                }

                if (s == _pos || !long.TryParse(text.AsSpan(s, _pos - s), out long d))
                {
                    throw Fail($"bad shape entry at position {s}");
                }

                dims.Add(d);
                SkipSpace();
                if (Peek() == ',')
                {
                    _pos++;
                }
                else if (Peek() != ')')
                {
                    throw Fail($"expected ',' or ')' in shape at position {_pos}");
                }
            }
        }

        private readonly SaeFormatException Fail(string why) => new(file, member, "malformed .npy header: " + why, null, text.Trim());
    }
}
