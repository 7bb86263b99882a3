namespace GemmaScope.Hf.Tests;

/// <summary>The compiled-in catalog against facts from the Gemma Scope paper, Gemma 2 configs and SAELens's pretrained_saes.yaml.</summary>
public sealed class CatalogTests
{
    [Fact]
    public void Gemma_Scope_releases_are_the_SAELens_names_with_their_repositories()
    {
        string[] bases =
        [
            "gemma-scope-2b-pt-res", "gemma-scope-2b-pt-att", "gemma-scope-2b-pt-mlp",
            "gemma-scope-9b-pt-res", "gemma-scope-9b-pt-att", "gemma-scope-9b-pt-mlp",
            "gemma-scope-27b-pt-res", "gemma-scope-9b-it-res",
        ];

        Assert.Equal(
            bases.Append("gemma-scope-2b-pt-transcoders").Concat(bases.Select(b => b + "-canonical")),
            GemmaScopeCatalog.Releases.Where(r => r.ScopeVersion == 1).Select(r => r.Name));
        foreach (var release in GemmaScopeCatalog.Releases.Where(r => r.ScopeVersion == 1))
        {
            var baseName = release.IsCanonical ? release.Name[..^"-canonical".Length] : release.Name;
            Assert.Equal("google/" + baseName, release.RepoId);
        }
    }

    [Theory]
    [InlineData("gemma-scope-2b-pt-res", "gemma-2-2b", SaeSite.ResidualStream, 26, 2304, 2304)]
    [InlineData("gemma-scope-2b-pt-att", "gemma-2-2b", SaeSite.AttentionOutput, 26, 2304, 2048)]
    [InlineData("gemma-scope-2b-pt-mlp", "gemma-2-2b", SaeSite.MlpOutput, 26, 2304, 2304)]
    [InlineData("gemma-scope-9b-pt-res", "gemma-2-9b", SaeSite.ResidualStream, 42, 3584, 3584)]
    [InlineData("gemma-scope-9b-pt-att", "gemma-2-9b", SaeSite.AttentionOutput, 42, 3584, 4096)]
    [InlineData("gemma-scope-9b-pt-mlp-canonical", "gemma-2-9b", SaeSite.MlpOutput, 42, 3584, 3584)]
    [InlineData("gemma-scope-27b-pt-res", "gemma-2-27b", SaeSite.ResidualStream, 46, 4608, 4608)]
    [InlineData("gemma-scope-9b-it-res", "gemma-2-9b-it", SaeSite.ResidualStream, 42, 3584, 3584)]
    public void Release_shapes_match_Gemma_2(string name, string model, SaeSite site, int layers, int dModel, int dIn)
    {
        var r = GemmaScopeCatalog.GetRelease(name);

        Assert.Equal((model, "google/" + model, site, layers, dModel, dIn), (r.ModelName, r.ModelRepoId, r.Site, r.LayerCount, r.ModelDim, r.InputSize));
        Assert.All(r.Saes, s => Assert.Equal(s.Layer is null ? dModel : dIn, s.InputSize));
    }

    // Counts of SAEs per release in SAELens's pretrained_saes.yaml (commit in GemmaScopeCatalog.SaeLensSourceCommit), counted
    // with a separate script; the canonical sets of 2b-pt-res and 9b-pt-res have one alias more here (derived, see the catalog docs).
    [Theory]
    [InlineData("gemma-scope-2b-pt-res", 316)]
    [InlineData("gemma-scope-2b-pt-att", 260)]
    [InlineData("gemma-scope-2b-pt-mlp", 260)]
    [InlineData("gemma-scope-9b-pt-res", 536)]
    [InlineData("gemma-scope-9b-pt-att", 492)]
    [InlineData("gemma-scope-9b-pt-mlp", 492)]
    [InlineData("gemma-scope-27b-pt-res", 18)]
    [InlineData("gemma-scope-9b-it-res", 30)]
    [InlineData("gemma-scope-2b-pt-res-canonical", 58 + 1)]
    [InlineData("gemma-scope-2b-pt-att-canonical", 52)]
    [InlineData("gemma-scope-2b-pt-mlp-canonical", 52)]
    [InlineData("gemma-scope-9b-pt-res-canonical", 90 + 1)]
    [InlineData("gemma-scope-9b-pt-att-canonical", 84)]
    [InlineData("gemma-scope-9b-pt-mlp-canonical", 84)]
    [InlineData("gemma-scope-27b-pt-res-canonical", 3)]
    [InlineData("gemma-scope-9b-it-res-canonical", 6)]
    public void Release_sizes_match_SAELens(string name, int count)
    {
        var r = GemmaScopeCatalog.GetRelease(name);

        Assert.Equal(count, r.Saes.Count);
        Assert.Equal(count, r.SaeIds.Distinct().Count());
    }

