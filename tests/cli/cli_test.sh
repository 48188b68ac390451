#!/usr/bin/env bash
# The mriae program as a user runs it: exit codes and messages for bad input, and Ctrl-C during training
# followed by --resume. Usage: cli_test.sh MRIAE_BINARY. Exits 77 (a visible skip) without mricron-data.
set -uo pipefail
mriae=$1
colin=/usr/share/mricron/templates/ch2.nii.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

# expect_error NAME NEEDLE ARGS...: non-zero exit, and stderr names the problem.
expect_error() {
  local name=$1 needle=$2
  shift 2
  "$mriae" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  check "$name: exit status $rc" test "$rc" -ne 0
  check "$name: message has '$needle' (got: $(head -c 300 "$work/err"))" grep -qF -- "$needle" "$work/err"
}

expect_error "missing data" "$work/absent.nii.gz" train --data "$work/absent.nii.gz" --out "$work/run"
printf 'not a nifti file' >"$work/bad.nii"
expect_error "not NIfTI" "$work/bad.nii" info "$work/bad.nii"
expect_error "bad epochs" "--epochs" train --data "$colin" --out "$work/run" --epochs 0
expect_error "bad device" "--device" train --data "$colin" --out "$work/run" --device tpu
expect_error "unknown option" "--bogus" train --data "$colin" --out "$work/run" --bogus
expect_error "missing weights" "$work/none.safetensors" evaluate --weights "$work/none.safetensors" --out "$work/e"
expect_error "summary size" "multiples of 4" summary --height 173
expect_error "bad voxel size" "--voxel" train --data "$colin" --out "$work/run" --voxel 0
expect_error "bad interpolation" "--interp" train --data "$colin" --out "$work/run" --interp cubic
expect_error "bad dtype" "--dtype" train --data "$colin" --out "$work/run" --dtype half
expect_error "float64 on the GPU" "--dtype float64 runs on the CPU only" train --data "$colin" --out "$work/run" \
  --dtype float64 --device cuda
expect_error "bad normalize" "--normalize" train --data "$colin" --out "$work/run" --normalize minmax
expect_error "bad percentiles" "--percentiles" train --data "$colin" --out "$work/run" --normalize percentile \
  --percentiles 99,1
expect_error "bad train noise" "--train-noise" train --data "$colin" --out "$work/run" --train-noise=-0.1
expect_error "missing subject table" "$work/none.tsv" train --data "$colin" --out "$work/run" --split subjects \
  --subjects "$work/none.tsv"

if [[ ! -f $colin ]]; then
  echo "skipped: $colin is missing (Debian package mricron-data)"
  exit 77
fi

# Ctrl-C: the current step finishes, a checkpoint is written, the exit status is 0; --resume continues.
run=$work/run
"$mriae" train --data "$colin" --slices 100:105 --out "$run" --epochs 1000 --batch 2 --device cpu >"$work/train.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do  # until the first epoch has finished (up to 60 s)
  [[ -f $run/history.csv ]] && break
  sleep 0.1
done
sleep 0.3
kill -INT "$pid"
wait "$pid"
rc=$?
check "interrupted run exits 0 (got $rc; output: $(tail -c 300 "$work/train.out"))" test "$rc" -eq 0
check "interrupted run says where it stopped" grep -q "stopped in epoch" "$work/train.out"
check "interrupted run left a checkpoint" test -s "$run/last.safetensors"
check "no temporary file left behind" test ! -e "$run/last.safetensors.tmp"
done_epochs=$(($(wc -l <"$run/history.csv") - 1))
"$mriae" train --data "$colin" --slices 100:105 --out "$run" --epochs $((done_epochs + 1)) --batch 2 --device cpu \
  --resume "$run/last.safetensors" --quiet >"$work/resume.out" 2>&1
rc=$?
check "resumed run completes (got $rc: $(tail -c 300 "$work/resume.out"))" test "$rc" -eq 0
check "resumed run wrote one more epoch" test "$(($(wc -l <"$run/history.csv") - 1))" -eq $((done_epochs + 1))

# The checkpoint in PyTorch: loaded strictly by its state_dict names, it must reconstruct a volume as
# `mriae reconstruct` does (tests/torch/check_checkpoint.py redoes slicing, scaling, padding and the model).
check_py=$(dirname "$0")/../torch/check_checkpoint.py
/usr/bin/python3 "$check_py" crop "$colin" "$work/small.nii.gz" >"$work/py.out" 2>&1
rc=$?
if [[ $rc -eq 77 ]]; then
  echo "skipped the PyTorch check: $(cat "$work/py.out")"
