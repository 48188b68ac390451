"""The safetensors layout read and written with json and numpy alone (8-byte little-endian header length,
a JSON header, raw little-endian data), so no `safetensors` package is needed."""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


class TraceError(Exception):
    """A trace file that cannot be used, with the file's name in the message."""


def read(path):
    """(tensors: name -> numpy array, metadata: dict). Raises TraceError naming the file and the problem."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise TraceError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) < 8:
        raise TraceError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise TraceError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TraceError(f"{path}: bad safetensors header ({e})") from None
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    tensors = {}
    for name, t in header.items():
        dt = _DTYPES.get(t.get("dtype"))
        if dt is None:
            raise TraceError(f"{path}: tensor '{name}' has unsupported dtype {t.get('dtype')}")
        a, b = t["data_offsets"]
        shape = tuple(t["shape"])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= a <= b <= len(data)) or b - a != count * np.dtype(dt).itemsize:
            raise TraceError(f"{path}: tensor '{name}' has a byte range that does not fit its shape or the file")
        tensors[name] = np.frombuffer(data[a:b], dtype=np.dtype(dt).newbyteorder("<")).reshape(shape).astype(dt)
    return tensors, meta


def write(path, tensors, metadata=None):
    """Writes numpy arrays (float32, float64, int64) as a safetensors file."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, arr in tensors.items():
        arr = np.asarray(arr, order="C")  # not ascontiguousarray, which makes a 0-d array 1-d
        b = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
