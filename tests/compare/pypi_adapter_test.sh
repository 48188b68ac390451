#!/bin/bash
# mriae trace -> python3 -m mriae_compare --framework FRAMEWORK (jax, or keras on its JAX backend), in a venv
# of PyPI's jax and keras cached under ~/.cache/mriae/compare-venv (made on first use). A float64 and a
# float32 trace pass (Keras: float32 only, and its float64 run fails at bn1, as it must); a planted mistake fails,
# naming its first tensor (for Keras, its own RMSprop, whose eps is inside the square root).
# Usage: pypi_adapter_test.sh MRIAE SOURCE_DIR FRAMEWORK. Exit 77 (skipped) when the packages cannot be
# installed or imported (no network, no python3-venv), or without nibabel or Colin27.
set -u
export KERAS_BACKEND=jax
mriae=$1
src=$2
fw=$3
venv=${XDG_CACHE_HOME:-$HOME/.cache}/mriae/compare-venv
py=$venv/bin/python
module=$fw
[ "$fw" = keras ] && module="keras, jax"
if ! /usr/bin/python3 -c "import nibabel, numpy" 2>/dev/null || [ ! -f /usr/share/mricron/templates/ch2.nii.gz ]; then
  echo "skipped: needs python3-nibabel and mricron-data"
  exit 77
fi
if ! "$py" -c "import $module" 2>/dev/null; then
  # One install for both frameworks, pinned to a major version whose APIs the adapters use.
  mkdir -p "$(dirname "$venv")"
  (flock 9
   "$py" -c "import $module" 2>/dev/null ||
     { /usr/bin/python3 -m venv "$venv" && timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check \
         "jax[cpu]<1" "keras>=3,<4" numpy; }) 9> "$venv.lock" > "$venv.log" 2>&1
  if ! "$py" -c "import $module" 2>/dev/null; then
    echo "skipped: could not install or import $module in $venv:"
    tail -3 "$venv.log"
    exit 77
  fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
compare() { KERAS_BACKEND=jax PYTHONPATH="$src/python" "$py" -m mriae_compare --framework "$fw" "$@"; }

# Smaller than the PyTorch test: 32x32 crops, two steps (eager JAX is slow on two cores).
/usr/bin/python3 "$src/tests/compare/make_input.py" "$tmp/input.safetensors" 4 32 || exit 1
dtypes="float64 float32"
# Keras 3's BatchNormalization computes in float32 whatever its dtype (python/mriae_compare/keras_adapter.py):
# its float64 run must fail at bn1's output, and only its float32 run can pass.
[ "$fw" = keras ] && dtypes=float32
for dtype in $dtypes; do
  "$mriae" trace --seed 7 --input "$tmp/input.safetensors" --batch 2 --steps 2 --dtype $dtype \
    --out "$tmp/$dtype.safetensors" || { fail "mriae trace --dtype $dtype"; continue; }
  compare "$tmp/$dtype.safetensors" > "$tmp/out.txt"
  rc=$?
  tail -3 "$tmp/out.txt"
  [ $rc -eq 0 ] && grep -q "^PASS: all 400 checks" "$tmp/out.txt" || fail "$dtype: $fw did not pass (exit $rc)"
done
if [ "$fw" = keras ]; then
  "$mriae" trace --seed 7 --input "$tmp/input.safetensors" --batch 2 --steps 1 --dtype float64 --out "$tmp/f64.safetensors"
  compare "$tmp/f64.safetensors" --failures-only > "$tmp/out.txt"
  rc=$?
  tail -1 "$tmp/out.txt"
  [ $rc -eq 1 ] && grep -q "first out of limits: step1/act/bn1 " "$tmp/out.txt" || fail "keras float64: exit $rc, not bn1"
else
  compare "$tmp/float64.safetensors" --plant bn-eps --failures-only > "$tmp/out.txt"
  rc=$?
  tail -1 "$tmp/out.txt"
  [ $rc -eq 1 ] && grep -q "first out of limits: step1/act/bn1 " "$tmp/out.txt" || fail "--plant bn-eps: exit $rc"
fi
compare "$tmp/float32.safetensors" --plant rmsprop-eps-inside --failures-only > "$tmp/out.txt"
rc=$?
tail -1 "$tmp/out.txt"
[ $rc -eq 1 ] && grep -q "first out of limits: step1/after/conv1.weight " "$tmp/out.txt" || fail "--plant rmsprop-eps-inside: exit $rc"

[ $fails -eq 0 ] && echo "$fw adapter test: all passed" || echo "$fw adapter test: $fails failure(s)"
[ $fails -eq 0 ]
