"""IDX files (the MNIST format), raw or gzip-compressed, and directories holding the four of them.

An IDX file is a 4-byte magic number ``00 00 TT DD`` (TT the element type code, DD the
number of dimensions), then DD big-endian uint32 sizes, then the elements, big-endian,
in C order. The header says how many bytes follow, so a file is checked against it before
its data is read (raw) or while it is inflated (gzip): no file makes the reader hold more
than the size its header declares, and no header may declare more than ``MAX_IDX_BYTES``.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .errors import DataFormatError

__all__ = ["load_idx", "parse_idx", "read_maybe_gzip", "IDX_FILES", "FASHION_MNIST_CLASSES", "MAX_IDX_BYTES",
           "find_idx_files", "idx_dataset", "load_idx_dir"]

# Element type codes of the IDX format, each stored big-endian.
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_HEADER = 4 + 4 * 255         # the magic number and at most 255 sizes
_CHUNK = 2 ** 16                  # bytes of compressed input per read
MAX_IDX_BYTES = 2 ** 31           # 2 GiB of elements; MNIST's largest file holds 47 MB
_MAX_CLASSES = 2 ** 16            # labels above this are damage, not classes (EMNIST has 62)

# role -> file name without ".gz"; the four files of an IDX dataset directory.
IDX_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_maybe_gzip(data: bytes, source: str) -> bytes:
    """``data`` itself, or its decompression when it starts with the gzip magic bytes.

    The IDX bytes are inflated incrementally and refused as soon as they outgrow the size
    their header declares, so a small "gzip bomb" costs no more memory than an honest file.
    """
    if not data.startswith(_GZIP_MAGIC):
        return data
    chunks = (data[i:i + _CHUNK] for i in range(0, len(data), _CHUNK))
    return _gunzip_idx(lambda: next(chunks, b""), source)


def _parse_header(data: bytes, source: str) -> tuple[int, tuple[int, ...], np.dtype, int]:
    """(header length, shape, dtype, data bytes declared) of the IDX file starting with ``data``."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        got = f"0x{data[:4].hex()}" if data else "an empty file"
        raise DataFormatError(f"not an IDX file: {source} (expected a header 0x0000TTDD, e.g. 0x00000803 "
                              f"for uint8 images, got {got})")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise DataFormatError(f"IDX file {source} has unknown element type code 0x{code:02X} "
                              f"(known: {known})")
    if ndim == 0:
        raise DataFormatError(f"IDX file {source} declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"truncated IDX file {source}: its header needs {header} bytes, "
                              f"got {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise DataFormatError(f"IDX file {source} declares shape {shape} of {dtype.name}, {expected} bytes, "
                              f"more than the {MAX_IDX_BYTES} bytes (2 GiB) convscope reads; the file is damaged")
    return header, shape, dtype, expected


def _check_length(source: str, shape: tuple[int, ...], expected: int, got: int) -> None:
    """Refuse ``got`` bytes of data after the header when the header announces ``expected``."""
    if got < expected:
        raise DataFormatError(f"truncated IDX file {source}: expected {expected} bytes of data for shape "
                              f"{shape}, got {got}; download it again")
    if got > expected:
        raise DataFormatError(f"IDX file {source} has {got - expected} bytes after the {expected} bytes "
                              f"of data its header {shape} announces; the file is damaged")


def _gunzip_idx(read, source: str) -> bytes:
    """The inflated IDX bytes of the gzip stream that ``read()`` hands over chunk by chunk (b"" at the end).

    Each ``decompress`` call is capped (``max_length``) at what may still come, plus one byte
    to notice an excess: first the longest possible header, then the size that header
    declares. Concatenated gzip members are one stream, as for :func:`gzip.decompress`.
    """
    out, header, limit = bytearray(), None, _MAX_HEADER
    inflater, data = zlib.decompressobj(16 + zlib.MAX_WBITS), b""
    try:
        while True:
            data = data or read()
            piece = inflater.decompress(data, limit + 1 - len(out))
            out += piece
            if header is None and len(out) >= _MAX_HEADER:
                header = _parse_header(bytes(out[:_MAX_HEADER]), source)
                limit = header[0] + header[3]
            if len(out) > limit:
                raise DataFormatError(f"IDX file {source} inflates to more than the {limit} bytes its header "
                                      f"{header[1]} announces; the file is damaged")
            if inflater.eof:                                  # one gzip member done: another, or the end
                data = inflater.unused_data
                while len(data) < len(_GZIP_MAGIC) and (more := read()):
                    data += more
                if not data:
                    break
                if not data.startswith(_GZIP_MAGIC):
                    raise zlib.error(f"{len(data)} or more bytes that are not gzip follow the stream")
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif not data and not piece:
                raise EOFError("the compressed data ends early")
            else:
                data = inflater.unconsumed_tail
    except (EOFError, zlib.error) as err:
        raise DataFormatError(f"corrupt gzip file {source}: {err}; download it again") from None
    return bytes(out)


