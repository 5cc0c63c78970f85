"""Reading ``.npz`` files that may be hostile: every size is checked before it is allocated.

``np.load`` trusts its file: an ``.npy`` header declaring 2**40 elements is allocated before
a byte of data is read. :func:`read_npz` reads each member's header first, checks the size it
declares against the member's real size and a running budget, and only then reads exactly
that many bytes into a preallocated array. Zip members are inflated incrementally, so a
deflate bomb stops at the declared size (and its CRC then fails). Only plain dtypes are
read (bool, integers, floats, complex, unicode strings): nothing is ever unpickled.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ..validation import check_int

__all__ = ["NpzError", "read_npz", "MAX_BYTES", "MAX_MEMBERS"]

MAX_BYTES = 4 << 30        # 4 GiB of array data: a VGG-19 checkpoint (~550 MB) with Adam's two moments is ~1.7 GB
MAX_MEMBERS = 10_000       # arrays per file: ResNet-152's state with Adam's two slots per parameter is ~2,000
_MAX_HEADER = 10_000       # bytes of an .npy header's dict (NumPy's own limit; ours are ~120)
_MAX_RATIO = 1100          # deflate cannot inflate more than ~1032:1; a larger ratio is a forged size
_CHUNK = 1 << 20           # bytes read from a member at a time
_KINDS = "biufcU"          # bool, signed, unsigned, float, complex, unicode: the dtypes we read
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_HEADER_READERS = {(1, 0): (2, npy_format.read_array_header_1_0),   # (length-field bytes, parser)
                   (2, 0): (4, npy_format.read_array_header_2_0)}


class NpzError(ValueError):
    """A file that is not a readable ``.npz`` within the limits; the message names the file."""


def read_npz(path, *, max_bytes: int = MAX_BYTES, max_members: int = MAX_MEMBERS) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, by name (``"a"`` for the member ``a.npy``).

    Refuses, with an :class:`NpzError` naming the file: a file that is not a zip archive, more
    than ``max_members`` members, more than ``max_bytes`` bytes of array data in all, a member
    whose header declares more (or less) data than it holds, a compression ratio deflate
    cannot reach, object or structured dtypes, and any corrupt or truncated data.
    """
    path = Path(path)
    max_bytes = check_int(max_bytes, "max_bytes", minimum=0)
    max_members = check_int(max_members, "max_members", minimum=0)
    try:
        with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
            archive_size = f.seek(0, io.SEEK_END)
            infos = zf.infolist()
            if len(infos) > max_members:
                raise NpzError(f"'{path}' has {len(infos)} members, more than the {max_members} "
                               f"an .npz file may have here (max_members)")
            arrays: dict[str, np.ndarray] = {}
            budget = max_bytes
            for info in infos:
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if name in arrays:
                    raise NpzError(f"'{path}' holds two members named {info.filename!r}")
                arrays[name] = _read_member(zf, info, path, archive_size, budget)
                budget -= arrays[name].nbytes
            return arrays
    except NpzError:
        raise
    except MemoryError:
        raise NpzError(f"'{path}': not enough memory to read it") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        raise NpzError(f"'{path}' cannot be read: {err.strerror}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            struct.error, OverflowError, NotImplementedError, RuntimeError) as err:
        raise NpzError(f"'{path}' is damaged (a truncated or corrupt .npz file?): {_reason(err)}") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, archive_size: int,
                 budget: int) -> np.ndarray:
    """One member's array, its sizes checked against the zip entry and ``budget`` bytes first."""
    where = f"'{path}': member {info.filename!r}"
    if info.flag_bits & 0x1:
        raise NpzError(f"{where} is encrypted; an .npz file's members never are")
    if info.compress_type not in _METHODS:
        raise NpzError(f"{where} uses zip compression method {info.compress_type}; "
                       f"only {' and '.join(_METHODS.values())} members are read")
    if info.header_offset + info.compress_size > archive_size:
        raise NpzError(f"{where} claims {info.compress_size} compressed bytes at offset "
                       f"{info.header_offset}, past the end of the {archive_size}-byte file (truncated?)")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise NpzError(f"{where} is stored uncompressed but claims {info.file_size} bytes "
                       f"from {info.compress_size} (a forged size)")
    if info.file_size > _MAX_RATIO * info.compress_size + 1024:
        raise NpzError(f"{where} claims to inflate {info.compress_size} bytes to {info.file_size}, "
                       f"more than deflate can (a zip bomb?)")
    with zf.open(info) as fp:
        shape, fortran_order, dtype, header_bytes = _read_header(fp, where)
        declared = math.prod(shape) * dtype.itemsize
        if declared != info.file_size - header_bytes:
            raise NpzError(f"{where} declares {dtype} {shape} ({declared} bytes) but holds "
                           f"{info.file_size - header_bytes} bytes of data")
        if declared > budget:
            raise NpzError(f"{where} ({dtype} {shape}, {declared} bytes) takes the file past the "
                           f"limit of its arrays' total size (max_bytes); not read")
        data = np.empty(declared, dtype=np.uint8)
        view, filled = memoryview(data), 0
        while filled < declared:
            chunk = fp.read(min(_CHUNK, declared - filled))
            if not chunk:
                raise NpzError(f"{where} ends after {filled} of its {declared} bytes (truncated?)")
            view[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
    if dtype.itemsize == 0:
        return np.empty(shape, dtype=dtype)
    flat = data.view(dtype)
    return flat.reshape(shape[::-1]).T if fortran_order else flat.reshape(shape)


def _read_header(fp, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header size in bytes) of the .npy stream ``fp``."""
    try:
        version = npy_format.read_magic(fp)
    except ValueError:
        raise NpzError(f"{where} is not an .npy array (no .npy magic string)") from None
    if version not in _HEADER_READERS:
        raise NpzError(f"{where} is .npy format version {version[0]}.{version[1]}; "
                       f"versions 1.0 and 2.0 are read")
    length_bytes, parse = _HEADER_READERS[version]
    raw_length = _read_exact(fp, length_bytes, where)
    length = int.from_bytes(raw_length, "little")
    if length > _MAX_HEADER:
        raise NpzError(f"{where} has a {length}-byte .npy header, more than {_MAX_HEADER}")
    header = _read_exact(fp, length, where)
    try:        # the header is parsed from memory, so NumPy never reads the stream itself
        shape, fortran_order, dtype = parse(io.BytesIO(raw_length + header), max_header_size=_MAX_HEADER)
    except Exception:   # NumPy's parser raises what it meets (even tokenize.TokenError): all mean unreadable
        raise NpzError(f"{where} has an unreadable .npy header") from None
    if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None or dtype.kind not in _KINDS:
        raise NpzError(f"{where} has dtype {dtype.str if dtype.names is None else 'structured'}; only "
                       f"bool, integer, float, complex and unicode arrays are read (never objects)")
    if any(n < 0 for n in shape):
        raise NpzError(f"{where} declares the shape {shape}, with a negative size")
    return shape, fortran_order, dtype, npy_format.MAGIC_LEN + length_bytes + length


def _read_exact(fp, n: int, where: str) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise NpzError(f"{where} ends inside its .npy header (truncated?)")
    return data


def _reason(err: BaseException) -> str:
    """The first line of ``err``'s message, shortened: library messages can be long."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "allow_pickle" in text:           # NumPy's advice to unpickle a hostile file is never passed on
        text = type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