    [Fact]
    public void The_issue_example_resolves_to_the_real_file_hook_and_Neuronpedia_id()
    {
        var sae = GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71");
        var alias = GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical");

        Assert.Equal(("google/gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_71/params.npz"), (sae.RepoId, sae.FilePath));
        Assert.Equal(("blocks.20.hook_resid_post", 20, 16384, 2304, 71), (sae.HookName, sae.Layer!.Value, sae.FeatureCount, sae.InputSize, sae.AverageL0));
        Assert.Equal("gemma-2-2b/20-gemmascope-res-16k", sae.NeuronpediaId);
        Assert.Equal(("layer_20/width_16k/canonical", "layer_20/width_16k/average_l0_71"), (alias.Id, alias.Folder));
        Assert.Equal(sae.FilePath, alias.FilePath);
        Assert.True(alias.IsCanonicalAlias);
        Assert.Equal("gemma-2-2b/20-gemmascope-res-16k", alias.NeuronpediaId);
        Assert.Equal(new Uri("https://www.neuronpedia.org/gemma-2-2b/20-gemmascope-res-16k/12345"), alias.NeuronpediaFeatureUrl(12345));
    }

    [Theory]
    [InlineData("gemma-scope-2b-pt-att", "layer_3/width_16k/average_l0_24", "blocks.3.attn.hook_z")]
    [InlineData("gemma-scope-2b-pt-mlp", "layer_3/width_65k/average_l0_18", "blocks.3.hook_mlp_out")]
    [InlineData("gemma-scope-9b-pt-res", "embedding/width_4k/average_l0_7", "hook_embed")]
    [InlineData("gemma-scope-27b-pt-res", "layer_22/width_131k/average_l0_82", "blocks.22.hook_resid_post")]
    public void Hook_names_follow_SAELens(string release, string id, string hook)
    {
        Assert.Equal(hook, GemmaScopeCatalog.GetSae(release, id).HookName);
    }

    [Fact]
    public void Every_canonical_alias_points_at_an_existing_folder_with_N_closest_to_100()
    {
        foreach (var canonical in GemmaScopeCatalog.Releases.Where(r => r.IsCanonical))
        {
            var baseRelease = GemmaScopeCatalog.GetRelease(canonical.Name[..^"-canonical".Length]);
            foreach (var alias in canonical.Saes)
            {
                var folder = alias.Id[..^"/canonical".Length];
                var siblings = baseRelease.Saes.Where(s => s.Id.StartsWith(folder + "/", StringComparison.Ordinal)).Select(s => s.AverageL0).ToList();
                Assert.Contains(alias.AverageL0, siblings);
                Assert.Equal(folder + "/average_l0_" + alias.AverageL0, alias.Folder);
                Assert.Equal(siblings.Min(n => Math.Abs(n - 100)), Math.Abs(alias.AverageL0 - 100));
                Assert.Equal(baseRelease.GetSae(alias.Folder).FeatureCount, alias.FeatureCount);
            }
        }
    }