def parse_idx(data: bytes, source: str) -> np.ndarray:
    """The array stored in the IDX bytes ``data`` (already decompressed), in native byte order.

    ``source`` names the file in error messages. The result is a fresh, writable array.
    """
    header, shape, dtype, expected = _parse_header(data, source)
    _check_length(source, shape, expected, len(data) - header)
    flat = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def _read_idx_bytes(f, source: str) -> bytes:
    """The IDX bytes of the open file ``f``, raw or inflated; a raw file's size is checked before reading it."""
    head = f.read(_MAX_HEADER)
    if head.startswith(_GZIP_MAGIC):
        f.seek(0)
        return _gunzip_idx(lambda: f.read(_CHUNK), source)
    header, shape, _, expected = _parse_header(head, source)
    _check_length(source, shape, expected, os.fstat(f.fileno()).st_size - header)
    return head + f.read(header + expected + 1 - len(head))   # one byte more: a file that grew is refused


def load_idx(path) -> np.ndarray:
    """The array in the IDX file at ``path``, raw or gzip-compressed (detected by its first bytes).

    Raises :class:`DataFormatError` for a missing, truncated, corrupt or oversized file;
    nothing beyond the size its header declares is read or inflated.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return parse_idx(_read_idx_bytes(f, str(path)), str(path))
    except FileNotFoundError:
        raise DataFormatError(f"IDX file not found: {path}") from None
    except IsADirectoryError:
        raise DataFormatError(f"expected an IDX file but found a directory: {path}") from None
    except OSError as err:
        raise DataFormatError(f"cannot read IDX file {path}: {err.strerror or err}") from None
    except MemoryError:
        raise DataFormatError(f"IDX file {path} is too large to load in memory") from None


def find_idx_files(directory: Path) -> dict[str, Path | None]:
    """role -> the IDX file of ``directory`` for it (raw preferred over ``.gz``), or None if absent."""
    found: dict[str, Path | None] = {}
    for role, base in IDX_FILES.items():
        candidates = [directory / base, directory / f"{base}.gz"]
        found[role] = next((p for p in candidates if p.is_file()), None)
    return found


def idx_class_names(name: str, max_label: int) -> list[str]:
    """Fashion-MNIST's names for a directory called ``*fashion*``, else "0", "1", ... up to max_label."""
    if "fashion" in name.lower():
        return list(FASHION_MNIST_CLASSES)
    if max_label >= _MAX_CLASSES:
        raise DataFormatError(f"IDX labels of {name} reach {max_label}; convscope names at most {_MAX_CLASSES} "
                              f"classes 0..{_MAX_CLASSES - 1} (are the label files damaged?)")
    return [str(i) for i in range(max(max_label, 0) + 1)]


def idx_dataset(name: str, arrays: dict[str, np.ndarray], sources: dict[str, str],
                class_names: list[str] | None = None) -> Dataset:
    """A :class:`Dataset` from the four IDX arrays (role -> array, as in ``IDX_FILES``).

    Images (N, H, W) uint8 become (N, 1, H, W); labels (N,) of an integer type become int64.
    ``sources`` (role -> file name) names the files in error messages. Without
    ``class_names``, they follow :func:`idx_class_names`.
    """
    out = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        img_src, lab_src = sources[f"{split}_images"], sources[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataFormatError(f"IDX images {img_src} must be uint8 with 3 dimensions (N, H, W), got "
                                  f"{images.dtype} with shape {images.shape}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise DataFormatError(f"IDX labels {lab_src} must be integers with 1 dimension (N,), got "
                                  f"{labels.dtype} with shape {labels.shape}")
        if len(images) != len(labels):
            raise DataFormatError(f"{lab_src} has {len(labels)} labels but {img_src} has "
                                  f"{len(images)} images; the counts must match")
        out[f"{split}_images"] = images[:, None, :, :]          # (N, 1, H, W)
        out[f"{split}_labels"] = labels.astype(np.int64)
    if class_names is None:
        max_label = max(int(out[k].max(initial=0)) for k in ("train_labels", "test_labels"))
        class_names = idx_class_names(name, max_label)
    return Dataset(name=name, class_names=class_names, **out)


def load_idx_dir(directory: Path, name: str | None = None) -> Dataset:
    """The dataset in a directory of the four IDX files (see ``IDX_FILES``), each raw or ``.gz``."""
    directory = Path(directory)
    found = find_idx_files(directory)
    missing = [f"{IDX_FILES[role]}[.gz]" for role, path in found.items() if path is None]
    if missing:
        raise DataFormatError(f"IDX data in {directory} is incomplete: missing {', '.join(missing)}")
    arrays = {role: load_idx(path) for role, path in found.items()}
    sources = {role: str(path) for role, path in found.items()}
    return idx_dataset(name or directory.resolve().name, arrays, sources)
