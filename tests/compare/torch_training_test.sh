#!/bin/bash
# `mriae train` against the same run redone in PyTorch (python/mriae_compare/train_torch.py): from the run's
# initial.safetensors, on the slices `mriae slices` writes, with the batch order and --train-noise noise
# redrawn in Python from mriae's seeded streams and the cosine lr schedule. In float64 the two engines compute
# the same run, so every epoch's losses and the final weights agree to rounding (1e-9); a planted change of
# the order seed must break that. `mriae evaluate` reads the PyTorch checkpoint.
# Usage: torch_training_test.sh MRIAE SOURCE_DIR. Exit 77 (skipped) without PyTorch, nibabel or Colin27.
set -u
mriae=$1
src=$2
py=/usr/bin/python3
colin=/usr/share/mricron/templates/ch2.nii.gz
if ! $py -c "import torch, nibabel, numpy" 2>/dev/null || [ ! -f $colin ]; then
  echo "skipped: needs python3-torch, python3-nibabel and mricron-data"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$src/tests/check.sh"
export OMP_NUM_THREADS=1
torch_train() { PYTHONPATH="$src/python" $py -m mriae_compare.train_torch "$@"; }

# A small real volume: every third voxel of Colin27 in x and z (40x10x40 -> 40x40 slices), written by nibabel.
$py - "$colin" "$tmp/vol.nii.gz" <<'PY'
import sys, nibabel as nib, numpy as np
a = np.asarray(nib.load(sys.argv[1]).dataobj, dtype=np.float32)[30:150:3, 95:105, 30:150:3]
nib.save(nib.Nifti1Image(a, np.diag([3.0, 1.0, 3.0, 1.0])), sys.argv[2])
PY
"$mriae" train --data "$tmp/vol.nii.gz" --slices 0:10 --no-conform --val-fraction 0.3 --dtype float64 --batch 3 \
  --epochs 2 --train-noise 0.05 --lr-schedule cosine --lr-floor 0.1 --device cpu --quiet --out "$tmp/run" \
  > "$tmp/train.out" 2>&1
check "mriae trains and writes initial.safetensors (rc $?)" test -f "$tmp/run/initial.safetensors"
"$mriae" slices --weights "$tmp/run/initial.safetensors" --out "$tmp/slices.safetensors" > "$tmp/slices.out" 2>&1
check "mriae slices: $(cat "$tmp/slices.out")" grep -q "10 slices of 40x40 (7 training, 3 validation)" "$tmp/slices.out"
torch_train "$tmp/run/initial.safetensors" "$tmp/slices.safetensors" --out "$tmp/torch" --threads 1 > "$tmp/torch.out" 2>&1
check "PyTorch trains the same run (rc $?): $(tail -n 1 "$tmp/torch.out")" test -f "$tmp/torch/last.safetensors"
torch_train "$tmp/run/initial.safetensors" "$tmp/slices.safetensors" --out "$tmp/other" --threads 1 --order-seed 14 \
  > "$tmp/other.out" 2>&1
check "PyTorch trains with another order seed (rc $?)" test -f "$tmp/other/last.safetensors"

# history.csv's loss and val_loss columns, and the weights, of two runs within a relative LIMIT.
same() {
  PYTHONPATH="$src/python" $py - "$1" "$2" "$3" <<'PY'
import sys
import numpy as np
from mriae_compare.safetensors_io import read
a_dir, b_dir, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
ha = np.loadtxt(a_dir + "/history.csv", delimiter=",", skiprows=1, ndmin=2)[:, 1:3]
hb = np.loadtxt(b_dir + "/history.csv", delimiter=",", skiprows=1, ndmin=2)[:, 1:3]
worst = float(np.max(np.abs(ha - hb) / np.abs(hb))) if ha.shape == hb.shape else float("inf")
ta, _ = read(a_dir + "/last.safetensors")
tb, _ = read(b_dir + "/last.safetensors")
for name, v in tb.items():
    if v.dtype == np.float64 and not name.startswith("optimizer"):
        scale = max(float(np.max(np.abs(v))), 1e-30)
        worst = max(worst, float(np.max(np.abs(ta[name] - v))) / scale)
print(f"{a_dir} vs {b_dir}: worst relative difference {worst:.3e} (limit {limit:g})")
sys.exit(0 if worst <= limit else 1)
PY
}
check "float64: PyTorch's losses and weights = mriae's within 1e-9" same "$tmp/torch" "$tmp/run" 1e-9
differs() { ! "$@"; }
check "the comparison can fail: another order seed differs beyond 1e-9" differs same "$tmp/other" "$tmp/run" 1e-9
# --crop: random 24x24 windows, 3 of each training slice an epoch (the default for 40x40), 21 samples in
# batches of 4 (the last one short), noised window by window.
"$mriae" train --data "$tmp/vol.nii.gz" --slices 0:10 --no-conform --val-fraction 0.3 --dtype float64 --batch 4 \
  --epochs 2 --train-noise 0.05 --crop 24 --device cpu --quiet --out "$tmp/crop_run" > "$tmp/crop_train.out" 2>&1
check "mriae trains on crops (rc $?)" test -f "$tmp/crop_run/initial.safetensors"
"$mriae" slices --weights "$tmp/crop_run/initial.safetensors" --out "$tmp/crop_slices.safetensors" > /dev/null 2>&1
torch_train "$tmp/crop_run/initial.safetensors" "$tmp/crop_slices.safetensors" --out "$tmp/torch_crop" --threads 1 \
  > "$tmp/torch_crop.out" 2>&1
check "PyTorch trains the crop run (rc $?): $(head -n 1 "$tmp/torch_crop.out")" \
  grep -q "7 training (3 24x24 crops of each an epoch)" "$tmp/torch_crop.out"
check "float64, --crop: PyTorch's losses and weights = mriae's within 1e-9" same "$tmp/torch_crop" "$tmp/crop_run" 1e-9
check "the crop comparison can fail: the whole-slice run differs" differs same "$tmp/torch_crop" "$tmp/run" 1e-9

"$mriae" evaluate --weights "$tmp/torch/best.safetensors" --sigma 0.05 --out "$tmp/eval" --device cpu > "$tmp/eval.out" 2>&1
check "mriae evaluate reads the PyTorch checkpoint (rc $?)" test -f "$tmp/eval/metrics.json"

# Wrong inputs: named, nothing written.
torch_train "$tmp/run/last.safetensors" "$tmp/slices.safetensors" --out "$tmp/bad" > "$tmp/bad.out" 2>&1
check "a checkpoint that is not a starting state is refused, named" grep -q "last.safetensors: not the starting state" \
  "$tmp/bad.out"
check "... and nothing is written" test ! -e "$tmp/bad"
echo "not a checkpoint" > "$tmp/junk.safetensors"
"$mriae" slices --weights "$tmp/junk.safetensors" --out "$tmp/junk_slices.safetensors" > "$tmp/junk.out" 2>&1
rc=$?
check "mriae slices on a junk file: an error naming it (rc $rc: $(tail -n 1 "$tmp/junk.out"))" \
  grep -q "junk.safetensors" "$tmp/junk.out"
check "... exit status 1, and no output written" test "$rc" -eq 1 -a ! -e "$tmp/junk_slices.safetensors"
finish "torch training test"
