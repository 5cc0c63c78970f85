"""Atomic writes: a temporary file in the target's directory, flushed to disk, then renamed.

A crash, a full disk or Ctrl-C in the middle never leaves a half-written file, and the file
that was there before stays intact until the rename. The new file gets the permissions an
ordinary ``open(path, "w")`` would give it (``0o666`` less the umask), not ``mkstemp``'s
private ``0o600``, so a report or a model shared with a class stays readable.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json"]

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask (read by setting it and setting it back, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def atomic_write(path, write: Callable) -> Path:
    """Call ``write(f)`` on a binary file that becomes ``path`` only once it is complete.

    Returns ``path``. Any exception (a full disk, an interrupt) removes the temporary file
    and leaves whatever ``path`` held before untouched, then propagates.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, value) -> Path:
    """``value`` (plain JSON types; see :func:`convscope.io.jsonable`) as indented JSON."""
    return atomic_write_text(path, json.dumps(value, indent=2) + "\n")
