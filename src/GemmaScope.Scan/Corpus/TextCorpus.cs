using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace GemmaScope.Scan;

/// <summary>Which reader a corpus file gets.</summary>
public enum CorpusFormat
{
    /// <summary>By extension: .jsonl/.ndjson/.json → JSONL, .parquet → Parquet, anything else → text.</summary>
    Auto,

    /// <summary>UTF-8 text; each non-empty line is one document.</summary>
    Text,

    /// <summary>JSON Lines; each non-empty line is an object whose text field is one document.</summary>
    JsonLines,

    /// <summary>Parquet; each row's text column is one document (the layout Hugging Face datasets publish).</summary>
    Parquet,
}

/// <summary>One document of a corpus and where it came from.</summary>
/// <param name="Text">The text.</param>
/// <param name="File">The file.</param>
/// <param name="Where">"line N" or "row N" (1-based).</param>
public readonly record struct CorpusDocument(string Text, string File, string Where);

/// <summary>
/// A corpus: files (or folders of files, taken in ordinal name order) read one document at a time, so memory does not
/// grow with the corpus. Strict: text must be valid UTF-8, every JSONL line must be an object with the text field as a
/// string, every Parquet file must have the text column and no null in it; errors name the file and the line or row.
/// </summary>
public sealed class TextCorpus
{
    private readonly string[] _files;

    /// <summary>Opens a corpus over files and folders.</summary>
    /// <param name="paths">Files or folders.</param>
    /// <param name="textField">The JSONL field or Parquet column with the text.</param>
    /// <param name="format">The reader; <see cref="CorpusFormat.Auto"/> picks by extension.</param>
    /// <exception cref="FileNotFoundException">A path does not exist.</exception>
    public TextCorpus(IEnumerable<string> paths, string textField = "text", CorpusFormat format = CorpusFormat.Auto)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var files = new List<string>();
        foreach (var p in paths)
        {
            var full = Path.GetFullPath(p);
            if (Directory.Exists(full))
            {
                var inside = Directory.GetFiles(full, "*", SearchOption.AllDirectories);
                Array.Sort(inside, StringComparer.Ordinal);
                files.AddRange(inside);
            }
            else if (File.Exists(full))
            {
                files.Add(full);
            }
            else
            {
                throw new FileNotFoundException($"Corpus path '{full}' does not exist.", full);
            }
        }

        _files = [.. files];
        TextField = textField;
        Format = format;
    }

    /// <summary>The files, in reading order.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <summary>The JSONL field or Parquet column with the text.</summary>
    public string TextField { get; }

    /// <summary>The reader chosen.</summary>
    public CorpusFormat Format { get; }

    /// <summary>The documents, in order.</summary>
    /// <exception cref="CorpusFormatException">A file is not valid for its format.</exception>
    public IEnumerable<CorpusDocument> Documents()
    {
        foreach (var file in _files)
        {
            var format = Format == CorpusFormat.Auto ? FormatOf(file) : Format;
            var docs = format switch
            {
                CorpusFormat.JsonLines => JsonLines(file),
                CorpusFormat.Parquet => ParquetRows(file),
                _ => TextLines(file),
            };
            foreach (var d in docs)
            {
                yield return d;
            }
        }
    }

    /// <summary>The reader <see cref="CorpusFormat.Auto"/> picks for a file.</summary>
    public static CorpusFormat FormatOf(string file)
    {
        var ext = Path.GetExtension(file).ToLowerInvariant();
        return ext switch
        {
            ".jsonl" or ".ndjson" or ".json" => CorpusFormat.JsonLines,
            ".parquet" => CorpusFormat.Parquet,
            _ => CorpusFormat.Text,
        };
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    // Lines as strictly decoded UTF-8, split on '\n' (a trailing '\r' dropped), numbered from 1; a streaming read.
    private static IEnumerable<(string Text, long Line)> Lines(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        long number = 1;
        bool first = true;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < read; i++)
            {
                if (buffer[i] == (byte)'\n')
                {
                    line.Write(buffer, start, i - start);
                    yield return (Decode(file, line, number, first), number);
                    first = false;
                    line.SetLength(0);
                    number++;
                    start = i + 1;
                }
            }

            line.Write(buffer, start, read - start);
        }

        if (line.Length > 0)
        {
            yield return (Decode(file, line, number, first), number);
        }
    }

    private static string Decode(string file, MemoryStream line, long number, bool first)
    {
        var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
        if (first && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            bytes = bytes[3..];
        }

        if (bytes.Length > 0 && bytes[^1] == (byte)'\r')
        {
            bytes = bytes[..^1];
        }

        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new CorpusFormatException(file, $"line {number}", $"not valid UTF-8 (byte 0x{bytes[Math.Max(0, e.Index)]:X2} at column {e.Index + 1}); convert the file to UTF-8", e);
        }
    }

    private static IEnumerable<CorpusDocument> TextLines(string file)
    {
        foreach (var (text, line) in Lines(file))
        {
            if (text.Length > 0)
            {
                yield return new CorpusDocument(text, file, $"line {line}");
            }
        }
    }

    private IEnumerable<CorpusDocument> JsonLines(string file)
    {
        foreach (var (text, line) in Lines(file))
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            string value;
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    throw new CorpusFormatException(file, $"line {line}", $"expected a JSON object with a '{TextField}' string, got a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}");
                }

                if (!doc.RootElement.TryGetProperty(TextField, out var field))
                {
                    var names = string.Join(", ", doc.RootElement.EnumerateObject().Select(p => p.Name));
                    throw new CorpusFormatException(file, $"line {line}", $"no '{TextField}' field (fields: [{names}]); name the text field with --text-field");
                }

                if (field.ValueKind != JsonValueKind.String)
                {
                    throw new CorpusFormatException(file, $"line {line}", $"field '{TextField}' is a JSON {field.ValueKind.ToString().ToLowerInvariant()}, expected a string");
                }

                value = field.GetString()!;
            }
            catch (JsonException e)
            {
                throw new CorpusFormatException(file, $"line {line}", $"not valid JSON: {e.Message}", e);
            }

            if (value.Length > 0)
            {
                yield return new CorpusDocument(value, file, $"line {line}");
            }
        }
    }

    private IEnumerable<CorpusDocument> ParquetRows(string file)
    {
        ParquetReader reader;
        try
        {
            reader = ParquetReader.CreateAsync(file).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException)
        {
            throw new CorpusFormatException(file, string.Empty, $"not a readable Parquet file: {e.Message}", e);
        }

        try
        {
            var fields = reader.Schema.GetDataFields();
            var field = fields.FirstOrDefault(f => f.Path.ToString() == TextField || f.Name == TextField);
            if (field is null)
            {
                throw new CorpusFormatException(file, string.Empty, $"no column '{TextField}' (columns: [{string.Join(", ", fields.Select(f => f.Path.ToString()))}]); name the text column with --text-field");
            }

            if (field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>))
            {
                throw new CorpusFormatException(file, string.Empty, $"column '{TextField}' holds {field.ClrType.Name}, expected strings");
            }

            long row = 0;
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                string?[] values;
                using (var rg = reader.OpenRowGroupReader(g))
                {
                    values = new string?[rg.RowCount];
                    rg.ReadAsync(field, values.AsMemory()!).AsTask().GetAwaiter().GetResult();
                }

                foreach (var v in values)
                {
                    row++;
                    if (v is null)
                    {
                        throw new CorpusFormatException(file, $"row {row}", $"column '{TextField}' is null");
                    }

                    if (v.Length > 0)
                    {
                        yield return new CorpusDocument(v, file, $"row {row}");
                    }
                }
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
