namespace GemmaScope.Cli.Output;

/// <summary>A plain-text table: left-aligned columns separated by two spaces, a header row.</summary>
internal sealed class Table(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public int Count => _rows.Count;

    public void Add(params string[] cells) => _rows.Add(cells);

    public void Write(TextWriter w)
    {
        var widths = headers.Select(h => h.Length).ToArray();
        foreach (var row in _rows)
        {
            for (var i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        WriteRow(w, headers, widths);
        foreach (var row in _rows)
        {
            WriteRow(w, row, widths);
        }
    }

    private static void WriteRow(TextWriter w, string[] cells, int[] widths)
    {
        for (var i = 0; i < cells.Length; i++)
        {
            w.Write(i == cells.Length - 1 ? cells[i] : cells[i].PadRight(widths[i] + 2));
        }

        w.WriteLine();
    }
}
