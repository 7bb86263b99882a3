"""Cross-checks the npz fuzz outcomes of GemmaScope.Core.Tests' FormatFuzzTests against numpy.

Run the fuzz tests with GEMMASCOPE_FUZZ_DUMP=<dir> (they write each mutated file and its outcome), then
    /usr/bin/python3 tools/fuzz_crosscheck_numpy.py <dir>
For every mutated npz it asks numpy (np.load, which reads the zip with Python's zipfile) for the five SAE arrays and
counts how its verdict compares with ours. Not used by the tests or CI.
"""
import collections
import os
import sys

import numpy as np

NAMES = [("W_enc", "w_enc"), ("W_dec", "w_dec"), ("b_enc",), ("b_dec",), ("threshold",)]
SHAPES = [(5, 7), (7, 5), (7,), (5,), (7,)]


def numpy_verdict(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = []
            for names, shape in zip(NAMES, SHAPES):
                present = [n for n in names if n in z.files]
                if len(present) != 1:
                    return "numpy: missing/ambiguous " + names[0]
                a = z[present[0]]
                if a.shape != shape or a.dtype.kind != "f":
                    return "numpy: wrong shape/dtype " + names[0]
                if not np.all(np.isfinite(a)):
                    return "numpy: non-finite " + names[0]
                arrays.append(a)
            return "numpy: loads"
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return "numpy: refuses (" + type(e).__name__ + ")"


def main(folder):
    for seed in ("13001", "13002"):
        outcomes = os.path.join(folder, seed + ".outcomes")
        if not os.path.exists(outcomes):
            continue
        table = collections.Counter()
        examples = collections.defaultdict(list)
        for line in open(outcomes, encoding="utf-8"):
            i, outcome, reason = (line.rstrip("\n").split("\t") + [""])[:3]
            ours = "ours: refused" if outcome == "refused" else "ours: loaded " + outcome
            theirs = numpy_verdict(os.path.join(folder, f"{seed}-{i}.npz"))
            key = (ours, theirs)
            table[key] += 1
            if ours == "ours: refused" and theirs == "numpy: loads" and len(examples[key]) < 50:
                examples[key].append(reason.split("(")[0].strip())
        print(f"seed {seed}:")
        for (ours, theirs), n in sorted(table.items(), key=lambda kv: -kv[1]):
            print(f"  {n:5d}  {ours:28s} {theirs}")
        for key, reasons in examples.items():
            print("  refused by us, loaded by numpy, reasons:")
            for r, n in collections.Counter(reasons).most_common():
                print(f"    {n:4d} {r}")


if __name__ == "__main__":
    main(sys.argv[1])