else
  check "crop written with nibabel (got $rc: $(tail -c 300 "$work/py.out"))" test "$rc" -eq 0
  "$mriae" reconstruct --weights "$run/last.safetensors" --in "$work/small.nii.gz" --out "$work/recon.nii.gz" \
    --device cpu >"$work/recon.out" 2>&1
  rc=$?
  check "reconstruct runs (got $rc: $(tail -c 300 "$work/recon.out"))" test "$rc" -eq 0
  /usr/bin/python3 "$check_py" compare "$run/last.safetensors" "$work/small.nii.gz" "$work/recon.nii.gz" >"$work/py.out" 2>&1
  rc=$?
  cat "$work/py.out"
  check "PyTorch reproduces the reconstruction from the checkpoint (got $rc)" test "$rc" -eq 0

  # The run conformed its volumes (the default): an input in another orientation at 1.5 mm is conformed,
  # reconstructed and resampled back onto its own grid, as PyTorch + nibabel + scipy do it.
  /usr/bin/python3 "$check_py" crop "$colin" "$work/turned.nii.gz" reoriented >"$work/py.out" 2>&1
  check "reoriented crop written (got $?: $(tail -c 300 "$work/py.out"))" test -s "$work/turned.nii.gz"
  "$mriae" reconstruct --weights "$run/last.safetensors" --in "$work/turned.nii.gz" --out "$work/turned_recon.nii.gz" \
    --device cpu >"$work/recon.out" 2>&1
  rc=$?
  check "reconstruct of a reoriented input runs (got $rc: $(tail -c 300 "$work/recon.out"))" test "$rc" -eq 0
  check "reconstruct says it conformed" grep -q "of the conformed volume" "$work/recon.out"
  /usr/bin/python3 "$check_py" compare "$run/last.safetensors" "$work/turned.nii.gz" "$work/turned_recon.nii.gz" \
    >"$work/py.out" 2>&1
  rc=$?
  cat "$work/py.out"
  check "PyTorch + nibabel reproduce the conformed reconstruction, mapped back (got $rc)" test "$rc" -eq 0

  # The same in float64: train, evaluate, reconstruct, and PyTorch in float64 on the F64 checkpoint.
  run64=$work/run64
  "$mriae" train --data "$colin" --slices 100:105 --out "$run64" --epochs 1 --batch 2 --device cpu --dtype float64 \
    >"$work/train64.out" 2>&1
  rc=$?
  check "float64 training runs (got $rc: $(tail -c 300 "$work/train64.out"))" test "$rc" -eq 0
  check "float64 training says so" grep -q "cpu, float64" "$work/train64.out"
  check "config.json records the dtype" grep -q '"dtype": "float64"' "$run64/config.json"
  expect_error "float64 checkpoint resumed in float32" "resume with --dtype float64" train --data "$colin" \
    --slices 100:105 --out "$run64" --epochs 2 --batch 2 --device cpu --resume "$run64/last.safetensors"
  "$mriae" evaluate --weights "$run64/last.safetensors" --out "$work/eval64" --dtype float64 --device cpu \
    >"$work/eval64.out" 2>&1
  rc=$?
  check "float64 evaluate runs (got $rc: $(tail -c 300 "$work/eval64.out"))" test "$rc" -eq 0
  check "float64 evaluate wrote metrics.json" test -s "$work/eval64/metrics.json"
  "$mriae" evaluate --weights "$run64/last.safetensors" --out "$work/eval32" --device cpu >"$work/eval32.out" 2>&1
  rc=$?
  check "float32 evaluate of float64 weights runs (got $rc)" test "$rc" -eq 0
  check "float32 evaluate of float64 weights says it rounded them" grep -q "converted to float32 (rounded)" \
    "$work/eval32.out"
  "$mriae" reconstruct --weights "$run64/last.safetensors" --in "$work/small.nii.gz" --out "$work/recon64.nii.gz" \
    --dtype float64 --device cpu >"$work/recon64.out" 2>&1
  rc=$?
  check "float64 reconstruct runs (got $rc: $(tail -c 300 "$work/recon64.out"))" test "$rc" -eq 0
  /usr/bin/python3 "$check_py" compare "$run64/last.safetensors" "$work/small.nii.gz" "$work/recon64.nii.gz" \
    >"$work/py.out" 2>&1
  rc=$?
  cat "$work/py.out"
  check "PyTorch float64 reproduces the float64 reconstruction (got $rc)" test "$rc" -eq 0

  # --normalize percentile on the same scan in another scanner's units (37 x + 500): numpy's percentiles of
  # that input, clipped, must give the same reconstruction, in its own units.
  /usr/bin/python3 "$check_py" crop "$colin" "$work/small37.nii.gz" 37 500 >"$work/py.out" 2>&1
  check "scaled crop written with nibabel" test $? -eq 0
  "$mriae" train --data "$colin" --central 5 --out "$work/pct" --epochs 1 --batch 2 --device cpu \
    --normalize percentile --percentiles 1,99 --quiet >"$work/pct.out" 2>&1
  check "train --normalize percentile (got: $(tail -c 300 "$work/pct.out"))" test -s "$work/pct/last.safetensors"
  "$mriae" reconstruct --weights "$work/pct/last.safetensors" --in "$work/small37.nii.gz" \
    --out "$work/recon37.nii.gz" --device cpu --strict >"$work/recon.out" 2>&1
  rc=$?
  check "reconstruct --strict with a per-volume method (got $rc: $(tail -c 300 "$work/recon.out"))" test "$rc" -eq 0
  /usr/bin/python3 "$check_py" compare "$work/pct/last.safetensors" "$work/small37.nii.gz" "$work/recon37.nii.gz" \
    >"$work/py.out" 2>&1
  rc=$?
  cat "$work/py.out"
  check "PyTorch reproduces the percentile reconstruction (got $rc)" test "$rc" -eq 0

  # The tutorial's global scaling meets that volume: a warning naming the file; --strict makes it an error.
  "$mriae" train --data "$colin" --central 5 --out "$work/glob" --epochs 1 --batch 2 --device cpu \
    --normalize train --quiet >"$work/glob.out" 2>&1
  check "train --normalize train" test -s "$work/glob/last.safetensors"
  "$mriae" reconstruct --weights "$work/glob/last.safetensors" --in "$work/small37.nii.gz" --out "$work/g.nii.gz" \
    --device cpu >"$work/out" 2>"$work/err"
  rc=$?
  check "reconstruct without --strict still runs (got $rc)" test "$rc" -eq 0
  check "the range warning names the file (got: $(head -c 300 "$work/err"))" \
    grep -qF "mriae: warning: $work/small37.nii.gz: 100.0% of its voxels" "$work/err"
  expect_error "reconstruct --strict" "$work/small37.nii.gz: 100.0% of its voxels normalise outside" \
    reconstruct --weights "$work/glob/last.safetensors" --in "$work/small37.nii.gz" --out "$work/g2.nii.gz" \
    --device cpu --strict
  check "reconstruct --strict wrote nothing" test ! -e "$work/g2.nii.gz"
  expect_error "evaluate --strict" "$work/small37.nii.gz: 100.0% of its voxels normalise outside" \
    evaluate --weights "$work/glob/last.safetensors" --data "$work/small37.nii.gz" --subset all --out "$work/ge" \
    --device cpu --strict
  check "evaluate --strict wrote no metrics" test ! -e "$work/ge/metrics.json"
