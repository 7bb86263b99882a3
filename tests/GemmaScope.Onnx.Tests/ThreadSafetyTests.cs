using GemmaScope.Onnx;

namespace GemmaScope.Onnx.Tests;

/// <summary>What the README states about threads: one model serves concurrent runs, each giving what it gives alone.</summary>
public class ThreadSafetyTests
{
    [Theory]
    [MemberData(nameof(EngineData.All), MemberType = typeof(EngineData))]
    public void ConcurrentRunsWithInterventionsGiveTheSequentialResultsBitForBit(GemmaEngineKind engine)
    {
        using var model = GemmaModel.FromPretrained(TinyModels.Gemma2Checkpoint("single"), EngineData.Options(engine));
        var site = HookPoint.ResidPost(0);
        int width = model.Width(site);
        var sae = TestSaes.Random(width, 40, seed: 3);
        var steer = Enumerable.Range(0, width).Select(i => (float)Math.Sin(i)).ToArray();
        Func<RunResult>[] requests =
        [
            () => model.Run(TokenIds.Random(9, seed: 1), capture: [HookPoint.ResidPost(1), site]),
            () => model.Run(TokenIds.Random(7, seed: 2), capture: [HookPoint.ResidPost(1)], interventions: new() { Splice = [new SaeSplice(site, sae) { CaptureFeatures = true }] }),
            () => model.RunBatch([TokenIds.Random(5, seed: 3), TokenIds.Random(8, seed: 4)], capture: [HookPoint.MlpOut(1)],
                interventions: new() { Steer = [Steering.Add(HookPoint.ResidPre(1), steer)], Hooks = [new ActivationHook(HookPoint.AttnOut(1), (a, _, _) => a.Clear())] }),
        ];
        var expected = requests.Select(r => Fingerprint(r())).ToArray();

        var actual = new float[4 * 3 * requests.Length][];
        Parallel.For(0, actual.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => actual[i] = Fingerprint(requests[i % requests.Length]()));

        for (int i = 0; i < actual.Length; i++)
        {
            Assert.Equal(expected[i % requests.Length], actual[i]);
        }
    }

    // Every captured row, feature and logit of the run, in a fixed order.
    private static float[] Fingerprint(RunResult run)
    {
        var all = new List<float>();
        for (int s = 0; s < run.BatchSize; s++)
        {
            foreach (var site in run.Captured.OrderBy(p => p.ForwardOrder))
            {
                all.AddRange(run.Activations(site, s).ToArray());
                all.AddRange(run.EditedActivations(site, s).ToArray());
            }

            all.AddRange(run.Logits(s).ToArray());
        }

        return [.. all];
    }
}
