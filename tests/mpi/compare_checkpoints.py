"""Compares two safetensors checkpoints tensor by tensor: the largest relative difference (max |a-b| over
max |b|, per tensor) must stay within LIMIT. Usage: compare_checkpoints.py A B LIMIT. Exit 0 within, 1 not.
Reads the format itself (8-byte header length, JSON header, raw little-endian data): no safetensors package."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a : 8 + n + b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return out, header.get("__metadata__", {})


def main():
    a, _ = read(sys.argv[1])
    b, _ = read(sys.argv[2])
    limit = float(sys.argv[3])
    if sorted(a) != sorted(b):
        print("different tensors:", sorted(set(a) ^ set(b)))
        return 1
    worst, where = 0.0, ""
    for name in a:
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        scale = max(np.max(np.abs(y)), 1e-30) if y.size else 1.0
        rel = float(np.max(np.abs(x - y)) / scale) if y.size else 0.0
        if rel > worst:
            worst, where = rel, name
    print(f"{len(a)} tensors, worst relative difference {worst:.3e} ({where}), limit {limit:g}")
    return 0 if worst <= limit else 1


if __name__ == "__main__":
    sys.exit(main())