    [Fact]
    public void SAELens_tie_breaks_are_kept_and_the_two_missing_aliases_are_derived_without_Neuronpedia_ids()
    {
        // 64 and 136 are both 36 from 100; SAELens picked 136 here and 66 (not 134) at layer 23 width 131k.
        Assert.Equal(136, GemmaScopeCatalog.GetSae("gemma-scope-9b-pt-att-canonical", "layer_27/width_16k/canonical").AverageL0);
        Assert.Equal(66, GemmaScopeCatalog.GetSae("gemma-scope-9b-pt-att-canonical", "layer_23/width_131k/canonical").AverageL0);
        var derived = GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res-canonical", "layer_12/width_131k/canonical");
        Assert.Equal((129, (string?)null), (derived.AverageL0, derived.NeuronpediaId));
        Assert.Equal(50, GemmaScopeCatalog.GetSae("gemma-scope-9b-pt-res-canonical", "layer_20/width_262k/canonical").AverageL0);
    }

    [Fact]
    public void The_27B_release_has_only_the_released_layers_10_22_34_at_width_131k()
    {
        var r = GemmaScopeCatalog.GetRelease("gemma-scope-27b-pt-res");

        Assert.Equal([10, 22, 34], r.Layers);
        Assert.Equal(["131k"], r.Widths);
        Assert.Equal("gemma-2-27b/34-gemmascope-res-131k", GemmaScopeCatalog.GetSae("gemma-scope-27b-pt-res-canonical", "layer_34/width_131k/canonical").NeuronpediaId);
    }

    [Fact]
    public void Layers_and_widths_cover_the_paper_grid()
    {
        Assert.Equal(Enumerable.Range(0, 26), GemmaScopeCatalog.GetRelease("gemma-scope-2b-pt-mlp").Layers);
        Assert.Equal(Enumerable.Range(0, 42), GemmaScopeCatalog.GetRelease("gemma-scope-9b-pt-att").Layers);
        Assert.Equal([9, 20, 31], GemmaScopeCatalog.GetRelease("gemma-scope-9b-it-res").Layers);
        Assert.Equal(["4k", "16k", "32k", "65k", "131k", "262k", "524k", "1m"], GemmaScopeCatalog.GetRelease("gemma-scope-2b-pt-res").Widths);
        Assert.Equal(["4k", "16k", "32k", "65k", "131k", "262k", "524k", "1m"], GemmaScopeCatalog.GetRelease("gemma-scope-9b-pt-res").Widths);
        Assert.Equal(["16k", "65k"], GemmaScopeCatalog.GetRelease("gemma-scope-2b-pt-att").Widths);
        Assert.Equal(["16k", "131k"], GemmaScopeCatalog.GetRelease("gemma-scope-9b-pt-mlp").Widths);
        var embedding = GemmaScopeCatalog.GetRelease("gemma-scope-2b-pt-res").Saes.Where(s => s.Site == SaeSite.Embedding).ToList();
        Assert.Equal([6, 21, 44, 111], embedding.Select(s => s.AverageL0));
        Assert.All(embedding, s => Assert.Equal((4096, 2304, (int?)null), (s.FeatureCount, s.InputSize, s.Layer)));
    }

    [Theory]
    [InlineData("4k", 4096)]
    [InlineData("16k", 16384)]
    [InlineData("32k", 32768)]
    [InlineData("65k", 65536)]
    [InlineData("131k", 131072)]
    [InlineData("262k", 262144)]
    [InlineData("524k", 524288)]
    [InlineData("1m", 1048576)]
    public void Width_names_have_their_exact_sizes(string name, int size)
    {
        Assert.Equal(size, SaeWidths.FeatureCount(name));
        Assert.Equal(name, SaeWidths.NameOf(size));
    }

