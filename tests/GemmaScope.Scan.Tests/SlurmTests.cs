using System.Diagnostics;
using System.Globalization;

namespace GemmaScope.Scan.Tests;

/// <summary>
/// A real one-node Slurm (munged, slurmctld, slurmd started here with state, sockets, ports and logs in a temporary
/// folder, stopped by pid in finally): deploy/slurm/scan.sbatch as a 4-task array, merge.sbatch with
/// --dependency=afterok, and the merged tables byte-equal to a single-process scan.
/// </summary>
[Collection("scan")]
public sealed class SlurmTests(ScanFixture fx)
{
    [RequiresFact("slurmctld", "slurmd", "sbatch", "munged")]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Four_task_array_and_merge_through_sbatch_equal_the_single_process_scan()
    {
        var repo = RepoRoot.Path;
        var tmp = Directory.CreateTempSubdirectory("gemmascope-slurm-").FullName;
        var daemons = new List<Process>();
        try
        {
            File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string state = Dir(tmp, "state"), spool = Dir(tmp, "spool"), logs = Dir(tmp, "logs"), munge = Dir(tmp, "munge");
            File.SetUnixFileMode(munge, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var key = Path.Combine(munge, "munge.key");
            File.WriteAllBytes(key, System.Security.Cryptography.RandomNumberGenerator.GetBytes(1024));
            File.SetUnixFileMode(key, UnixFileMode.UserRead);
            var socket = Path.Combine(munge, "munge.socket");
            daemons.Add(Start(RequiresFactAttribute.Find("munged")!, "-F", "--force", $"--key-file={key}", $"--socket={socket}",
                $"--pid-file={Path.Combine(munge, "munged.pid")}", $"--log-file={Path.Combine(logs, "munged.log")}", $"--seed-file={Path.Combine(munge, "seed")}"));
            WaitFor(() => File.Exists(socket), "munged socket", logs);

            var host = Run("hostname", "-s").Trim();
            int port = 20000 + Random.Shared.Next(20000);
            var conf = Path.Combine(tmp, "slurm.conf");
            File.WriteAllText(conf, string.Create(CultureInfo.InvariantCulture, $"""
                ClusterName=scantest
                SlurmctldHost={host}(127.0.0.1)
                SlurmctldPort={port}
                SlurmdPort={port + 1}
                AuthType=auth/munge
                CredType=cred/munge
                AuthInfo=socket={socket}
                ProctrackType=proctrack/linuxproc
                TaskPlugin=task/none
                JobAcctGatherType=jobacct_gather/none
                SelectType=select/cons_tres
                SelectTypeParameters=CR_Core
                MpiDefault=none
                ReturnToService=2
                SlurmUser=root
                SlurmdUser=root
                MailProg=/bin/true
                StateSaveLocation={state}
                SlurmdSpoolDir={spool}
                SlurmctldLogFile={Path.Combine(logs, "ctld.log")}
                SlurmdLogFile={Path.Combine(logs, "slurmd.log")}
                SlurmctldPidFile={Path.Combine(state, "ctld.pid")}
                SlurmdPidFile={Path.Combine(state, "slurmd.pid")}
                NodeName={host} NodeAddr=127.0.0.1 CPUs={Environment.ProcessorCount} RealMemory=4000 State=UNKNOWN
                PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP

                """));
            Environment.SetEnvironmentVariable("SLURM_CONF", conf);
            daemons.Add(Start(RequiresFactAttribute.Find("slurmctld")!, "-D", "-c", "-f", conf));
            daemons.Add(Start(RequiresFactAttribute.Find("slurmd")!, "-D", "-f", conf));
            WaitFor(() => Run("sinfo", "-h", "-o", "%t").Trim() is "idle" or "mix", "the node to be idle in sinfo", logs);

            var outDir = Path.Combine(tmp, "scan");
            Directory.CreateDirectory(outDir);
            var env = new Dictionary<string, string>
            {
                ["SLURM_CONF"] = conf,
                ["GEMMASCOPE"] = $"dotnet {Path.Combine(ScanFixture.Here, "gemmascope.dll")}",
                ["MODEL"] = ScanFixture.ModelDir,
                ["SAE"] = ScanFixture.SaePath + "@" + ScanFixture.SaeHook,
                ["CORPUS"] = fx.Corpus,
                ["OUT"] = outDir,
                ["SCAN_ARGS"] = "--context 16 --batch 4 --top-k 6 --window 8 --checkpoint-every 2",
            };
            var array = Run(env, "sbatch", "--parsable", "--array=0-3", "-o", Path.Combine(logs, "scan-%a.out"), "--export=ALL", Path.Combine(repo, "deploy", "slurm", "scan.sbatch")).Trim().Split(';')[0];
            var merge = Run(env, "sbatch", "--parsable", $"--dependency=afterok:{array}", "-o", Path.Combine(logs, "merge.out"), "--export=ALL", Path.Combine(repo, "deploy", "slurm", "merge.sbatch")).Trim().Split(';')[0];
            WaitFor(() => Run("squeue", "-h", "-j", $"{array},{merge}").Trim().Length == 0, "the array and the merge to leave the queue", logs, seconds: 400);
            Assert.True(File.Exists(Path.Combine(outDir, "features.parquet")), "merge wrote no features.parquet:\n" + Logs(logs));
            for (int i = 0; i < 4; i++)
            {
                Assert.True(File.Exists(Path.Combine(outDir, "parts", FeatureScan.PartName(i, 4), "_SUCCESS")), $"shard {i} has no _SUCCESS:\n" + Logs(logs));
            }

            var single = fx.NewDir("slurm-single");
            var options = new ScanOptions { ContextLength = 16, BatchSize = 4, TopK = 6, ExampleWindow = 8, CheckpointEveryBatches = 2 };
            new FeatureScan(fx.Model, [ScanSae.From(fx.Sae)], new TextCorpus([fx.Corpus]), options).Run(single);
            TestTables.AssertSameBytes(single, outDir);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SLURM_CONF", null);
            for (int i = daemons.Count - 1; i >= 0; i--)
            {
                Stop(daemons[i]);
            }

            try
            {
                Directory.Delete(tmp, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static string Dir(string root, string name) => Directory.CreateDirectory(Path.Combine(root, name)).FullName;

    private static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    // SIGTERM by pid, then SIGKILL if it lingers.
    private static void Stop(Process p)
    {
        try
        {
            if (!p.HasExited)
            {
                using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(CultureInfo.InvariantCulture)]))
                {
                    kill.WaitForExit();
                }

                if (!p.WaitForExit(10_000))
                {
                    p.Kill();
                    p.WaitForExit();
                }
            }
        }
        catch (InvalidOperationException)
        {
        }
        finally
        {
            p.Dispose();
        }
    }

    private static string Run(string file, params string[] args) => Run(null, file, args);

    private static string Run(Dictionary<string, string>? env, string file, params string[] args) =>
        ProcessRunner.Check(RequiresFactAttribute.Find(file) ?? file, args, env);

    private static void WaitFor(Func<bool> condition, string what, string logs, int seconds = 60)
    {
        var clock = Stopwatch.StartNew();
        string last = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            try
            {
                if (condition())
                {
                    return;
                }
            }
            catch (InvalidOperationException e)
            {
                last = e.Message;
            }

            Thread.Sleep(250);
        }

        throw new TimeoutException($"waited {seconds} s for {what}. {last}\n{Logs(logs)}");
    }

    private static string Logs(string dir) => string.Join("\n", Directory.GetFiles(dir).Select(f => $"--- {Path.GetFileName(f)}\n{string.Join("\n", File.ReadLines(f).TakeLast(15))}"));
}
