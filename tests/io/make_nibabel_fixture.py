#!/usr/bin/python3
"""Writes tests/io/nibabel_fixture.json: what nibabel reads from the real images the C++ reader is tested on.

Run with the Debian python (python3-nibabel): /usr/bin/python3 tests/io/make_nibabel_fixture.py
The C++ tests compare against this file, so they need neither Python nor nibabel at test time.

For every image: nibabel's shape and voxel values (get_fdata: scaled, float64) at a few fixed and a few
random voxels. For ch2.nii.gz also the tutorial's preprocessing, written out step by step with numpy
exactly as the tutorial does it (a[:, 83:134, :] per slice, min-max over all slices, zeros at
temp[:, 3:, 3:]): sample pixels and per-slice orientation-sensitive checksums of the result.
"""
import json
import os
import re
import sys

import nibabel as nib
import numpy as np

MRICRON = "/usr/share/mricron/templates"
NIBABEL = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nibabel_fixture.json")

# (path, frame for 4-D images or None)
IMAGES = [
    (os.path.join(MRICRON, "ch2.nii.gz"), None),
    (os.path.join(MRICRON, "inia19-t1-brain.nii.gz"), None),
    (os.path.join(NIBABEL, "anatomical.nii"), None),        # big-endian int16
    (os.path.join(NIBABEL, "functional.nii"), 7),           # scl_slope / scl_inter, 20 frames
    (os.path.join(NIBABEL, "example4d.nii.gz"), 1),         # extensions, 2 frames
    (os.path.join(NIBABEL, "example_nifti2.nii.gz"), 1),    # NIfTI-2
]


def voxel_samples(vol, rng, n_random=24):
    shape = vol.shape
    picks = [(0, 0, 0), tuple(s - 1 for s in shape), tuple(s // 2 for s in shape),
             (shape[0] // 3, shape[1] // 2, 2 * shape[2] // 3)]
    picks += [tuple(int(rng.integers(0, s)) for s in shape) for _ in range(n_random)]
    # and some non-zero voxels, which random picks in a mostly empty template may miss
    nz = np.argwhere(vol != 0)
    if len(nz):
        picks += [tuple(int(x) for x in nz[int(rng.integers(0, len(nz)))]) for _ in range(n_random)]
    return [[i, j, k, float(vol[i, j, k])] for (i, j, k) in picks]


def tutorial_slices(vol, start, stop):
    images = [vol[:, j, :] for j in range(start, stop)]
    images = np.asarray(images)
    m, mi = np.max(images), np.min(images)
    images = (images - mi) / (m - mi)
    h, w = images.shape[1:]
    ph, pw = (h + 3) // 4 * 4, (w + 3) // 4 * 4
    temp = np.zeros([images.shape[0], ph, pw])
    temp[:, ph - h:, pw - w:] = images
    return temp, float(mi), float(m)


def main():
    rng = np.random.default_rng(20180601)
    out = {"generator": "tests/io/make_nibabel_fixture.py", "nibabel": nib.__version__, "images": []}
    for path, frame in IMAGES:
        if not os.path.exists(path):
            sys.exit(f"missing {path}")
        img = nib.load(path)
        data = img.get_fdata()
        vol = data if data.ndim == 3 else data[..., frame]
        entry = {
            "path": path,
            "frame": frame,
            "shape": list(img.shape),
            "min": float(np.min(data)),
            "max": float(np.max(data)),
            "axcodes": "".join(nib.aff2axcodes(img.affine)),
            "voxels": voxel_samples(vol, rng),
        }
        out["images"].append(entry)

    ch2 = nib.load(os.path.join(MRICRON, "ch2.nii.gz")).get_fdata()
    start = (ch2.shape[1] - 51) // 2
    stack, mi, m = tutorial_slices(ch2, start, start + 51)
    rows = np.arange(stack.shape[1], dtype=np.float64)[:, None]
    cols = np.arange(stack.shape[2], dtype=np.float64)[None, :]
    samples = []
    for _ in range(200):
        n, r, c = (int(rng.integers(0, s)) for s in stack.shape)
        samples.append([n, r, c, float(stack[n, r, c])])
    out["ch2_tutorial"] = {
        "path": os.path.join(MRICRON, "ch2.nii.gz"),
        "axis": 1,
        "start": int(start),
        "stop": int(start + 51),
        "shape": list(stack.shape),
        "min": mi,
        "max": m,
        "samples": samples,
        # sum(v), sum(v * row), sum(v * col) per slice: a transposed or flipped slice changes the last two
        "checksums": [[float(s.sum()), float((s * rows).sum()), float((s * cols).sum())] for s in stack],
    }
    # The other two axes: slice index, then (row, col, value) samples of vol[i, :, :] and vol[:, :, k].
    other = []
    for axis, index in ((0, 97), (2, 60)):
        sl = ch2[index, :, :] if axis == 0 else ch2[:, :, index]
        nz = np.argwhere(sl != 0)
        pts = [nz[int(rng.integers(0, len(nz)))] for _ in range(30)]
        other.append({"axis": axis, "index": index, "shape": list(sl.shape),
                      "pixels": [[int(r), int(c), float(sl[r, c])] for r, c in pts]})
    out["ch2_other_axes"] = other

    # One line per innermost list (a voxel sample, a checksum row), so the file stays short and diffable.
    text = json.dumps(out, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
