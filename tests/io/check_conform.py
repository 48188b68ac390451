#!/usr/bin/python3
"""`mriae conform` against nibabel and scipy, on real files and on reoriented copies of one written by nibabel.

    check_conform.py MRIAE_BINARY

For every case nibabel is the reference: the input's axis codes (nibabel.aff2axcodes of img.affine, the
sform when its code is not 0, else the qform), the reoriented array and affine
(nibabel.funcs.as_closest_canonical), and the resampled one (nibabel.processing.resample_to_output on the
canonical image's float data, order=1 for linear, order=0 for nearest; it calls
scipy.ndimage.affine_transform). Limits:
  - affine: 1e-4 mm (the output file stores it as float32);
  - a volume that needs no resampling (its canonical affine within 1e-6 mm of diag(voxel)): the array equal
    to as_closest_canonical's, exactly;
  - linear: |mriae - nibabel| <= 1e-5 of the input's intensity range (float32 data, float64 in scipy);
  - nearest: equal.
Voxels whose source point lies within 1e-6 voxel of the input's edge but not on it (mriae samples them on the
edge, scipy's result there hangs on the coordinate's last bit) or, for nearest, likewise near a rounding tie
are counted and left out.
A volume with no orientation (both codes 0) must warn, naming the file, and keep its array order, resampled
along its array axes from pixdim (resample_from_to onto that grid). Exit 77 when nibabel, scipy or the
mricron-data volumes are missing (a skip for ctest), 1 on any mismatch.
"""
import itertools
import os
import subprocess
import sys
import tempfile

try:
    import nibabel as nib
    import numpy as np
    import nibabel.processing as nproc
    import scipy.ndimage  # noqa: F401  (nibabel.processing needs it)
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"skipped: {e} (Debian packages python3-nibabel and python3-scipy)")
    sys.exit(77)

MRICRON = "/usr/share/mricron/templates"
NIBDATA = os.path.join(os.path.dirname(nib.__file__), "tests", "data")
EDGE = 1e-6

failures = []
checked = 0


def fail(case, what):
    failures.append(f"{case}: {what}")
    print(f"FAIL {case}: {what}")


def run_mriae(mriae, src, out, voxel, interp, frame=None):
    cmd = [mriae, "conform", "--in", src, "--out", out, "--voxel", str(voxel), "--interp", interp]
    if frame is not None:
        cmd += ["--frame", str(frame)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def niftilib_qform(h):
    """The qform as niftilib decodes it (nifti_quatern_to_dmat44): like nibabel's get_qform, except that a
    remainder 1 - (b^2 + c^2 + d^2) below 1e-7 counts as 0 (a 180-degree turn, whose float32 quaternion leaves
    a rounding remainder) and b, c, d are renormalised, where nibabel takes its square root and tilts the axes
    by up to about 5e-4."""
    b, c, d = (float(h[k]) for k in ("quatern_b", "quatern_c", "quatern_d"))
    a = 1.0 - (b * b + c * c + d * d)
    if a < 1e-7:
        n = 1.0 / np.sqrt(b * b + c * c + d * d)
        b, c, d, a = b * n, c * n, d * n, 0.0
    else:
        a = np.sqrt(a)
    r = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                  [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                  [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]])
    zooms = np.array(h["pixdim"][1:4], dtype=np.float64)
    zooms[2] *= -1 if h["pixdim"][0] < 0 else 1
    out = np.eye(4)
    out[:3, :3] = r * zooms
    out[:3, 3] = [float(h[k]) for k in ("qoffset_x", "qoffset_y", "qoffset_z")]
    return out


def frame_image(case, img, frame):
    """The volume as float64 with the affine mriae is to use: nibabel's (the sform when its code is not 0,
    else the qform), the qform decoded as niftilib does (checked against nibabel's within 1e-3)."""
    data = np.asarray(img.get_fdata(dtype=np.float64))
    if data.ndim == 4:
        data = data[..., frame]
    affine = img.affine
    h = img.header
    if hasattr(h, "get_sform") and int(h["sform_code"]) == 0 and int(h["qform_code"]) != 0:
        affine = niftilib_qform(h)
        if not np.allclose(affine, img.affine, atol=1e-3, rtol=0):
            fail(case, f"niftilib's qform\n{affine}\nis not nibabel's\n{img.affine}")
    return nib.Nifti1Image(data, affine)


def excluded(from_affine, from_shape, to_affine, to_shape, nearest):
    """Voxels of the output grid whose source coordinate is within EDGE of the input's edge (or of a tie)."""
    m = np.linalg.inv(from_affine) @ to_affine
    idx = np.indices(to_shape, dtype=np.float64).reshape(3, -1)
    c = m[:3, :3] @ idx + m[:3, 3:4]
    bad = np.zeros(c.shape[1], dtype=bool)
    for a in range(3):
        top = from_shape[a] - 1
        for dist in (np.abs(c[a]), np.abs(c[a] - top)) + ((np.abs(c[a] - np.floor(c[a]) - 0.5),) if nearest else ()):
            bad |= (dist > 0) & (dist <= EDGE)  # on it exactly, both sides agree
    return bad.reshape(to_shape, order="F")


