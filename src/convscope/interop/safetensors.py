"""``.safetensors`` files, read without the safetensors package: a JSON header, then raw bytes.

The layout (huggingface/safetensors): an unsigned 64-bit little-endian header length N, N
bytes of UTF-8 JSON ``{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
"__metadata__": {str: str}}``, then the byte buffer the offsets index (relative to its
start). Everything the header claims is checked before any tensor is allocated: the header's
length against the file and a cap, every entry's dtype, shape and offsets, each tensor's size
(shape x itemsize = end - begin), that the ranges lie inside the buffer and do not overlap,
and the total against ``max_bytes``. Then each tensor is read into a preallocated array.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .errors import WeightsError

__all__ = ["read_safetensors", "is_safetensors", "MAX_HEADER"]

MAX_HEADER = 16 << 20          # ResNet-152's header is ~60 KB (the safetensors package allows 100 MB)
_MAX_DIMS = 32
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bf16", "I64": "<i8", "I32": "<i4",
           "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "b1"}


def is_safetensors(head: bytes) -> bool:
    """Whether the first bytes look like a safetensors file (a plausible length, then '{')."""
    return len(head) >= 9 and 2 <= int.from_bytes(head[:8], "little") <= MAX_HEADER and head[8:9] == b"{"


def read_safetensors(path, *, max_bytes: int = 4 << 30) -> dict[str, np.ndarray]:
    """Every tensor of the safetensors file ``path``, by name, in header order (bfloat16 as float32)."""
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(8)
        if len(raw) != 8:
            raise WeightsError(f"'{path}' is too short to be a safetensors file ({size} bytes)")
        n = int.from_bytes(raw, "little")
        if n > MAX_HEADER or 8 + n > size:
            raise WeightsError(f"'{path}': its safetensors header claims {n} bytes, more than "
                               f"{'the file holds' if n <= MAX_HEADER else f'the {MAX_HEADER} allowed'}")
        header = _parse_header(f.read(n), path)
        buffer = size - 8 - n
        entries = _check_entries(header, buffer, max_bytes, path)
        out = {}
        for name, (dtype, shape, begin, end) in entries.items():
            data = np.empty(end - begin, dtype=np.uint8)
            f.seek(8 + n + begin)
            if f.readinto(memoryview(data)) != end - begin:
                raise WeightsError(f"'{path}': tensor {name!r} is truncated")
            out[name] = _to_array(data, dtype, shape)
    return out


def _parse_header(text: bytes, path: Path) -> dict:
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise WeightsError(f"'{path}': its safetensors header is not valid JSON: {str(err)[:120]}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"'{path}': its safetensors header is a {type(header).__name__}, not a JSON object")
    return header


def _check_entries(header: dict, buffer: int, max_bytes: int, path: Path) -> dict:
    """name -> (dtype code, shape, begin, end), every claim checked against the buffer's size."""
    entries, total = {}, 0
    for name, entry in header.items():
        if name == "__metadata__":
            if not (isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())):
                raise WeightsError(f"'{path}': its __metadata__ must map strings to strings")
            continue
        where = f"'{path}': tensor {name[:80]!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise WeightsError(f"{where} must have exactly dtype, shape and data_offsets in the header")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPES:
            raise WeightsError(f"{where} has dtype {str(dtype)[:20]!r}; read are {', '.join(_DTYPES)}")
        if not (isinstance(shape, list) and len(shape) <= _MAX_DIMS
                and all(type(s) is int and s >= 0 for s in shape)):
            raise WeightsError(f"{where} has shape {str(shape)[:60]}, not a list of non-negative ints")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(v) is int for v in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise WeightsError(f"{where} has data_offsets {str(offsets)[:60]}, not [begin, end] with "
                               f"0 <= begin <= end")
        begin, end = offsets
        if end > buffer:
            raise WeightsError(f"{where} claims bytes {begin}..{end} of a {buffer}-byte data buffer "
                               f"(out of range: truncated or forged)")
        itemsize = 2 if dtype == "BF16" else np.dtype(_DTYPES[dtype]).itemsize
        nbytes = math.prod(shape) * itemsize
        if nbytes != end - begin:
            raise WeightsError(f"{where} declares {dtype} {tuple(shape)} ({nbytes} bytes) but its offsets "
                               f"span {end - begin} bytes")
        total += nbytes * (2 if dtype == "BF16" else 1)
        if total > max_bytes:
            raise WeightsError(f"'{path}': its tensors take more than the limit of {max_bytes} bytes (max_bytes)")
        entries[name] = (dtype, tuple(shape), begin, end)
    spans = sorted((b, e, name) for name, (_, _, b, e) in entries.items() if e > b)
    for (_, end0, first), (begin1, _, second) in zip(spans, spans[1:]):
        if begin1 < end0:
            raise WeightsError(f"'{path}': tensors {first[:60]!r} and {second[:60]!r} overlap in the data buffer")
    return entries


def _to_array(data: np.ndarray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "BF16":                                       # the top half of a float32
        return (data.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return data.view(_DTYPES[dtype]).astype(np.dtype(_DTYPES[dtype]).newbyteorder("="), copy=False).reshape(shape)
