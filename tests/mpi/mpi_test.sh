#!/usr/bin/env bash
# Data-parallel training under mpirun (2 ranks, one OpenMP thread each, as on the 2-core CI machine) against
# one process with the same global batch, and the ways a multi-rank run can go wrong.
# Usage: mpi_test.sh MRIAE_BINARY STEP_COMPARISON_BINARY SOURCE_DIR.
# Exits 77 (a visible skip) without mpirun, without an MPI build, or without mricron-data.
set -uo pipefail
mriae=$1
steps=$2
src=$3
colin=/usr/share/mricron/templates/ch2.nii.gz
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

if ! command -v mpirun >/dev/null; then
  echo "skipped: mpirun is missing (Debian packages openmpi-bin, libopenmpi-dev)"
  exit 77
fi
if [[ ! -x $steps ]]; then
  echo "skipped: mriae was built without MPI ($steps is missing; configure with -DMRIAE_MPI=ON)"
  exit 77
fi
if [[ ! -f $colin ]]; then
  echo "skipped: $colin is missing (Debian package mricron-data)"
  exit 77
fi

# OpenMPI refuses to run as root (CI) without both of these.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
mpi() {  # mpi NP ARGS...: mpirun, bounded in time, so a hang fails instead of blocking CI
  local np=$1
  shift
  timeout -k 10 240 mpirun --oversubscribe --bind-to none -np "$np" "$@"
}

# A small real volume: every second voxel of Colin27 in x and z (60x12x60), written by nibabel.
vol=$work/colin_small.nii.gz
"$py" - "$colin" "$vol" <<'PY'
import sys, nibabel as nib, numpy as np
img = nib.load(sys.argv[1])
a = np.asarray(img.dataobj, dtype=np.float32)[30:150:2, 90:102, 30:150:2]
nib.save(nib.Nifti1Image(a, np.diag([2.0, 1.0, 2.0, 1.0])), sys.argv[2])
PY
data=(--data "$vol" --slices 0:12 --no-conform --val-fraction 0.25 --device cpu --quiet)
train_slices() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["train_slices"])' "$1/config.json"; }
# history.csv's loss and val_loss columns of two runs, within a relative LIMIT.
same_history() {
  "$py" - "$1/history.csv" "$2/history.csv" "$3" <<'PY'
import sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)[:, 1:3]
b = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)[:, 1:3]
rel = float(np.max(np.abs(a - b) / np.abs(b))) if a.shape == b.shape else float("inf")
print(f"history: {a.shape[0]} epochs, worst relative loss difference {rel:.3e}, limit {sys.argv[3]}")
sys.exit(0 if rel <= float(sys.argv[3]) else 1)
PY
}
same_weights() { "$py" "$src/tests/mpi/compare_checkpoints.py" "$1" "$2" "$3"; }

# 1. Step by step in float32, the parity test's classes (and per-rank batchnorm must fail them).
mpi 2 "$steps" >"$work/steps.out" 2>&1
rc=$?
check "float32 step comparison, 2 ranks against 1 process (rc $rc): $(tail -n 5 "$work/steps.out")" test "$rc" -eq 0
grep -m1 -A12 "comparison summary" "$work/steps.out"
grep -E "failed classes|on every rank|on some rank" "$work/steps.out"

# 2. Free-running in float64: 2 ranks and 1 process, the same global batch, 3 epochs.
"$mriae" train "${data[@]}" --dtype float64 --batch 4 --epochs 3 --out "$work/one" >"$work/one.out" 2>&1
check "float64, 1 process trains (rc $?)" test -f "$work/one/last.safetensors"
n=$(train_slices "$work/one")
echo "training slices: $n"
check "the test's data: 9 training slices (batches 4, 4, 1 at --batch 4 would starve a rank, so --batch 3 and 5)" \
  test "$n" -eq 9
"$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 3 --out "$work/one3" >"$work/one3.out" 2>&1
mpi 2 "$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 3 --out "$work/two3" >"$work/two3.out" 2>&1
rc=$?
check "float64, 2 ranks, --batch 3 (parts of 2 and 1) trains (rc $rc): $(tail -n 3 "$work/two3.out")" test "$rc" -eq 0
check "float64 free-running weights, 2 ranks = 1 process within 1e-10 (uneven parts)" \
  same_weights "$work/two3/last.safetensors" "$work/one3/last.safetensors" 1e-10
