#!/usr/bin/env bash
# deploy/slurm/submit.sh SHARDS: submits the scan array (SHARDS tasks) and the merge that waits for all of them.
# Environment: MODEL, SAE, CORPUS, OUT (and optionally GEMMASCOPE, SCAN_ARGS), exported to the jobs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shards=${1:?usage: submit.sh SHARDS}
array=$(sbatch --parsable --array=0-$((shards - 1)) -o "${OUT:?}/slurm-scan-%A_%a.out" --export=ALL "$here/scan.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --dependency=afterok:"$array" -o "$OUT/slurm-merge-%j.out" --export=ALL "$here/merge.sbatch")
echo "scan array $array, merge ${merge%%;*}"
