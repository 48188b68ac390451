#!/usr/bin/env bash
# The CPU scaling table of data-parallel training: 1 rank x 2 threads against 2 ranks x 1 thread (and
# 1 rank x 1 thread, the unit both are measured in), the same global batch. Prints a markdown table.
# Usage: bench/run_mpi.sh [BUILD_DIR] (default build/release); BATCH, SIZE, STEPS override.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
batch=${BATCH:-8} size=${SIZE:-176} steps=${STEPS:-6}
[[ -x $build/bench/mpi_steps ]] || { echo "run_mpi: build $build/bench/mpi_steps first (an MPI build)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
args=(--batch "$batch" --size "$size" --steps "$steps")
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
rows=()
rows+=("$(OMP_NUM_THREADS=1 "$build/bench/mpi_steps" "${args[@]}")")
rows+=("$(OMP_NUM_THREADS=2 "$build/bench/mpi_steps" "${args[@]}")")
for bn in global per-rank; do
  rows+=("$(OMP_NUM_THREADS=1 mpirun --oversubscribe --bind-to none -np 2 -x OMP_NUM_THREADS "$build/bench/mpi_steps" \
    "${args[@]}" --bn "$bn")")
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${rows[@]}"
/usr/bin/python3 - "${rows[@]}" <<'PY'
import json, sys
rows = [json.loads(r) for r in sys.argv[1:]]
base = rows[0]["images_per_s"]
print(f"\nCPU training steps, global batch {rows[0]['batch']}, {rows[0]['size']}x{rows[0]['size']}, float32\n")
print("| ranks x threads | batchnorm | images/s | vs 1x1 | median step (s) | in collectives (s) | of which gradient allreduce (s) | share of the step |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['ranks']} x {r['threads']} | {r['bn'] if r['ranks'] > 1 else '-'} | {r['images_per_s']:.2f} | "
          f"{r['images_per_s'] / base:.2f}x | {r['median_step_s']:.3f} | {r['collectives_s']:.4f} | "
          f"{r['grad_allreduce_s']:.4f} | {100 * r['collectives_share']:.1f}% |")
PY
