using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace GemmaScope.Scan;

/// <summary>
/// The static dashboard: <c>index.html</c> (search by feature, density and top tokens; data inline, so it works from
/// file:// with no server) and one page per live feature under <c>f/SAE-INDEX/FEATURE.html</c> in SAEDashboard's card
/// layout: density and stats, an SVG histogram, the logit lens, the top examples and the quantile groups with each token
/// highlighted by the feature's activation, and the Neuronpedia link when the SAE's Neuronpedia id is known.
/// </summary>
internal static class Dashboard
{
    private const string Style = """
        body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
        h1{font-size:22px}h2{font-size:17px;margin-top:24px}
        table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;font-size:14px}
        .ctx{font-family:ui-monospace,monospace;font-size:13px;white-space:pre-wrap;margin:3px 0;line-height:1.7}
        .tok{border-radius:3px;padding:1px 0}.peak{outline:2px solid #c40;}
        .pos{color:#06612b}.neg{color:#a4161a}.muted{color:#777}.dead{color:#a4161a}
        input,select{font-size:14px;padding:4px;margin-right:8px}
        .cols{display:flex;gap:40px}
        """;

    public static string Write(string dir, ScanManifest m, List<FeatureRecord> features, List<ExampleRecord> examples, ScanOptions options)
    {
        Directory.CreateDirectory(dir);
        var byFeature = examples.GroupBy(e => (e.Sae, e.Feature)).ToDictionary(g => g.Key, g => g.ToList());
        var saeIndex = m.Saes.Select((s, i) => (s.Name, i)).ToDictionary(x => x.Name, x => x.i);
        var rows = new List<object[]>();
        foreach (var f in features)
        {
            int si = saeIndex[f.Sae];
            byFeature.TryGetValue((f.Sae, f.Feature), out var ex);
            var topTokens = ex is null ? "" : string.Join(" ", ex.Where(e => e.Kind == "top").Take(5).Select(e => e.Tokens[e.Position - e.WindowStart].Trim()).Distinct());
            rows.Add([si, f.Feature, f.FireCount == 0 ? -99.0 : Math.Round(f.Log10Density, 3), f.Max, topTokens, string.Join(" ", f.TopLogitTokens.Take(5).Select(t => t.Trim())), f.Dead ? 1 : 0]);
            if (f.FireCount > 0)
            {
                var page = Path.Combine(dir, "f", si.ToString(CultureInfo.InvariantCulture), f.Feature.ToString(CultureInfo.InvariantCulture) + ".html");
                Directory.CreateDirectory(Path.GetDirectoryName(page)!);
                File.WriteAllText(page, FeaturePage(m, m.Saes[si], f, ex ?? []));
            }
        }

        var data = JsonSerializer.Serialize(new { saes = m.Saes.Select(s => s.Name), rows });
        var index = Path.Combine(dir, "index.html");
        File.WriteAllText(index, $$"""
            <!doctype html><html><head><meta charset="utf-8"><title>Feature dashboard</title><style>{{Style}}</style></head><body>
            <h1>Feature dashboard</h1>
            <p class="muted">{{m.TokensCounted.ToString("N0", CultureInfo.InvariantCulture)}} tokens in {{m.Contexts.ToString("N0", CultureInfo.InvariantCulture)}} contexts of {{m.ContextLength}}; model {{H(Path.GetFileName(m.Model))}}. Dead: log10 density &lt; {{options.DeadLog10Density.ToString(CultureInfo.InvariantCulture)}}.</p>
            <div><input id="q" placeholder="feature number or token text" size="30"> min log10 density <input id="d" type="number" value="-99" step="0.5" style="width:70px">
            <select id="s"></select><select id="o"><option value="f">by feature</option><option value="d">by density</option><option value="m">by max</option></select>
            <label><input id="hd" type="checkbox" checked>hide dead</label></div>
            <p id="n" class="muted"></p>
            <table id="t"><thead><tr><th>SAE</th><th>feature</th><th>log10 density</th><th>max</th><th>top activating tokens</th><th>top logit tokens</th></tr></thead><tbody></tbody></table>
            <script>
            const DATA = {{data}};
            const $ = id => document.getElementById(id);
            for (const [i, s] of DATA.saes.entries()) { const o = document.createElement('option'); o.value = i; o.textContent = s; $('s').appendChild(o); }
            const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
            function render() {
              const q = $('q').value.trim().toLowerCase(), d = parseFloat($('d').value), s = +$('s').value, hd = $('hd').checked;
              let r = DATA.rows.filter(x => x[0] === s && x[2] >= (isNaN(d) ? -99 : d) && !(hd && x[6]) &&
                (q === '' || String(x[1]) === q || x[4].toLowerCase().includes(q) || x[5].toLowerCase().includes(q)));
              const o = $('o').value;
              if (o === 'd') r.sort((a, b) => b[2] - a[2]); else if (o === 'm') r.sort((a, b) => b[3] - a[3]);
              $('n').textContent = r.length + ' features' + (r.length > 500 ? ' (first 500 shown)' : '');
              $('t').tBodies[0].innerHTML = r.slice(0, 500).map(x => `<tr><td>${esc(DATA.saes[x[0]])}</td><td>${x[6] && x[2] < -98 ? x[1] : `<a href="f/${x[0]}/${x[1]}.html">${x[1]}</a>`}</td><td class="${x[6] ? 'dead' : ''}">${x[2] < -98 ? 'never fired' : x[2].toFixed(2)}</td><td>${x[3].toFixed(2)}</td><td>${esc(x[4])}</td><td>${esc(x[5])}</td></tr>`).join('');
            }
            for (const id of ['q', 'd', 's', 'o', 'hd']) $(id).addEventListener('input', render);
            render();
            </script></body></html>
            """);
        return index;
    }

