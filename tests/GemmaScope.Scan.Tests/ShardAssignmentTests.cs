using System.Collections;

namespace GemmaScope.Scan.Tests;

public sealed class ShardAssignmentTests
{
    [Fact]
    public void Flags_then_slurm_then_kubernetes_then_single()
    {
        var none = new Hashtable();
        Assert.Equal(new ShardAssignment(2, 5, "flags"), ShardAssignment.Resolve(2, 5, new Hashtable { ["SLURM_ARRAY_TASK_ID"] = "9" }));
        Assert.Equal(new ShardAssignment(3, 4, "slurm"), ShardAssignment.Resolve(null, null, new Hashtable { ["SLURM_ARRAY_TASK_ID"] = "13", ["SLURM_ARRAY_TASK_MIN"] = "10", ["SLURM_ARRAY_TASK_COUNT"] = "4" }));
        Assert.Equal(new ShardAssignment(1, 3, "kubernetes"), ShardAssignment.Resolve(null, null, new Hashtable { ["JOB_COMPLETION_INDEX"] = "1", ["JOB_COMPLETIONS"] = "3" }));
        Assert.Equal(new ShardAssignment(1, 6, "kubernetes"), ShardAssignment.Resolve(null, 6, new Hashtable { ["JOB_COMPLETION_INDEX"] = "1" }));
        Assert.Equal(new ShardAssignment(0, 1, "single"), ShardAssignment.Resolve(null, null, none));
    }

    [Fact]
    public void Half_given_or_out_of_range_is_an_error()
    {
        Assert.Throws<ArgumentException>(() => ShardAssignment.Resolve(1, null, new Hashtable()));
        Assert.Throws<ArgumentException>(() => ShardAssignment.Resolve(null, 3, new Hashtable()));
        Assert.Throws<ArgumentException>(() => ShardAssignment.Resolve(3, 3, new Hashtable()));
        Assert.Contains("JOB_COMPLETIONS", Assert.Throws<ArgumentException>(() => ShardAssignment.Resolve(null, null, new Hashtable { ["JOB_COMPLETION_INDEX"] = "0" })).Message, StringComparison.Ordinal);
        Assert.Contains("SLURM_ARRAY_TASK_COUNT", Assert.Throws<ArgumentException>(() => ShardAssignment.Resolve(null, null, new Hashtable { ["SLURM_ARRAY_TASK_ID"] = "0" })).Message, StringComparison.Ordinal);
    }
}
