using System.Net;
using GemmaScope.Formats;

namespace GemmaScope.Hf;

public sealed partial class GemmaScopeHubClient
{
    /// <summary>The safetensors index of a sharded checkpoint (tensor name -> shard file).</summary>
    internal const string IndexFile = ShardIndex.FileName;

    private const string ConfigFile = "config.json";
    private const string SingleWeightsFile = "model.safetensors";

    // Downloaded when the repository has them; a 404 is remembered in .no_exist/ as huggingface_hub does.
    // tokenizer.model (SentencePiece, 4 MB for Gemma) is what GemmaTokenizer reads when a repository has no tokenizer.json.
    private static readonly string[] OptionalModelFiles = ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model"];

    /// <summary>
    /// Downloads (or finds in the cache) a Hugging Face model checkpoint and returns its local snapshot folder, ready for
    /// <c>GemmaModel.FromPretrained</c>: <c>config.json</c>, <c>model.safetensors.index.json</c> and every shard it names
    /// (or <c>model.safetensors</c> when there is no index), and, when the repository has them, <c>generation_config.json</c>,
    /// <c>tokenizer.json</c>, <c>tokenizer_config.json</c> and <c>tokenizer.model</c>.
    /// </summary>
    /// <remarks>
    /// A branch or tag is resolved to one commit first (one HEAD request) and every file is taken from that commit, so a push
    /// during the download cannot mix two versions. Files already cached at that commit cost no request. Interrupted files are
    /// resumed with <c>Range</c>, LFS files are checked against their SHA-256. Offline (<c>HF_HUB_OFFLINE</c>), or when the hub
    /// cannot be reached, the cached snapshot of the revision is returned if it is complete.
    /// Gemma repositories are gated: accept the licence on <c>https://huggingface.co/{repoId}</c>, then set <c>HF_TOKEN</c>.
    /// </remarks>
    /// <param name="repoId">e.g. <c>google/gemma-2-2b</c>.</param>
    /// <param name="revision">A branch, tag or 40-hex commit; null for <see cref="GemmaScopeHubOptions.Revision"/> (default <c>main</c>).</param>
    /// <param name="progress">Receives the bytes of the whole checkpoint in the cache so far, after each file and during downloads.</param>
    /// <param name="cancellationToken">Cancels; a partial file is kept and resumed by the next call.</param>
    /// <returns>The folder <c>snapshots/&lt;commit&gt;</c> in the cache.</returns>
    /// <exception cref="HuggingFaceHubException">
    /// The hub refused (gated: the message says where to accept the licence; not found; a file the index names is missing),
    /// a download failed or did not verify, the index is malformed, or offline mode lacks files (the message lists them).
    /// </exception>
    public async Task<string> DownloadModelAsync(
        string repoId, string? revision = null, IProgress<ModelDownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        HubCacheLayout.ValidateRepoId(repoId);
        var rev = revision ?? Options.Revision;
        ArgumentException.ThrowIfNullOrWhiteSpace(rev, nameof(revision));
        cancellationToken.ThrowIfCancellationRequested();
        var cache = new HubCacheLayout(CacheDirectory, repoId);
        if (IsOffline)
        {
            return CachedModel(cache, rev, network: null);
        }

        string commit;
        HubFileDownloader.FileMetadata? configMeta = null;
        if (HubRevision.IsCommitHash(rev))
        {
            commit = rev;
        }
        else
        {
            try
            {
                configMeta = await _downloader.HeadAsync(repoId, ConfigFile, rev, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (HubFileDownloader.IsConnectionFailure(e, cancellationToken))
            {
                return CachedModel(cache, rev, e); // like huggingface_hub: unreachable hub, complete cached snapshot -> use it
            }

            commit = configMeta.Commit;
            if (rev != commit)
            {
                cache.WriteRef(rev, commit);
            }
        }

        var run = new ModelDownload(this, cache, repoId, commit, progress);
        await run.PlanAsync(ConfigFile, $"{repoId} has no {ConfigFile}: it is not a transformers model repository", configMeta, cancellationToken).ConfigureAwait(false);
        foreach (var optional in OptionalModelFiles)
        {
            await run.PlanAsync(optional, requiredBecause: null, known: null, cancellationToken).ConfigureAwait(false);
        }

        var index = await run.PlanAsync(IndexFile, requiredBecause: null, known: null, cancellationToken).ConfigureAwait(false);
        if (index is null)
        {
            await run.PlanAsync(SingleWeightsFile, $"{repoId} has neither {IndexFile} nor {SingleWeightsFile}", known: null, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var indexPath = await run.FetchAsync(index, cancellationToken).ConfigureAwait(false);
            foreach (var shard in ReadShardNames(indexPath, repoId))
            {
                await run.PlanAsync(shard, $"{IndexFile} of {repoId} names the shard '{shard}'", known: null, cancellationToken).ConfigureAwait(false);
            }
        }

        await run.FetchAllAsync(cancellationToken).ConfigureAwait(false);
        return cache.SnapshotFolder(commit);
    }

    /// <summary>
    /// The distinct shard files that a <c>model.safetensors.index.json</c> names in its <c>weight_map</c>, ordinal order.
    /// </summary>
    /// <exception cref="HuggingFaceHubException">The index is not JSON, has no <c>weight_map</c> object, or names a shard that is not a safe relative <c>.safetensors</c> path.</exception>
    internal static IReadOnlyList<string> ReadShardNames(string indexPath, string repoId)
    {
        try
        {
            return ShardIndex.Parse(indexPath).Shards;
        }
        catch (CheckpointFormatException e)
        {
            throw new HuggingFaceHubException($"{indexPath} ({IndexFile} of {repoId}): {e.Problem}", innerException: e);
        }
    }

    // The cached snapshot of a revision when it is complete; else an error listing what is missing.
    private string CachedModel(HubCacheLayout cache, string revision, Exception? network)
    {
        var why = network is null
            ? "Offline mode (HF_HUB_OFFLINE or options.Offline)"
            : $"Cannot reach {_downloader.RepoPage(cache.RepoId)}: {_downloader.Reason(network)}";
        var commit = HubRevision.IsCommitHash(revision) ? revision : cache.ReadRef(revision);
        if (commit is null)
        {
            throw new HuggingFaceHubException(
                $"{why}: {cache.RepoId} at revision '{revision}' is not in the cache {CacheDirectory} ({cache.RefPath(revision)} is missing). " +
                "Download it once online, or copy a huggingface_hub cache there." + (network is null ? "" : " " + HubFileDownloader.WhatToDo),
                innerException: network);
        }

        var missing = new List<string>();
        if (!File.Exists(cache.SnapshotPath(commit, ConfigFile)))
        {
            missing.Add(ConfigFile);
        }

        var indexPath = cache.SnapshotPath(commit, IndexFile);
        if (File.Exists(indexPath))
        {
            foreach (var shard in ReadShardNames(indexPath, cache.RepoId))
            {
                if (!File.Exists(cache.SnapshotPath(commit, shard)))
                {
                    missing.Add(shard);
                }
            }
        }
        else if (!File.Exists(cache.SnapshotPath(commit, SingleWeightsFile)))
        {
            missing.Add($"{IndexFile} (or {SingleWeightsFile})");
        }

        var folder = cache.SnapshotFolder(commit);
        if (missing.Count > 0)
        {
            throw new HuggingFaceHubException(
                $"{why}: the cached snapshot {folder} of {cache.RepoId} (revision '{revision}', commit {commit}) lacks " +
                $"{string.Join(", ", missing)}. Download it once online to complete it." + (network is null ? "" : " " + HubFileDownloader.WhatToDo),
                innerException: network);
        }

        return folder;
    }

    /// <summary>One checkpoint download: the files planned (cached or with the hub's metadata), then fetched in order.</summary>
    private sealed class ModelDownload(GemmaScopeHubClient client, HubCacheLayout cache, string repoId, string commit, IProgress<ModelDownloadProgress>? progress)
    {
        private readonly List<Planned> _files = [];
        private long _doneBytes;
        private int _doneFiles;
        private bool _planned; // no reports before the total is known (the index is fetched while planning)

        /// <summary>
        /// Adds a file: cached at the commit, or HEADed. A 404 of an optional file (<paramref name="requiredBecause"/> null) is
        /// remembered in <c>.no_exist/</c> and returns null; of a required one it throws, with the reason in the message.
        /// </summary>
        public async Task<Planned?> PlanAsync(string path, string? requiredBecause, HubFileDownloader.FileMetadata? known, CancellationToken ct)
        {
            var snapshot = cache.SnapshotPath(commit, path);
            if (File.Exists(snapshot))
            {
                return Add(new Planned(path, null, LengthOf(snapshot)) { Local = snapshot });
            }

            if (requiredBecause is null && File.Exists(cache.NoExistPath(commit, path)))
            {
                return null;
            }

            HubFileDownloader.FileMetadata meta;
            try
            {
                meta = known ?? await client._downloader.HeadAsync(repoId, path, commit, ct).ConfigureAwait(false);
            }
            catch (HuggingFaceHubException e) when (e.StatusCode == HttpStatusCode.NotFound && requiredBecause is null)
            {
                cache.MarkNoExist(commit, path);
                return null;
            }
            catch (HuggingFaceHubException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                throw new HuggingFaceHubException($"{requiredBecause}, but the hub has no such file at commit {commit}. {e.Message}", e.StatusCode, e);
            }
            catch (Exception e) when (HubFileDownloader.IsConnectionFailure(e, ct))
            {
                throw new HuggingFaceHubException(
                    $"Lost the hub at {client.Endpoint} while downloading {repoId} (at '{path}', {e.Message}). What was downloaded is kept; call again to go on.",
                    innerException: e);
            }

            return Add(new Planned(path, meta, meta.Size));
        }

        public async Task FetchAllAsync(CancellationToken ct)
        {
            _planned = true;
            Report(_files.Find(f => f.Local is null)?.Path ?? string.Empty); // the first file to download, if any
            foreach (var file in _files)
            {
                if (file.Local is null)
                {
                    await FetchAsync(file, ct).ConfigureAwait(false);
                }
            }
        }

        /// <summary>Downloads one planned file now (the index is needed before the shards can be planned).</summary>
        public async Task<string> FetchAsync(Planned file, CancellationToken ct)
        {
            if (file.Local is { } local)
            {
                return local;
            }

            var relay = progress is null ? null : new Relay(p => Report(file.Path, p.BytesDownloaded));
            file.Local = await client._downloader.FetchAsync(cache, repoId, file.Path, file.Meta!, relay, ct).ConfigureAwait(false);
            _doneBytes += LengthOf(file.Local);
            _doneFiles++;
            Report(file.Path);
            return file.Local;
        }

        private Planned Add(Planned file)
        {
            _files.Add(file);
            if (file.Local is not null)
            {
                _doneBytes += file.Size ?? 0;
                _doneFiles++;
            }

            return file;
        }

        private void Report(string path, long current = 0)
        {
            if (!_planned || progress is null)
            {
                return;
            }

            long? total = 0;
            foreach (var f in _files)
            {
                total = f.Size is long size ? total + size : null;
            }

            progress.Report(new ModelDownloadProgress(repoId, path, _doneBytes + current, total, _doneFiles, _files.Count));
        }

        // The size of the file a snapshot entry points at (the entry is usually a symlink into blobs/).
        private static long LengthOf(string path)
        {
            using var handle = File.OpenHandle(path);
            return RandomAccess.GetLength(handle);
        }
    }

    private sealed record Planned(string Path, HubFileDownloader.FileMetadata? Meta, long? Size)
    {
        public string? Local { get; set; }
    }

    // Reports synchronously on the downloading thread (Progress<T> would post to a captured context, out of order).
    private sealed class Relay(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
