#!/usr/bin/env bash
# The mriae program as a user runs it: exit codes and messages for bad input, and Ctrl-C during training
# followed by --resume. Usage: cli_test.sh MRIAE_BINARY. Exits 77 (a visible skip) without mricron-data.
set -uo pipefail
mriae=$1
colin=/usr/share/mricron/templates/ch2.nii.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
passes=0

check() {  # check NAME CONDITION...
  local name=$1
  shift
  if "$@"; then
    passes=$((passes + 1))
  else
    echo "FAIL: $name"
    failures=$((failures + 1))
  fi
}

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
fi

echo "cli: $passes passed, $failures failed"
[[ $failures -eq 0 ]]
