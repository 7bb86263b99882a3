namespace GemmaScope.Hf;

/// <summary>Progress of one file download, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="RepoId">The repository, e.g. <c>google/gemma-scope-2b-pt-res</c>.</param>
/// <param name="Path">The file in the repository, e.g. <c>layer_20/width_16k/average_l0_71/params.npz</c>.</param>
/// <param name="BytesDownloaded">Bytes on disk so far, including those kept from an earlier, interrupted attempt.</param>
/// <param name="TotalBytes">The file size the hub announced, or null when it did not say.</param>
public readonly record struct DownloadProgress(string RepoId, string Path, long BytesDownloaded, long? TotalBytes);