    [Fact]
    public void Neuronpedia_ids_of_non_canonical_SAEs_carry_the_l0_and_are_null_where_Neuronpedia_has_none()
    {
        var withSet = GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res", "layer_5/width_16k/average_l0_143");
        var without = GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_139");

        Assert.Equal("gemma-2-2b/5-gemmascope-res-16k__l0-143", withSet.NeuronpediaId);
        Assert.Null(without.NeuronpediaId);
        Assert.Null(without.NeuronpediaFeatureUrl(0));
        Assert.Equal("gemma-2-9b-it/20-gemmascope-res-131k", GemmaScopeCatalog.GetSae("gemma-scope-9b-it-res-canonical", "layer_20/width_131k/canonical").NeuronpediaId);
        Assert.Equal("gemma-2-9b/7-gemmascope-att-131k", GemmaScopeCatalog.GetSae("gemma-scope-9b-pt-att-canonical", "layer_7/width_131k/canonical").NeuronpediaId);
        Assert.Throws<ArgumentOutOfRangeException>(() => withSet.NeuronpediaFeatureUrl(16384));
        Assert.Throws<ArgumentException>(() => GemmaScopeCatalog.NeuronpediaFeatureUrl("no-slash", 1));
    }

    [Fact]
    public void An_unknown_release_lists_the_closest_release_names()
    {
        var e = Assert.Throws<ArgumentException>(() => GemmaScopeCatalog.GetRelease("gemma-scope-2b-pt-rse"));

        Assert.Contains("'gemma-scope-2b-pt-rse'", e.Message, StringComparison.Ordinal);
        Assert.Contains("gemma-scope-2b-pt-res", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_id_lists_the_closest_ids_and_points_at_the_other_release()
    {
        var typo = Assert.Throws<ArgumentException>(() => GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res", "layer_20/width_16k/average_l0_72"));
        var canonicalInBase = Assert.Throws<ArgumentException>(() => GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res", "layer_20/width_16k/canonical"));
        var l0InCanonical = Assert.Throws<ArgumentException>(() => GemmaScopeCatalog.GetSae("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/average_l0_71"));

        Assert.Contains("layer_20/width_16k/average_l0_71", typo.Message, StringComparison.Ordinal);
        Assert.Contains("'gemma-scope-2b-pt-res-canonical'", canonicalInBase.Message, StringComparison.Ordinal);
        Assert.Contains("'gemma-scope-2b-pt-res'", l0InCanonical.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "", 0)]
    [InlineData("abc", "", 3)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("Gemma", "gemma", 0)]
    [InlineData("average_l0_71", "average_l0_17", 2)]
    public void Edit_distance_is_Levenshtein(string a, string b, int distance)
    {
        Assert.Equal(distance, NameSuggestions.Levenshtein(a, b));
        Assert.Equal(distance, NameSuggestions.Levenshtein(b, a));
    }

    [Fact]
    public void Every_catalog_SAE_names_its_hook_points_as_HookPoints()
    {
        // One vocabulary: the names are Core's HookPoint names, which parse back to the same points.
        var wrong = new List<string>();
        var saes = GemmaScopeCatalog.Releases.SelectMany(r => r.Saes).ToList();
        foreach (var s in saes)
        {
            HookPoint? expectedOut = s.IsTranscoder ? HookPoint.MlpOut(s.Hook.Layer) : null;
            if (s.Hook.Name != s.HookName || HookPoint.Parse(s.HookName) != s.Hook || s.Hook.Layer != (s.Layer ?? 0)
                || (s.Layer is null) != (s.Hook.Kind == HookKind.Embed)
                || s.OutputHook != expectedOut || s.OutputHookName != expectedOut?.Name
                || (s.OutputHookName is not null && HookPoint.Parse(s.OutputHookName) != s.OutputHook))
            {
                wrong.Add($"{s}: {s.Hook} ({s.HookName}) → {s.OutputHook?.ToString() ?? "null"} ({s.OutputHookName ?? "null"})");
            }
        }

        Assert.True(saes.Count > 10000, $"{saes.Count} SAEs");
        Assert.Contains(saes, s => s.IsTranscoder && s.Release.ScopeVersion == 1);
        Assert.Contains(saes, s => s.IsTranscoder && s.Release.ScopeVersion == 2);
        Assert.Empty(wrong);
    }
}
