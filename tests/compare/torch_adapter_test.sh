#!/bin/bash
# mriae trace -> python3 -m mriae_compare (PyTorch, Debian's python3-torch): a real trace passes in float64
# and float32; each planted mistake fails and the first tensor out of its limit is the one it changes first.
# Usage: torch_adapter_test.sh MRIAE SOURCE_DIR. Exit 77 (skipped) without PyTorch, nibabel or Colin27.
set -u
mriae=$1
src=$2
py=/usr/bin/python3
if ! $py -c "import torch, nibabel, numpy" 2>/dev/null || [ ! -f /usr/share/mricron/templates/ch2.nii.gz ]; then
  echo "skipped: needs python3-torch, python3-nibabel and mricron-data"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
compare() { PYTHONPATH="$src/python" $py -m mriae_compare "$@"; }

$py "$src/tests/compare/make_input.py" "$tmp/input.safetensors" 6 64 || exit 1
for dtype in float64 float32; do
  "$mriae" trace --seed 13 --input "$tmp/input.safetensors" --batch 2 --steps 3 --dtype $dtype \
    --out "$tmp/$dtype.safetensors" || { fail "mriae trace --dtype $dtype"; continue; }
  compare "$tmp/$dtype.safetensors" > "$tmp/out.txt"
  rc=$?
  tail -4 "$tmp/out.txt"
  [ $rc -eq 0 ] && grep -q "^PASS: all 600 checks" "$tmp/out.txt" || fail "$dtype: PyTorch did not pass (exit $rc)"
done

# Each mistake, and the first tensor it changes.
check_plant() {
  local dtype=$1 plant=$2 first=$3
  compare "$tmp/$dtype.safetensors" --plant "$plant" --failures-only > "$tmp/out.txt"
  local rc=$?
  tail -1 "$tmp/out.txt"
  [ $rc -eq 1 ] || fail "$dtype --plant $plant: exit $rc, not 1"
  grep -q "first out of limits: $first " "$tmp/out.txt" || fail "$dtype --plant $plant: first diverging tensor is not $first"
}
for dtype in float64 float32; do
  check_plant $dtype bn-eps step1/act/bn1
  check_plant $dtype running-var step1/after/bn1.running_var
  check_plant $dtype rmsprop-eps-inside step1/after/conv1.weight
done

# Bad files and options.
echo "not a trace" > "$tmp/junk.safetensors"
compare "$tmp/junk.safetensors" 2> "$tmp/err.txt"
rc=$?
[ $rc -eq 2 ] && grep -q "junk.safetensors" "$tmp/err.txt" || fail "a junk trace: exit $rc, $(cat "$tmp/err.txt")"
compare "$tmp/float64.safetensors" --plant nonsense 2> "$tmp/err.txt"
[ $? -eq 2 ] || fail "an unknown --plant was accepted"
"$mriae" trace --seed 1 --input "$tmp/input.safetensors" --dtype float16 --out "$tmp/x.safetensors" 2> "$tmp/err.txt"
rc=$?
[ $rc -eq 1 ] && grep -q -- "--dtype" "$tmp/err.txt" && [ ! -e "$tmp/x.safetensors" ] || fail "trace --dtype float16: exit $rc"
"$mriae" trace --weights "$tmp/none.safetensors" --input "$tmp/input.safetensors" --out "$tmp/x.safetensors" 2> "$tmp/err.txt"
rc=$?
[ $rc -eq 1 ] && grep -q "none.safetensors" "$tmp/err.txt" && [ ! -e "$tmp/x.safetensors" ] || fail "trace --weights missing: exit $rc"

[ $fails -eq 0 ] && echo "torch adapter test: all passed" || echo "torch adapter test: $fails failure(s)"
[ $fails -eq 0 ]