def compare(case, src, voxel, interp, mriae, work, frame=None):
    global checked
    img = nib.load(src)
    ref = frame_image(case, img, frame)
    h = img.header
    oriented = int(h["sform_code"]) != 0 or int(h["qform_code"]) != 0 if hasattr(h, "get_sform") else False
    out = os.path.join(work, "out.nii.gz")
    rc, stdout, stderr = run_mriae(mriae, src, out, voxel, interp, frame)
    if rc != 0:
        return fail(case, f"mriae conform failed ({rc}): {stderr.strip()}")
    got_img = nib.load(out)
    got = np.asarray(got_img.dataobj, dtype=np.float64)
    rng = float(np.ptp(ref.get_fdata()))

    if oriented:
        codes = "".join(nib.aff2axcodes(ref.affine))
        if codes != "".join(nib.aff2axcodes(img.affine)):
            fail(case, "nibabel's and niftilib's qform have different axis codes")
        if f"axes {codes} -> RAS" not in stdout:
            fail(case, f"axis codes: nibabel {codes}, mriae said: {stdout.strip()}")
        canon = nib.as_closest_canonical(ref)
        base = canon
        if "warning" in stderr:
            fail(case, f"unexpected warning: {stderr.strip()}")
    else:
        if src not in stderr or "no usable orientation" not in stderr:
            fail(case, f"no warning naming the file: {stderr.strip()!r}")
        zooms = np.array(h.get_zooms()[:3], dtype=np.float64)
        base = nib.Nifti1Image(np.asarray(ref.dataobj), np.diag(list(zooms) + [1.0]))
    if np.all(np.abs(base.affine[:3, :3] - voxel * np.eye(3)) <= 1e-6):
        expected, exact, bad = np.asarray(base.dataobj), True, None
        exp_affine = base.affine
    else:
        order = 1 if interp == "linear" else 0
        res = nproc.resample_to_output(base, voxel, order=order, mode="constant", cval=0.0)
        expected, exp_affine, exact = np.asarray(res.dataobj), res.affine, False
        bad = excluded(base.affine, base.shape, res.affine, res.shape, interp == "nearest")
    checked += 1
    if got.shape != expected.shape:
        return fail(case, f"shape: mriae {got.shape}, nibabel {expected.shape}")
    if oriented and not np.allclose(got_img.affine, exp_affine, atol=1e-4, rtol=0):
        return fail(case, f"affine: mriae\n{got_img.affine}\nnibabel\n{exp_affine}")
    if not oriented:  # the output has no orientation either: its codes are 0 and pixdim the new voxel size
        if int(got_img.header["sform_code"]) or int(got_img.header["qform_code"]):
            fail(case, "xform codes set on an output with no orientation")
        if not np.allclose(got_img.header.get_zooms()[:3], np.diag(exp_affine)[:3], atol=1e-6):
            fail(case, f"voxel size {got_img.header.get_zooms()[:3]}, expected {np.diag(exp_affine)[:3]}")
    if oriented:
        code = int(h["sform_code"]) or int(h["qform_code"])
        if int(got_img.header["sform_code"]) != code or int(got_img.header["qform_code"]) != code:
            fail(case, f"xform codes {int(got_img.header['sform_code'])}/{int(got_img.header['qform_code'])}, "
                       f"not the input's {code}")
    if exact:
        if not np.array_equal(got, expected):
            return fail(case, f"array differs from as_closest_canonical's in {(got != expected).sum()} voxels")
        print(f"ok {case}: {got.shape}, equal to as_closest_canonical (no resampling needed)")
        return
    diff = np.abs(got - expected)
    diff[bad] = 0
    limit = 0.0 if interp == "nearest" else 1e-5 * rng
    if diff.max() > limit:
        i = np.unravel_index(np.argmax(diff), diff.shape)
        return fail(case, f"max |diff| {diff.max():.3g} > {limit:.3g} at {i}: mriae {got[i]}, nibabel {expected[i]}")
    print(f"ok {case}: {got.shape} {interp}, max |diff| {diff.max():.3g} (limit {limit:.3g}), "
          f"{int(bad.sum())} edge voxels left out of {got.size}")