    private static string H(string s) => WebUtility.HtmlEncode(s);

    private static string F(double v, string format = "G4") => v.ToString(format, CultureInfo.InvariantCulture);

    private static string FeaturePage(ScanManifest m, ManifestSae sae, FeatureRecord f, List<ExampleRecord> ex)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<!doctype html><html><head><meta charset=\"utf-8\"><title>{H(sae.Name)} · feature {f.Feature}</title><style>{Style}</style></head><body>");
        sb.Append(CultureInfo.InvariantCulture, $"<p><a href=\"../../index.html\">← index</a></p><h1>{H(sae.Name)} · feature {f.Feature}</h1>");
        if (sae.NeuronpediaId is { } np)
        {
            var url = $"https://www.neuronpedia.org/{np}/{f.Feature}";
            sb.Append(CultureInfo.InvariantCulture, $"<p>Neuronpedia: <a href=\"{H(url)}\">{H(url)}</a></p>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<table><tr><th>density</th><td>{F(f.Density)} (log10 {F(f.Log10Density, "F2")}){(f.Dead ? " <span class=\"dead\">dead</span>" : "")}</td></tr>");
        sb.Append(CultureInfo.InvariantCulture, $"<tr><th>fired on</th><td>{f.FireCount:N0} of {f.Tokens:N0} tokens</td></tr><tr><th>max</th><td>{F(f.Max)}</td></tr><tr><th>mean where active</th><td>{F(f.MeanActive)}</td></tr><tr><th>hook</th><td>{H(sae.Hook)}</td></tr></table>");
        sb.Append("<h2>Activation histogram</h2>").Append(Histogram(f.HistCounts, f.Max));
        if (f.TopLogitTokens.Length > 0)
        {
            sb.Append("<h2>Logit lens</h2><div class=\"cols\"><table><tr><th>promoted</th><th></th></tr>");
            for (int i = 0; i < f.TopLogitTokens.Length; i++)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td class=\"ctx\">{H(Show(f.TopLogitTokens[i]))}</td><td class=\"pos\">{F(f.TopLogitValues[i], "F3")}</td></tr>");
            }

            sb.Append("</table><table><tr><th>suppressed</th><th></th></tr>");
            for (int i = 0; i < f.BottomLogitTokens.Length; i++)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<tr><td class=\"ctx\">{H(Show(f.BottomLogitTokens[i]))}</td><td class=\"neg\">{F(f.BottomLogitValues[i], "F3")}</td></tr>");
            }

            sb.Append("</table></div>");
        }

        sb.Append("<h2>Top activations</h2>");
        foreach (var e in ex.Where(e => e.Kind == "top"))
        {
            sb.Append(Context(e, f.Max));
        }

        var groups = ex.Where(e => e.Kind == "quantile").GroupBy(e => e.QuantileGroup).OrderByDescending(g => g.Key);
        foreach (var g in groups)
        {
            var list = g.ToList();
            sb.Append(CultureInfo.InvariantCulture, $"<h2>Quantile group {g.Key + 1} of {m.QuantileGroups} <span class=\"muted\">({F(list.Min(e => e.Value), "F2")} – {F(list.Max(e => e.Value), "F2")})</span></h2>");
            foreach (var e in list)
            {
                sb.Append(Context(e, f.Max));
            }
        }

        sb.Append("</body></html>");
        return sb.ToString();
    }

    private static string Show(string token) => token.Replace("\n", "↵", StringComparison.Ordinal);

    private static string Context(ExampleRecord e, float max)
    {
        var sb = new StringBuilder("<div class=\"ctx\">");
        sb.Append(CultureInfo.InvariantCulture, $"<span class=\"muted\">{F(e.Value, "F2")} </span>");
        for (int i = 0; i < e.Tokens.Length; i++)
        {
            double a = max > 0 ? Math.Clamp(e.Values[i] / max, 0, 1) : 0;
            bool peak = e.WindowStart + i == e.Position;
            sb.Append(CultureInfo.InvariantCulture, $"<span class=\"tok{(peak ? " peak" : "")}\" style=\"background:rgba(255,110,0,{a:F2})\" title=\"{F(e.Values[i], "F3")}\">{H(Show(e.Tokens[i]))}</span>");
        }

        return sb.Append("</div>").ToString();
    }

    private static string Histogram(long[] counts, float max)
    {
        const int W = 10, Hgt = 120;
        long top = Math.Max(1, counts.Length == 0 ? 1 : counts.Max());
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{(counts.Length * W) + 60}\" height=\"{Hgt + 30}\" role=\"img\" aria-label=\"activation histogram\">");
        for (int i = 0; i < counts.Length; i++)
        {
            double h = (double)counts[i] / top * Hgt;
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{(i * W) + 30}\" y=\"{Hgt - h:F1}\" width=\"{W - 1}\" height=\"{h:F1}\" fill=\"#e8702a\"><title>{F(max * i / counts.Length, "F2")}–{F(max * (i + 1) / counts.Length, "F2")}: {counts[i]}</title></rect>");
        }

        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"30\" y1=\"{Hgt}\" x2=\"{(counts.Length * W) + 30}\" y2=\"{Hgt}\" stroke=\"#444\"/>");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"30\" y=\"{Hgt + 16}\" font-size=\"11\">0</text><text x=\"{(counts.Length * W) + 30}\" y=\"{Hgt + 16}\" font-size=\"11\" text-anchor=\"end\">{F(max, "F2")}</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"26\" y=\"10\" font-size=\"11\" text-anchor=\"end\">{top}</text></svg>");
        return sb.ToString();
    }
}
