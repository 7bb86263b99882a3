namespace GemmaScope.Engine.Tests;

/// <summary>Records copies of the hook points it wants, after an optional edit of the live span (as the reference records them).</summary>
internal sealed class RecordingHooks(Func<HookPoint, bool> wants, HookEdit? edit = null) : IForwardHooks
{
    public Dictionary<string, (float[] Rows, int Width, int KeyPositions)> Seen { get; } = new(StringComparer.Ordinal);

    public List<HookPoint> Order { get; } = [];

    public static RecordingHooks All() => new(_ => true);

    public bool Wants(HookPoint point) => wants(point);

    public void OnHook(HookPoint point, in HookSite site, Span<float> rows)
    {
        Assert.Equal(site.TotalRows * site.Width, rows.Length);
        edit?.Invoke(point, site, rows);
        Seen[point.Name] = (rows.ToArray(), site.Width, site.KeyPositions);
        Order.Add(point);
    }
}

internal delegate void HookEdit(HookPoint point, in HookSite site, Span<float> rows);
