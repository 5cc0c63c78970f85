"""Files in and out: atomic writes that honour the umask, and conversion of results to JSON."""

from .atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text
from .npz import NpzError, read_npz
from .plain import jsonable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "jsonable",
           "read_npz", "NpzError"]
