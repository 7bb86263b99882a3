namespace GemmaScope.Onnx;

/// <summary>
/// The checks every engine needs before a run with interventions, in one place: widths against the site, an SAE used at
/// its own hook point unless the caller opted in, clamp indices, one splice and one callback per site.
/// </summary>
internal static class InterventionChecks
{
    /// <summary>Throws <see cref="ArgumentException"/> (naming the intervention, both widths or both sites) on the first problem.</summary>
    /// <param name="iv">The interventions.</param>
    /// <param name="width">The width of a site's rows on this model.</param>
    /// <param name="modelPath">For messages.</param>
    public static void Validate(Interventions iv, Func<HookPoint, int> width, string modelPath)
    {
        for (int i = 0; i < iv.Splice.Count; i++)
        {
            var s = iv.Splice[i] ?? throw new ArgumentException($"Splice {i} is null.");
            ArgumentNullException.ThrowIfNull(s.Sae);
            int w = width(s.Site);
            if (s.Sae.InputSize != w)
            {
                throw new ArgumentException(
                    $"Splice {i}: SAE d_in {s.Sae.InputSize} ({s.Sae.HookName ?? "no hook name"}) does not match {s.Site.Name}, whose activations have width {w} " +
                    $"({(s.Site.Kind == HookKind.AttnZ ? "heads × head_dim" : "d_model")}) in '{modelPath}'.");
            }

            CheckOwnSite($"Splice {i}", s.Sae.ToString() ?? "the SAE", s.Sae.HookName, s.Site, s.AllowOtherSite, "SaeSplice.AllowOtherSite");

            foreach (var c in s.Clamp)
            {
                if ((uint)c.Feature >= (uint)s.Sae.FeatureCount)
                {
                    throw new ArgumentOutOfRangeException(nameof(iv), $"Clamp of feature {c.Feature} at {s.Site.Name}: the SAE has {s.Sae.FeatureCount} features.");
                }
            }
        }

        if (iv.Splice.GroupBy(s => s.Site).Any(g => g.Count() > 1))
        {
            throw new ArgumentException("Two SAEs are spliced at the same hook point; splice one per site.");
        }

        for (int i = 0; i < iv.Steer.Count; i++)
        {
            var s = iv.Steer[i];
            int w = width(s.Site);
            if (s.Vector.Length != w)
            {
                throw new ArgumentException(
                    $"Steering {i} ({s.Source ?? "a vector"}{(s.SaeHookName is null ? "" : ", trained on " + s.SaeHookName)}) has {s.Vector.Length} elements; {s.Site.Name} has width {w} in '{modelPath}'.");
            }

            CheckOwnSite($"Steering {i}", s.Source ?? "the vector", s.SaeHookName, s.Site, s.AllowOtherSite, "Steering.AllowOtherSite (steering with { AllowOtherSite = true })");
        }

        var hookSites = iv.Hooks.Select(h => h.Site).ToList();
        if (hookSites.Distinct().Count() != hookSites.Count)
        {
            throw new ArgumentException("Two C# hooks at the same hook point; combine them into one callback.");
        }
    }

    // An SAE that knows its hook point is applied there only, unless the caller opted in to another site.
    private static void CheckOwnSite(string what, string sae, string? saeHookName, HookPoint site, bool allowed, string optIn)
    {
        if (allowed || saeHookName is null || saeHookName == site.Name)
        {
            return;
        }

        throw new ArgumentException(
            $"{what}: {sae} was trained on {saeHookName}, not {site.Name}. Apply it at {saeHookName}, or set {optIn} to use it at {site.Name} anyway.");
    }
}