def rotation(ax, deg):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    r = np.eye(3)
    i, j = [k for k in range(3) if k != ax]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def variants(work):
    """Copies of a 2 mm ch2 in every axis order and direction, stored with different forms."""
    ch2 = nib.load(os.path.join(MRICRON, "ch2.nii.gz"))
    data = np.asarray(ch2.dataobj)[::2, ::2, ::2].astype(np.int16)  # 91 x 109 x 91
    aff = ch2.affine.copy()
    aff[:3, :3] *= 2
    out = []
    for n, (perm, flips) in enumerate(itertools.product(itertools.permutations(range(3)),
                                                        itertools.product((1, -1), repeat=3))):
        # Array axis a of the copy is axis perm[a] of the source, reversed when flips[a] is -1.
        arr = data.transpose(perm)
        for a in range(3):
            if flips[a] < 0:
                arr = np.flip(arr, axis=a)
        # m maps the copy's voxels onto the source's: source index perm[a] = flip ? n-1-i : i
        m = np.zeros((4, 4))
        for a in range(3):
            m[perm[a], a] = flips[a]
            m[perm[a], 3] = 0 if flips[a] > 0 else data.shape[perm[a]] - 1
        m[3, 3] = 1
        img = nib.Nifti1Image(np.ascontiguousarray(arr), aff @ m)
        # Alternate the forms: sform only, qform only, both (sform wins over a decoy qform).
        kind = n % 3
        if kind == 0:
            img.set_qform(None, code=0)
            img.set_sform(aff @ m, code=4)
        elif kind == 1:
            img.set_sform(None, code=0)
            img.set_qform(aff @ m, code=1)
        else:
            img.set_sform(aff @ m, code=2)
            decoy = np.diag([3.0, 3.0, 3.0, 1.0])
            img.set_qform(decoy, code=1)
        path = os.path.join(work, f"perm{perm[0]}{perm[1]}{perm[2]}_flip{''.join('+' if f > 0 else '-' for f in flips)}"
                                  f"_{['sform', 'qform', 'both'][kind]}.nii.gz")
        nib.save(img, path)
        out.append(path)

    # Oblique: rotated 20 degrees about z and 10 about x, anisotropic voxels, qform only (with qfac -1).
    r = rotation(2, 20) @ rotation(0, 10)
    ob = np.eye(4)
    ob[:3, :3] = r @ np.diag([1.5, 2.0, -2.5])
    ob[:3, 3] = [-80, -100, 60]
    img = nib.Nifti1Image(data[:60, :70, :50], ob)
    img.set_sform(None, code=0)
    img.set_qform(ob, code=1)
    path = os.path.join(work, "oblique_qform.nii.gz")
    nib.save(img, path)
    extra = [path]
    # The same as an sform with a shear, which no qform can hold.
    sh = ob.copy()
    sh[0, 1] += 0.3
    img = nib.Nifti1Image(data[:60, :70, :50], sh)
    img.set_qform(None, code=0)
    img.set_sform(sh, code=2)
    path = os.path.join(work, "oblique_shear_sform.nii.gz")
    nib.save(img, path)
    extra.append(path)
    # No orientation at all: both codes 0, pixdim 2 x 2 x 3.
    img = nib.Nifti1Image(data[:40, :50, :30], np.diag([2.0, 2.0, 3.0, 1.0]))
    img.set_qform(None, code=0)
    img.set_sform(None, code=0)
    img.header.set_zooms((2.0, 2.0, 3.0))
    path = os.path.join(work, "no_orientation.nii.gz")
    nib.save(img, path)
    extra.append(path)
    return out, extra


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    mriae = sys.argv[1]
    if not os.path.exists(os.path.join(MRICRON, "ch2.nii.gz")):
        print(f"skipped: {MRICRON}/ch2.nii.gz is missing (Debian package mricron-data)")
        return 77
    with tempfile.TemporaryDirectory() as work:
        # Real files as they are.
        compare("ch2 1 mm", os.path.join(MRICRON, "ch2.nii.gz"), 1.0, "linear", mriae, work)
        compare("ch2bet 1.5 mm linear", os.path.join(MRICRON, "ch2bet.nii.gz"), 1.5, "linear", mriae, work)
        compare("jhu189 (LAS) 1 mm", os.path.join(MRICRON, "jhu189.nii.gz"), 1.0, "linear", mriae, work)
        compare("inia19 0.5 mm -> 1 mm", os.path.join(MRICRON, "inia19-t1-brain.nii.gz"), 1.0, "linear", mriae, work)
        compare("anatomical.nii (LAS, big-endian) 1 mm", os.path.join(NIBDATA, "anatomical.nii"), 1.0, "linear",
                mriae, work)
        compare("anatomical.nii nearest 1.3 mm", os.path.join(NIBDATA, "anatomical.nii"), 1.3, "nearest", mriae, work)
        compare("example4d frame 1 (oblique) 2 mm", os.path.join(NIBDATA, "example4d.nii.gz"), 2.0, "linear", mriae,
                work, frame=1)
        compare("example4d frame 0 nearest 1.7 mm", os.path.join(NIBDATA, "example4d.nii.gz"), 1.7, "nearest", mriae,
                work, frame=0)
        compare("functional frame 7 (4x4x8 mm) 3 mm", os.path.join(NIBDATA, "functional.nii"), 3.0, "linear", mriae,
                work, frame=7)
        perms, extra = variants(work)
        for p in perms:  # every axis code: no resampling at 2 mm, so the array must equal nibabel's
            compare(os.path.basename(p), p, 2.0, "linear", mriae, work)
        for p in perms[::16]:  # and resampled (sform, qform and both kinds)
            compare(os.path.basename(p) + " 1.5 mm", p, 1.5, "linear", mriae, work)
        for p in extra:
            compare(os.path.basename(p) + " 1.5 mm linear", p, 1.5, "linear", mriae, work)
            compare(os.path.basename(p) + " 1.25 mm nearest", p, 1.25, "nearest", mriae, work)
    print(f"conform vs nibabel: {checked} cases, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