fi

# A volume with no orientation (qform and sform codes 0): training warns, naming it, and goes on.
if /usr/bin/python3 -c "
import sys, nibabel as nib, numpy as np
v = np.asarray(nib.load(sys.argv[1]).dataobj, dtype=np.float32)[60:120:2, 90:110, 60:120:2]
img = nib.Nifti1Image(v, np.eye(4))
img.set_qform(None, code=0)
img.set_sform(None, code=0)
nib.save(img, sys.argv[2])" "$colin" "$work/unoriented.nii.gz" 2>/dev/null; then
  "$mriae" train --data "$work/unoriented.nii.gz" --out "$work/run_unoriented" --central 5 --epochs 1 --batch 4 \
    --device cpu --quiet >"$work/out" 2>"$work/err"
  rc=$?
  check "training on a volume with no orientation runs (got $rc: $(tail -c 300 "$work/err"))" test "$rc" -eq 0
  check "and warns, naming the file (got: $(head -c 300 "$work/err"))" \
    grep -qF "warning: $work/unoriented.nii.gz: no usable orientation" "$work/err"
fi

# Keras weights (tests/keras): evaluate with the tutorial's pipeline, export, the export evaluates the same.
keras=$(dirname "$0")/../keras
"$mriae" evaluate --weights "$keras/tutorial_keras2.h5" --data "$colin" --slices 100:104 --subset all \
  --figure-slices 0 --out "$work/keras_eval" >"$work/out" 2>"$work/err"
check "evaluate with Keras weights (got: $(tail -c 300 "$work/err"))" test -s "$work/keras_eval/metrics.json"
"$mriae" export --weights "$keras/tutorial_keras3.weights.h5" --keras "$work/exported.h5" >"$work/out" 2>"$work/err"
check "export a Keras 3 file as Keras 2 (got: $(tail -c 300 "$work/err"))" test -s "$work/exported.h5"
"$mriae" evaluate --weights "$work/exported.h5" --data "$colin" --slices 100:104 --subset all \
  --figure-slices 0 --out "$work/keras_eval2" >"$work/out" 2>"$work/err"
check "the export evaluates as the original" \
  test "$(grep -m1 psnr_db "$work/keras_eval/metrics.json")" = "$(grep -m1 psnr_db "$work/keras_eval2/metrics.json")"
expect_error "Keras weights need --data" "--data" evaluate --weights "$keras/tutorial_keras2.h5" --out "$work/e"
expect_error "Keras weights and a global method" "--normalize train" reconstruct --weights "$keras/tutorial_keras2.h5" \
  --in "$colin" --out "$work/r.nii" --normalize train
expect_error "Keras pipeline options with a checkpoint" "for Keras weights only" reconstruct \
  --weights "$run/last.safetensors" --in "$colin" --out "$work/r.nii" --axis 0
expect_error "export format against the name" ".weights.h5" export --weights "$keras/tutorial_keras2.h5" \
  --keras "$work/x.weights.h5" --format keras2
printf 'not hdf5' >"$work/fake.h5"
expect_error "not an HDF5 file" "$work/fake.h5: not an HDF5 file" export --weights "$work/fake.h5" --keras "$work/y.h5"

finish cli