check "float64 free-running losses, 2 ranks = 1 process within 1e-10" same_history "$work/two3" "$work/one3" 1e-10
check "rank 0 alone wrote config.json naming 2 ranks" grep -q '"ranks": 2' "$work/two3/config.json"

"$mriae" train "${data[@]}" --dtype float64 --batch 5 --epochs 2 --out "$work/one5" >"$work/one5.out" 2>&1
mpi 2 "$mriae" train "${data[@]}" --dtype float64 --batch 5 --epochs 2 --out "$work/two5" >"$work/two5.out" 2>&1
rc=$?
check "float64, 2 ranks, --batch 5 (parts 3+2, then 2+2) trains (rc $rc)" test "$rc" -eq 0
check "float64 weights, --batch 5, 2 ranks = 1 process within 1e-10" \
  same_weights "$work/two5/last.safetensors" "$work/one5/last.safetensors" 1e-10

# 3. A rank with no data: 9 slices at --batch 4 end each epoch with a batch of 1, and 2 ranks cannot share it.
mpi 2 "$mriae" train "${data[@]}" --batch 4 --epochs 1 --out "$work/starved" >"$work/starved.out" 2>&1
rc=$?
check "a rank without data: an error (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "a rank without data: the message says so ($(grep -m1 error "$work/starved.out"))" \
  grep -q "leaves rank 1 without data" "$work/starved.out"
check "a rank without data: no checkpoint written" test ! -e "$work/starved/last.safetensors"

# Denoising: each rank noises its part of a batch (and of the validation slices, split 2 + 1 here) with the
# values one process draws for the same slices, so 2 ranks still compute what 1 process computes.
"$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 2 --train-noise 0.05 --out "$work/noisy1" \
  >"$work/noisy1.out" 2>&1
mpi 2 "$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 2 --train-noise 0.05 --out "$work/noisy2" \
  >"$work/noisy2.out" 2>&1
rc=$?
check "--train-noise, float64, 2 ranks trains (rc $rc): $(tail -n 2 "$work/noisy2.out")" test "$rc" -eq 0
check "--train-noise, float64 weights, 2 ranks = 1 process within 1e-10" \
  same_weights "$work/noisy2/last.safetensors" "$work/noisy1/last.safetensors" 1e-10
check "--train-noise, float64 losses (validation from noisy inputs too), 2 ranks = 1 process within 1e-10" \
  same_history "$work/noisy2" "$work/noisy1" 1e-10
# The comparison sees the noise: another sigma's run differs from it beyond the limit.
differs() { ! "$@"; }
"$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 2 --train-noise 0.04 --out "$work/noisy04" \
  >"$work/noisy04.out" 2>&1
check "--train-noise: the comparison can fail (sigma 0.04 differs from 0.05 beyond 1e-10)" \
  differs same_history "$work/noisy04" "$work/noisy1" 1e-10

# 4. --resume with another number of ranks: refused, naming both; the checkpoint untouched.
sum_before=$(sha256sum "$work/two3/last.safetensors")
"$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 4 --resume "$work/two3/last.safetensors" \
  --out "$work/two3" >"$work/resume1.out" 2>&1
rc=$?
check "resume a 2-rank run in 1 process: an error (rc $rc)" test "$rc" -ne 0
check "resume in 1 process: names both ($(grep -m1 error "$work/resume1.out"))" \
  grep -q "trained by 2 rank(s), and this run has 1" "$work/resume1.out"
mpi 3 "$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 4 --resume "$work/two3/last.safetensors" \
  --out "$work/two3" >"$work/resume3.out" 2>&1
rc=$?
check "resume a 2-rank run on 3 ranks: an error (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "resume on 3 ranks: names both" grep -q "trained by 2 rank(s), and this run has 3" "$work/resume3.out"
check "refused resumes leave the checkpoint as it was" test "$(sha256sum "$work/two3/last.safetensors")" = "$sum_before"
mpi 2 "$mriae" train "${data[@]}" --dtype float64 --batch 3 --epochs 4 --resume "$work/two3/last.safetensors" \
  --out "$work/two3r" >"$work/resume2.out" 2>&1
check "resume on the same 2 ranks continues (rc $?)" grep -q "^4," "$work/two3r/history.csv"

