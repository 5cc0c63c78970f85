"""Datasets shipped inside the package (MNIST), checked against their SHA256 sums at every load."""

from __future__ import annotations

import hashlib
from importlib import resources

from .dataset import Dataset
from .errors import DataFormatError
from .idx import IDX_FILES, idx_dataset, parse_idx, read_maybe_gzip

__all__ = ["EMBEDDED", "embedded_root", "load_embedded"]

EMBEDDED = ("mnist",)
_SUMS = "SHA256SUMS"
_REINSTALL = "reinstall convscope (pip install --force-reinstall convscope)"


def embedded_root():
    """The folder holding the embedded datasets (a path-like ``importlib.resources`` object)."""
    return resources.files(__package__)


def _read_sums(folder, name: str) -> dict[str, str]:
    """file name -> expected SHA256 hex digest, from the folder's ``SHA256SUMS``."""
    sums_file = folder / _SUMS
    if not sums_file.is_file():
        raise DataFormatError(f"the embedded {name} copy is incomplete: {_SUMS} is missing from {folder}; "
                              f"{_REINSTALL}")
    sums = {}
    for line in sums_file.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) == 2:                       # "<digest>  <file>", the file maybe as "*dir/file"
            sums[parts[1].lstrip("*").rsplit("/", 1)[-1]] = parts[0].lower()
    return sums


def _read_verified(folder, file_name: str, sums: dict[str, str], name: str) -> bytes:
    """The bytes of ``file_name``, after checking them against their SHA256 sum."""
    entry = folder / file_name
    if not entry.is_file() or file_name not in sums:
        what = "is missing" if not entry.is_file() else f"has no line in {_SUMS}"
        raise DataFormatError(f"the embedded {name} copy is incomplete: {file_name} {what}; {_REINSTALL}")
    data = entry.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sums[file_name]:
        raise DataFormatError(f"the embedded {name} copy is corrupt: {file_name} has SHA256 {digest[:12]}... "
                              f"but {_SUMS} says {sums[file_name][:12]}...; {_REINSTALL}")
    return data


def load_embedded(name: str) -> Dataset:
    """The shipped dataset ``name`` (one of ``EMBEDDED``); every file is verified by SHA256 before parsing."""
    if name not in EMBEDDED:
        raise DataFormatError(f"no embedded dataset {name!r}; embedded: {', '.join(EMBEDDED)}")
    folder = embedded_root() / name
    sums = _read_sums(folder, name)
    raw = {role: _read_verified(folder, f"{base}.gz", sums, name) for role, base in IDX_FILES.items()}
    sources = {role: f"{name}/{base}.gz (embedded)" for role, base in IDX_FILES.items()}
    try:
        arrays = {role: parse_idx(read_maybe_gzip(data, sources[role]), sources[role])
                  for role, data in raw.items()}
    except MemoryError:
        raise DataFormatError(f"the embedded {name} copy is too large to load in memory") from None
    return idx_dataset(name, arrays, sources, class_names=[str(d) for d in range(10)])
