#!/usr/bin/env bash
# Gathers into DIR what a CUDA build of mriae and its GPU checks need that an offline GPU node lacks: the
# Debian packages of niftilib, zlib, CLI11, nlohmann-json and doctest, downloaded with `apt-get download`
# and unpacked with `dpkg -x` (never installed), laid out as one prefix (DIR/include, DIR/lib,
# DIR/lib/cmake, DIR/share/cmake), with DIR/manifest.tsv naming each package and its version.
#
#   bash scripts/offline-deps.sh DIR        (on a Debian 12 machine with its package registry)
#
# Then copy DIR to the node along with the source tree and configure with -DMRIAE_DEPS_DIR=DIR (README:
# "Offline GPU node"). cuDNN is not in DIR: the node has it as the pip wheel nvidia-cudnn-cu13 (CUDNN_ROOT,
# or found through python3), and the CUDA toolkit is the node's own. No GPU check reads a data file (the
# GPU tests and train_steps use generated inputs and tests/parity/state_v1.bin, which is in the tree), so
# no data is bundled. gnuplot is left out: only `mriae train/evaluate` draw with it, and without it they
# say so and go on.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$1
# DIR's include/, lib/ and share/ are replaced: only in a new or empty directory, or one this script made.
if [[ -d $dir && -n $(ls -A "$dir") && ! -f $dir/manifest.tsv ]]; then
  echo "offline-deps: $dir is not empty and has no manifest.tsv: not a bundle directory, left alone" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# The runtime libraries come with their -dev packages: the node has no libnifti2-2 or libznz3 either.
packages=(
  libnifti2-dev libnifti2-2 libniftiio-dev libznz-dev libznz3  # niftilib: nifti2_io.h (niftiio-dev), libnifti2, libznz
  zlib1g-dev zlib1g                                             # zlib.h for io/gzip_file.cpp, and libz
  libcli11-dev                                                  # the mriae program (not built with MRIAE_GPU_ONLY)
  nlohmann-json3-dev                                            # safetensors headers, config and metrics
  doctest-dev                                                   # mriae_gpu_tests
)

command -v apt-get >/dev/null && command -v dpkg >/dev/null || {
  echo "offline-deps: needs apt-get and dpkg (a Debian or Ubuntu machine with its package registry)" >&2
  exit 1
}
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/root"
chmod 755 "$work" && chmod 777 "$work/debs"  # apt-get download drops to the _apt user when it can
# apt-get download needs current package lists; refresh them only when a package is unknown.
if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
fi
(cd "$work/debs" && apt-get download -q "${packages[@]/%/:$arch}" >/dev/null) || {
  echo "offline-deps: apt-get download failed (${packages[*]})" >&2
  exit 1
}

rm -rf "${dir:?}/include" "${dir:?}/lib" "${dir:?}/share"
mkdir -p "$dir/include" "$dir/lib" "$dir/share"
printf 'package\tversion\tarchitecture\tfile\n' >"$dir/manifest.tsv"
for deb in "$work/debs"/*.deb; do
  dpkg -x "$deb" "$work/root"
  dpkg-deb -f "$deb" Package Version Architecture |
    awk -v f="$(basename "$deb")" -F': ' '{v[NR] = $2} END {printf "%s\t%s\t%s\t%s\n", v[1], v[2], v[3], f}' \
      >>"$dir/manifest.tsv"
done

# One prefix out of Debian's split layout (usr/include, usr/lib/<triplet>, lib/<triplet>, usr/lib/cmake,
# usr/share/cmake). Documentation and the CMake packages that the build does not use stay behind.
r=$work/root
cp -a "$r/usr/include/." "$dir/include/"
for libdir in "$r/usr/lib/$triplet" "$r/lib/$triplet"; do
  [[ -d $libdir ]] && cp -a "$libdir/." "$dir/lib/"
done
[[ -d $r/usr/lib/cmake ]] && cp -a "$r/usr/lib/cmake" "$dir/lib/"
[[ -d $r/usr/share/cmake ]] && cp -a "$r/usr/share/cmake" "$dir/share/"
rm -rf "$dir/lib/pkgconfig" "$dir/share/cmake/NIFTI"  # NIFTI's CMake package points at /usr/lib (io/CMakeLists.txt)
# Shared libraries only; and niftiio's header (nifti2_io.h) without its library, which mriae never links
# (io/CMakeLists.txt: it exports nifti2's function names for other structs).
rm -f "$dir"/lib/*.a "$dir"/lib/libniftiio.so*
# Debian's unversioned names may be absolute links (libz.so -> /lib/<triplet>/libz.so.1.2.13): point them
# at the copy beside them.
for link in "$dir"/lib/*.so; do
  [[ -L $link ]] || continue
  target=$(readlink "$link")
  if [[ $target == /* ]]; then
    ln -sfn "$(basename "$target")" "$link"
  fi
  [[ -e $link ]] || {
    echo "offline-deps: $link points at $(readlink "$link"), which is not in the bundle" >&2
    exit 1
  }
done
for needed in include/nifti/nifti2_io.h include/nifti/znzlib.h include/zlib.h include/CLI/CLI.hpp \
  include/nlohmann/json.hpp include/doctest/doctest.h lib/libnifti2.so lib/libznz.so lib/libz.so \
  lib/cmake/doctest/doctestConfig.cmake; do
  [[ -e $dir/$needed ]] || {
    echo "offline-deps: $dir/$needed is missing after unpacking" >&2
    exit 1
  }
done

echo "offline-deps: $(($(wc -l <"$dir/manifest.tsv") - 1)) packages in $dir ($(du -sh "$dir" | cut -f1)):"
column -t -s $'\t' "$dir/manifest.tsv" 2>/dev/null || cat "$dir/manifest.tsv"
echo "configure with: cmake -S . -B build/gpu -DMRIAE_DEPS_DIR=$dir -DMRIAE_GPU_ONLY=ON ..."
