using System.Buffers.Binary;
using System.Text;
using GemmaScope.Core.Tests.Support;
using GemmaScope.Formats;
using Xunit.Abstractions;
using static GemmaScope.Core.Tests.Formats.FormatCorpus;

namespace GemmaScope.Core.Tests.Formats;

/// <summary>
/// Seeded byte mutations of valid weight files, bounded by count. Each outcome must be a <see cref="SaeFormatException"/>
/// naming the file, or a load whose every weight equals an independent reading of the file; any other exception, a
/// load that differs, more than <see cref="AllocationBound"/> bytes allocated by one load, or a hang fails the test.
/// </summary>
public class FormatFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int Mutations = 2000;
    private const long AllocationBound = 4 << 20;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>1 to 3 edits: bit flips, random or boundary bytes and 32-bit values, insertions, deletions, copied spans, truncation.</summary>
    internal static byte[] Mutate(byte[] src, Random rng)
    {
        var b = new List<byte>(src);
        int ops = 1 + rng.Next(3);
        for (int o = 0; o < ops && b.Count > 0; o++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(9))
            {
                case 0:
                    b[at] ^= (byte)(1 << rng.Next(8));
                    break;
                case 1:
                    b[at] = (byte)rng.Next(256);
                    break;
                case 2:
                    b[at] = "\0\xff\x7f\x80 \",{}[]:0159-.eE\\"u8[rng.Next(22)];
                    break;
                case 3:
                    for (int k = rng.Next(1, 5); k > 0; k--)
                    {
                        b.Insert(at, (byte)rng.Next(256));
                    }

                    break;
                case 4:
                    b.RemoveRange(at, Math.Min(b.Count - at, rng.Next(1, 17)));
                    break;
                case 5:
                    {
                        int len = Math.Min(rng.Next(1, 33), b.Count - at);
                        int to = rng.Next(b.Count - len + 1);
                        var span = b.GetRange(at, len);
                        for (int k = 0; k < len; k++)
                        {
                            b[to + k] = span[k];
                        }

                        break;
                    }

                case 6:
                    {
                        uint[] values = [0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, (uint)src.Length, (uint)rng.Next(), 0xFFFF, 1];
                        uint v = values[rng.Next(values.Length)];
                        for (int k = 0; k < 4 && at + k < b.Count; k++)
                        {
                            b[at + k] = (byte)(v >> (8 * k));
                        }

                        break;
                    }

                case 7:
                    if (rng.Next(4) == 0)
                    {
                        b.RemoveRange(at, b.Count - at);
                    }
                    else
                    {
                        b[at] = (byte)(b[at] + (rng.Next(2) == 0 ? 1 : -1));
                    }

                    break;
                default:
                    {
                        // Digits are where the structure lives in JSON and npy headers: nudge one.
                        int d = b.FindIndex(at, x => x is >= (byte)'0' and <= (byte)'9');
                        if (d >= 0)
                        {
                            b[d] = (byte)('0' + rng.Next(10));
                        }

                        break;
                    }
            }
        }

        return [.. b];
    }

    private sealed class Tally
    {
        public int Refused, LoadedUnchanged, LoadedChanged;
        public long MaxAllocated;
        public List<string> Failures { get; } = [];
    }

    /// <summary>Runs the mutations on a worker with a generous deadline, so a hang fails instead of stalling the run.</summary>
    private Tally Run(string ext, byte[] valid, int seed, Func<byte[], JumpReLUSae, bool?> check)
    {
        var tally = new Tally();
        var work = Task.Factory.StartNew(() =>
        {
            var rng = new Random(seed);
            for (int i = 0; i < Mutations; i++)
            {
                var bytes = Mutate(valid, rng);
                var path = _dir.File($"m{i % 8}.{ext}");
                File.WriteAllBytes(path, bytes);
                long gc = GC.GetAllocatedBytesForCurrentThread(), native = NativeBuffer.AllocatedOnThread;
                string outcome, reason = "";
                try
                {
                    using var sae = JumpReLUSae.Load(path);
                    outcome = check(bytes, sae) switch
                    {
                        true => "unchanged",
                        false => "changed",
                        null => "MISREAD: loaded weights differ from an independent reading of the file",
                    };
                }
                catch (SaeFormatException e) when (e.Message.Contains(path, StringComparison.Ordinal) && e.Message.Length < 1000)
                {
                    outcome = "refused";
                    reason = e.Message.Replace(path, "", StringComparison.Ordinal);
                }
                catch (Exception e)
                {
                    outcome = $"{e.GetType().Name}: {e.Message[..Math.Min(200, e.Message.Length)]}";
                }

                long allocated = GC.GetAllocatedBytesForCurrentThread() - gc + (NativeBuffer.AllocatedOnThread - native);
                tally.MaxAllocated = Math.Max(tally.MaxAllocated, allocated);
                if (allocated > AllocationBound)
                {
                    outcome = $"ALLOCATED {allocated} bytes ({outcome})";
                }

                if (Environment.GetEnvironmentVariable("GEMMASCOPE_FUZZ_DUMP") is { Length: > 0 } dump)
                {
                    // For cross-checking outcomes with other readers (numpy): every mutated file and what happened to it.
                    Directory.CreateDirectory(dump);
                    File.WriteAllBytes(Path.Combine(dump, $"{seed}-{i}.{ext}"), bytes);
                    File.AppendAllText(Path.Combine(dump, $"{seed}.outcomes"), $"{i}\t{outcome.Split('\n')[0]}\t{reason}\n");
                }

                switch (outcome)
                {
                    case "refused": tally.Refused++; break;
                    case "unchanged": tally.LoadedUnchanged++; break;
                    case "changed": tally.LoadedChanged++; break;
                    default: tally.Failures.Add($"#{i}: {outcome}"); break;
                }
            }
        }, TaskCreationOptions.LongRunning);
        Assert.True(work.Wait(TimeSpan.FromMinutes(3)), "the mutations did not finish: a load hangs");
        output.WriteLine($"{ext}: {Mutations} mutations (seed {seed}): {tally.Refused} refused with SaeFormatException, {tally.LoadedUnchanged} loaded equal to the original, " +
            $"{tally.LoadedChanged} loaded changed values matching an independent reading, {tally.Failures.Count} failures; largest allocation {tally.MaxAllocated} bytes");
        output.WriteLine("  failures by kind: " + Kinds(tally.Failures));
        Assert.True(tally.Failures.Count == 0, $"{tally.Failures.Count} of {Mutations} mutations ended badly:\n{string.Join('\n', tally.Failures.Take(15))}");
        return tally;
    }

    /// <summary>Failures counted by kind: the exception type, or MISREAD / ALLOCATED.</summary>
    internal static string Kinds(List<string> failures) => string.Join(", ", failures
        .Select(f => f[(f.IndexOf(": ", StringComparison.Ordinal) + 2)..])
        .Select(o => o.StartsWith("ALLOCATED", StringComparison.Ordinal) ? "ALLOCATED" : o.Split(':', ' ')[0])
        .GroupBy(k => k).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}"));

    [Fact]
    public void Npz_StoredMutations()
    {
        // Stored members are not checksummed: a load is right when it holds the original weights, or (the mutation
        // hit array data) the float32 bytes at the original layout's offsets in the mutated file.
        var members = Members();
        var valid = TestNpz.Zip(members);
        // Each array's data starts after its npy 1.0 preamble (10 bytes) and header.
        var offsets = members.Select(m => (long)IndexOf(valid, m.Data) + 10 + BinaryPrimitives.ReadUInt16LittleEndian(m.Data.AsSpan(8))).ToArray();
        var t = Run("npz", valid, 13_001, (bytes, sae) =>
            HoldsOriginals(sae) ? true : bytes.Length == valid.Length && MatchesBytes(sae, bytes, offsets) ? false : null);
        Assert.True(t.Refused > Mutations / 2 && t.LoadedUnchanged > 0 && t.LoadedChanged > 0);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        int i = haystack.AsSpan().IndexOf(needle);
        Assert.True(i >= 0 && haystack.AsSpan(i + 1).IndexOf(needle) < 0, "member bytes must occur once");
        return i;
    }

    [Fact]
    public void Npz_DeflatedMutations()
    {
        // Deflated members' CRC-32 is always checked, so any load must hold exactly the original weights.
        var t = Run("npz", TestNpz.Zip(Members(), method: 8), 13_002, (_, sae) => HoldsOriginals(sae) ? true : null);
        Assert.True(t.Refused > Mutations / 2 && t.LoadedUnchanged > 0);
    }

    [Fact]
    public void SafeTensors_Mutations()
    {
        // safetensors has no checksum: a load is right when every weight equals the float32 little-endian bytes at the
        // original layout's offsets in the mutated file (the only layout a successful load can have: tensors must tile
        // the data exactly, and a changed header either keeps the offsets or is refused).
        var (h, d) = SafeTensorsParts();
        var valid = TestSafeTensors.Build(h, d);
        int dataStart = valid.Length - d.Length;
        var t = Run("safetensors", valid, 13_003, (bytes, sae) =>
        {
            if (HoldsOriginals(sae))
            {
                return true;
            }

            long[] offsets = [dataStart, dataStart + (4L * WEnc.Length), dataStart + (8L * WEnc.Length), dataStart + (8L * WEnc.Length) + (4 * DSae), dataStart + (8L * WEnc.Length) + (4 * (DSae + DIn))];
            return bytes.Length == valid.Length && MatchesBytes(sae, bytes, offsets) ? false : null;
        });
        Assert.True(t.Refused > Mutations / 4 && t.LoadedUnchanged > 0 && t.LoadedChanged > 0);
    }

    /// <summary>Whether W_enc, W_dec, b_enc, b_dec, threshold equal the little-endian float32 values at <paramref name="offsets"/> in <paramref name="bytes"/>.</summary>
    private static unsafe bool MatchesBytes(JumpReLUSae sae, byte[] bytes, long[] offsets)
    {
        var w = sae.Weights;
        var arrays = new (nint, int)[] { ((nint)w.WEnc, WEnc.Length), ((nint)w.WDec, WDec.Length), ((nint)w.BEnc, DSae), ((nint)w.BDec, DIn), ((nint)w.Threshold, DSae) };
        for (int a = 0; a < arrays.Length; a++)
        {
            var (p, n) = arrays[a];
            var loaded = new ReadOnlySpan<float>((float*)p, n);
            int at = (int)offsets[a];
            for (int i = 0; i < n; i++, at += 4)
            {
                if (BitConverter.SingleToInt32Bits(loaded[i]) != BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at)))
                {
                    return false;
                }
            }
        }

        return true;
    }
}
