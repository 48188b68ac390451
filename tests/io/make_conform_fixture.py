#!/usr/bin/python3
"""Writes tests/io/conform_fixture.json: what nibabel makes of real images when conforming them.

Run with the Debian python (python3-nibabel, python3-scipy): /usr/bin/python3 tests/io/make_conform_fixture.py
The C++ test (tests/io/test_conform_fixture.cpp) compares io/orientation and io/resample with it in float64,
where tests/io/check_conform.py compares whole arrays through files (float32 affines).

For every image: nibabel's img.affine, aff2axcodes and io_orientation; as_closest_canonical's shape and affine
and a few of its voxels; resample_to_output of the canonical image's float data (order 1) at the given voxel
size: shape, affine and values at fixed and random voxels away from the edge.
"""
import json
import os
import re

import nibabel as nib
import nibabel.processing as nproc
import numpy as np

MRICRON = "/usr/share/mricron/templates"
NIBABEL = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conform_fixture.json")

# (path, frame for 4-D images or None, voxel size of the resampled grid)
IMAGES = [
    (os.path.join(MRICRON, "ch2bet.nii.gz"), None, 1.5),               # RAS, sform only
    (os.path.join(MRICRON, "jhu189.nii.gz"), None, 1.25),              # LAS
    (os.path.join(MRICRON, "inia19-t1-brain.nii.gz"), None, 1.0),      # 0.5 mm
    (os.path.join(NIBABEL, "anatomical.nii"), None, 1.0),              # LAS, big-endian
    (os.path.join(NIBABEL, "example4d.nii.gz"), 1, 2.0),               # oblique
    (os.path.join(NIBABEL, "functional.nii"), 7, 3.0),                 # 4 x 4 x 8 mm
]


def samples(vol, rng, n=40, margin=1):
    shape = vol.shape
    picks = [tuple(s // 2 for s in shape), tuple(s // 3 for s in shape)]
    picks += [tuple(int(rng.integers(margin, s - margin)) for s in shape) for _ in range(n)]
    nz = np.argwhere(vol[margin:-margin, margin:-margin, margin:-margin] != 0) + margin
    if len(nz):
        picks += [tuple(int(x) for x in nz[int(rng.integers(0, len(nz)))]) for _ in range(n)]
    return [[i, j, k, float(vol[i, j, k])] for (i, j, k) in picks]


def main():
    rng = np.random.default_rng(20261202)
    out = {"generator": "tests/io/make_conform_fixture.py", "nibabel": nib.__version__, "images": []}
    for path, frame, voxel in IMAGES:
        img = nib.load(path)
        data = img.get_fdata()
        if data.ndim == 4:
            data = data[..., frame]
        ref = nib.Nifti1Image(data, img.affine)
        canon = nib.as_closest_canonical(ref)
        res = nproc.resample_to_output(canon, voxel, order=1, mode="constant", cval=0.0)
        rdata = np.asarray(res.dataobj)
        out["images"].append({
            "path": path,
            "frame": frame,
            "affine": img.affine.tolist(),
            "axcodes": "".join(nib.aff2axcodes(img.affine)),
            "ornt": nib.io_orientation(img.affine).astype(int).tolist(),
            "canonical_shape": list(canon.shape),
            "canonical_affine": canon.affine.tolist(),
            "canonical_voxels": samples(np.asarray(canon.dataobj), rng, 20, 0 + 1),
            "voxel": voxel,
            "resampled_shape": list(res.shape),
            "resampled_affine": res.affine.tolist(),
            # Away from the edge, where scipy and mriae agree to rounding (io/resample.h).
            "resampled_voxels": samples(rdata, rng, 40, 2),
            "range": float(np.ptp(data)),
        })
    text = json.dumps(out, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
