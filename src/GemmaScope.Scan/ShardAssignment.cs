using System.Collections;
using System.Globalization;

namespace GemmaScope.Scan;

/// <summary>
/// Which shard this process runs. In order: <c>--shard i --shards n</c>; Slurm job arrays
/// (<c>SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN</c> of <c>SLURM_ARRAY_TASK_COUNT</c>); Kubernetes Indexed Jobs
/// (<c>JOB_COMPLETION_INDEX</c> of <c>JOB_COMPLETIONS</c>, which Kubernetes does not set: the Job template sets it to
/// <c>spec.completions</c>, or pass <c>--shards</c>); else the whole corpus (0 of 1).
/// </summary>
/// <param name="Index">Shard index.</param>
/// <param name="Count">Shard count.</param>
/// <param name="Source">Where it came from ("flags", "slurm", "kubernetes", "single").</param>
public sealed record ShardAssignment(int Index, int Count, string Source)
{
    /// <summary>Resolves the shard from flags and the environment.</summary>
    /// <param name="shard">--shard.</param>
    /// <param name="shards">--shards.</param>
    /// <param name="environment">Environment variables (default: the process's).</param>
    /// <exception cref="ArgumentException">Half-given flags, unparsable or out-of-range values.</exception>
    public static ShardAssignment Resolve(int? shard, int? shards, IDictionary? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariables();
        string? Env(string name) => environment[name] as string is { Length: > 0 } v ? v : null;
        ShardAssignment result;
        if (shard is not null && shards is not null)
        {
            result = new ShardAssignment(shard.Value, shards.Value, "flags");
        }
        else if (shard is not null)
        {
            throw new ArgumentException("--shard needs --shards.");
        }
        else if (Env("SLURM_ARRAY_TASK_ID") is { } id)
        {
            int min = Env("SLURM_ARRAY_TASK_MIN") is { } m ? Int("SLURM_ARRAY_TASK_MIN", m) : 0;
            int count = shards ?? (Env("SLURM_ARRAY_TASK_COUNT") is { } c ? Int("SLURM_ARRAY_TASK_COUNT", c)
                : throw new ArgumentException("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; pass --shards."));
            result = new ShardAssignment(Int("SLURM_ARRAY_TASK_ID", id) - min, count, "slurm");
        }
        else if (Env("JOB_COMPLETION_INDEX") is { } index)
        {
            int count = shards ?? (Env("JOB_COMPLETIONS") is { } c ? Int("JOB_COMPLETIONS", c)
                : throw new ArgumentException("JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's spec.completions, or pass --shards."));
            result = new ShardAssignment(Int("JOB_COMPLETION_INDEX", index), count, "kubernetes");
        }
        else if (shards is not null)
        {
            throw new ArgumentException("--shards needs --shard (or a Slurm array / Kubernetes Indexed Job environment).");
        }
        else
        {
            result = new ShardAssignment(0, 1, "single");
        }

        if (result.Count < 1 || result.Index < 0 || result.Index >= result.Count)
        {
            throw new ArgumentException($"Shard {result.Index} of {result.Count} (from {result.Source}) is out of range: need 0 ≤ index < count.");
        }

        return result;
    }

    private static int Int(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new ArgumentException($"{name}='{value}' is not an integer.");
}
