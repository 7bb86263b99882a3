namespace GemmaScope.Hf;

/// <summary>Progress of a whole checkpoint download (<see cref="GemmaScopeHubClient.DownloadModelAsync"/>), summed over its files.</summary>
/// <param name="RepoId">The repository, e.g. <c>google/gemma-2-2b</c>.</param>
/// <param name="File">The file being downloaded now, e.g. <c>model-00001-of-00003.safetensors</c>.</param>
/// <param name="BytesDownloaded">
/// Bytes of the checkpoint's files in the cache so far: files that were already cached, finished files, and the current file's
/// bytes on disk (including those kept from an interrupted attempt).
/// </param>
/// <param name="TotalBytes">The size of all the checkpoint's files, or null when the hub did not announce every size.</param>
/// <param name="FilesDone">Files complete in the cache.</param>
/// <param name="FileCount">Files of the checkpoint (optional files the hub lacks are not counted).</param>
public readonly record struct ModelDownloadProgress(string RepoId, string File, long BytesDownloaded, long? TotalBytes, int FilesDone, int FileCount);