# 5. A rank that fails (rank 0 cannot create --out) takes the job down with its rank named, no hang.
: >"$work/not_a_folder"
mpi 2 "$mriae" train "${data[@]}" --batch 3 --epochs 1 --out "$work/not_a_folder/run" >"$work/fail.out" 2>&1
rc=$?
check "a failing rank ends the job (rc $rc, 124 = hang)" test "$rc" -ne 0 -a "$rc" -ne 124
check "a failing rank is named ($(grep -m1 "error" "$work/fail.out"))" grep -q "error on rank 0 of 2" "$work/fail.out"

# 6. A killed rank: OpenMPI ends the job and says which rank died; the last checkpoint stays whole.
mpi 2 "$mriae" train "${data[@]}" --batch 3 --epochs 10000 --out "$work/killed" >"$work/killed.out" 2>&1 &
launcher=$!
for _ in $(seq 600); do [[ -f $work/killed/history.csv ]] && break; sleep 0.2; done
check "the run to be killed wrote an epoch" test -f "$work/killed/history.csv"
# The ranks: the mriae processes under this test's mpirun (timeout -> mpirun -> ranks).
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
victim=""
for r in $(descendants "$launcher"); do
  { tr '\0' '\n' <"/proc/$r/environ"; } 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$r
done
check "found rank 1's process" test -n "$victim"
[[ -n $victim ]] && kill -9 "$victim"
wait "$launcher"
rc=$?
check "a killed rank ends the job (rc $rc, 124 = hang)" test "$rc" -ne 0 -a "$rc" -ne 124
check "a killed rank: OpenMPI names it ($(grep -m1 -i "signal" "$work/killed.out"))" \
  grep -qi "rank 1 with PID .*signal 9" "$work/killed.out"
check "a killed rank: the last checkpoint reads whole" \
  same_weights "$work/killed/last.safetensors" "$work/killed/last.safetensors" 0

# 8. Ranks that read different data (a node with other files): refused before training. MPMD launch: rank 0
# and rank 1 given other volumes of the same shape.
other=$work/colin_other.nii.gz
"$py" - "$colin" "$other" <<'PY'
import sys, nibabel as nib, numpy as np
img = nib.load(sys.argv[1])
a = np.asarray(img.dataobj, dtype=np.float32)[30:150:2, 110:122, 30:150:2]
nib.save(nib.Nifti1Image(a, np.diag([2.0, 1.0, 2.0, 1.0])), sys.argv[2])
PY
rest=("${data[@]:2}")
timeout -k 10 240 mpirun --oversubscribe --bind-to none -np 1 "$mriae" train --data "$vol" "${rest[@]}" --batch 3 \
  --epochs 1 --out "$work/mixed" : -np 1 "$mriae" train --data "$other" "${rest[@]}" --batch 3 --epochs 1 \
  --out "$work/mixed" >"$work/mixed.out" 2>&1
rc=$?
check "ranks with different data: an error (rc $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "ranks with different data: the message says so ($(grep -m1 error "$work/mixed.out"))" \
  grep -q "the ranks built different data sets" "$work/mixed.out"
check "ranks with different data: no checkpoint" test ! -e "$work/mixed/last.safetensors"

# 7. Ctrl-C on the launcher: OpenMPI forwards SIGINT to the ranks, which stop after the same step; rank 0
# writes one checkpoint of that position.
mpi 2 "$mriae" train "${data[@]}" --batch 3 --epochs 10000 --out "$work/ctrlc" >"$work/ctrlc.out" 2>&1 &
launcher=$!
for _ in $(seq 600); do [[ -f $work/ctrlc/history.csv ]] && break; sleep 0.2; done
sleep 1
mpirun_pid=""
for r in $(descendants "$launcher"); do [[ $(cat "/proc/$r/comm" 2>/dev/null) == mpirun ]] && mpirun_pid=$r; done
check "found mpirun" test -n "$mpirun_pid"
[[ -n $mpirun_pid ]] && kill -INT "$mpirun_pid"
wait "$launcher"
rc=$?
check "Ctrl-C ends the job, no hang (rc $rc)" test "$rc" -ne 124
check "Ctrl-C reached both ranks" test "$(grep -c "interrupted: finishing the current step" "$work/ctrlc.out")" -eq 2
check "Ctrl-C: one checkpoint of the position mid-epoch" "$py" -c '
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]
m = json.loads(d[8:8 + n])["__metadata__"]
print("checkpoint after Ctrl-C: epochs_done", m["train.epochs_done"], "batches_done", m["train.batches_done"])
sys.exit(0 if m["train.ranks"] == "2" else 1)' "$work/ctrlc/last.safetensors"

finish mpi_test
