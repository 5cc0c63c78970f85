"""PyTorch ``torch.save`` files, read without torch and without running code.

Two layouts, both written by ``torch.save(model.state_dict(), f)``:

- **zip** (torch >= 1.6, the default): a zip archive whose one top folder holds
  ``data.pkl`` (the pickled object), one member ``data/<key>`` per tensor storage (its raw
  bytes) and ``byteorder``;
- **legacy** (``_use_new_zipfile_serialization=False``): five pickles in a row (a magic
  number, the protocol version 1001, a dict of system facts, the object, the sorted list of
  storage keys), then each storage as an int64 element count and its raw bytes.

The pickle is walked by :class:`~convscope.io.pickle_machine.PickleMachine` with a grammar
of tensors and plain containers only: ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` (``_with_state``) and the
storage types (``torch.FloatStorage``, ...); any other global (``os.system``,
``builtins.eval``, a class's ``__reduce__``) is refused in one line, never imported. A
tensor is (storage, offset, shape, strides): each is checked against its storage's declared
size when the pickle is read, and each storage's declared size against the bytes the file
really holds for it before anything is allocated. Only the storages of the tensors asked
for are read, each once; the arrays built from them are copies (or views of a storage a
tensor covers exactly), their total bounded by ``max_bytes``.

Dtypes: float32/64/16 and bfloat16 (returned as float32, which holds it exactly), the
integer types and bool. Big-endian files are converted to native order.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..io.pickle_machine import PickleMachine, PickleRefused
from .errors import WeightsError
from .torchpickle import Reader, Storage, Storages, Tensor, grammar, materialize, short

__all__ = ["MAX_BYTES", "Tensor", "read_torch_file", "materialize", "is_torch_zip", "is_legacy_torch",
           "describe_error"]

MAX_BYTES = 4 << 30            # 4 GiB of tensor data: VGG-19's state_dict is 575 MB
_MAX_PICKLE = 64 << 20         # ResNet-152's data.pkl is ~80 KB
_MAX_MEMBERS = 100_000         # one per storage: ResNet-152 has ~1,000
_CHUNK = 1 << 20               # bytes read from a zip member at a time
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


# -- the two layouts -----------------------------------------------------------------------

def is_torch_zip(head: bytes) -> bool:
    return head[:4] == b"PK\x03\x04"


def is_legacy_torch(head: bytes) -> bool:
    """A pickle (protocol 2-5) whose first value is a long int: the legacy magic number."""
    return len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] == 0x8A


class _ZipSource:
    """A torch zip archive: its ``data.pkl`` and the members holding the storages."""

    def __init__(self, f, path: Path):
        self.f, self.path = f, path
        self.size = os.fstat(f.fileno()).st_size
        self.zf = zipfile.ZipFile(f)
        infos = self.zf.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise WeightsError(f"'{path}' has {len(infos)} zip members, more than a torch file has "
                               f"(at most {_MAX_MEMBERS})")
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self.members:
                raise WeightsError(f"'{path}' holds two zip members named {info.filename!r}")
            self.members[info.filename] = info
        pickles = [n for n in self.members if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            what = "no data.pkl" if not pickles else f"{len(pickles)} data.pkl members"
            raise WeightsError(f"'{path}' is a zip archive with {what}: not a file torch.save wrote "
                               f"(a convscope checkpoint or NumPy .npz is not a PyTorch state_dict)")
        self.prefix = pickles[0][:-len("data.pkl")]
        order = self.members.get(self.prefix + "byteorder")
        self.byteorder = "little"
        if order is not None:
            text = bytes(self.read(order, 16)).decode("ascii", "replace").strip()
            if text not in ("little", "big"):
                raise WeightsError(f"'{path}': its byteorder member says {text[:16]!r}, not little or big")
            self.byteorder = text

    def pickle(self) -> bytes:
        info = self.members[self.prefix + "data.pkl"]
        if info.file_size > _MAX_PICKLE:
            raise WeightsError(f"'{self.path}': its data.pkl is {info.file_size} bytes, more than the "
                               f"{_MAX_PICKLE} a state_dict's pickle may have")
        return bytes(self.read(info, _MAX_PICKLE))

    def size_of(self, key: str, storage: Storage) -> int:
        info = self.members.get(f"{self.prefix}data/{key}")
        if info is None:
            raise PickleRefused(f"storage {key} has no member data/{key} in the archive", corrupt=True)
        self._check(info)
        return info.file_size

    def storage_bytes(self, storage: Storage) -> np.ndarray:
        return self.read(self.members[f"{self.prefix}data/{storage.key}"], storage.nbytes)

    def _check(self, info: zipfile.ZipInfo) -> None:
        where = f"'{self.path}': member {info.filename!r}"
        if info.flag_bits & 0x1:
            raise WeightsError(f"{where} is encrypted; torch files never are")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise WeightsError(f"{where} uses zip compression method {info.compress_type}; torch files store "
                               f"their members uncompressed")
        if info.header_offset + info.compress_size > self.size:
            raise WeightsError(f"{where} claims {info.compress_size} bytes at offset {info.header_offset}, past "
                               f"the end of the {self.size}-byte file (truncated?)")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise WeightsError(f"{where} is stored uncompressed but claims {info.file_size} bytes from "
                               f"{info.compress_size} (a forged size)")
        if info.file_size > 1100 * info.compress_size + 1024:
            raise WeightsError(f"{where} claims to inflate {info.compress_size} bytes to {info.file_size}, "
                               f"more than deflate can (a zip bomb?)")

    def read(self, info: zipfile.ZipInfo, limit: int) -> np.ndarray:
        """The member's bytes as a uint8 array, its declared size checked first (at most ``limit``)."""
        self._check(info)
        if info.file_size > limit:
            raise WeightsError(f"'{self.path}': member {info.filename!r} holds {info.file_size} bytes, "
                               f"more than the {limit} expected")
        out = np.empty(info.file_size, dtype=np.uint8)
        view, filled = memoryview(out), 0
        with self.zf.open(info) as fp:
            while filled < info.file_size:
                chunk = fp.read(min(_CHUNK, info.file_size - filled))
                if not chunk:
                    raise WeightsError(f"'{self.path}': member {info.filename!r} ends after {filled} of its "
                                       f"{info.file_size} bytes (truncated?)")
                view[filled:filled + len(chunk)] = chunk
                filled += len(chunk)
        return out


class _LegacySource:
    """A legacy torch file: the pickles at its head, then each storage's count and bytes."""

    def __init__(self, f, path: Path):
        self.f, self.path = f, path
        self.size = os.fstat(f.fileno()).st_size
        self.head = f.read(min(self.size, _MAX_PICKLE))
        self.byteorder = "little"
        self.offsets: dict[str, int] = {}

    def read_header(self) -> int:
        """Check the magic number, protocol and system facts; the offset of the object's pickle."""
        plain = grammar(None)
        magic, end = PickleMachine(plain).run(self.head)
        if magic != _LEGACY_MAGIC:
            raise PickleRefused("it starts with a pickled number that is not torch's magic number", corrupt=True)
        protocol, end = PickleMachine(plain).run(self.head, end)
        if protocol != _LEGACY_PROTOCOL:
            raise PickleRefused(f"it is legacy torch protocol {short(protocol)}; {_LEGACY_PROTOCOL} is read")
        info, end = PickleMachine(plain).run(self.head, end)
        if not isinstance(info, dict) or not isinstance(info.get("little_endian"), bool):
            raise PickleRefused("its system information is not the dict torch writes", corrupt=True)
        self.byteorder = "little" if info["little_endian"] else "big"
        return end

    def locate(self, declared: dict[str, Storage], start: int) -> None:
        """Read the storage key list at ``start``; check the storages' sizes against the file's rest."""
        keys, end = PickleMachine(grammar(None)).run(self.head, start)
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise PickleRefused("its storage key list is not a list of strings", corrupt=True)
        if sorted(keys) != sorted(declared) or len(set(keys)) != len(keys):
            raise PickleRefused("its storage key list does not match the storages its object uses", corrupt=True)
        needed = sum(8 + declared[k].nbytes for k in keys)
        if end + needed != self.size:
            raise WeightsError(f"'{self.path}': its storages need {needed} bytes after the pickles but the file "
                               f"has {self.size - end} (truncated or padded?)")
        for key in keys:
            self.offsets[key] = end
            end += 8 + declared[key].nbytes

    def storage_bytes(self, storage: Storage) -> np.ndarray:
        self.f.seek(self.offsets[storage.key])
        count = self.f.read(8)
        if len(count) != 8 or int.from_bytes(count, self.byteorder) != storage.numel:
            raise WeightsError(f"'{self.path}': storage {storage.key} is recorded with another element count "
                               f"than its tensor declares (corrupt file?)")
        out = np.empty(storage.nbytes, dtype=np.uint8)
        if self.f.readinto(memoryview(out)) != storage.nbytes:
            raise WeightsError(f"'{self.path}': storage {storage.key} is truncated")
        return out


def read_torch_file(path, *, max_bytes: int = MAX_BYTES):
    """(the object ``torch.save`` wrote to ``path``, with :class:`Tensor` placeholders, a reader).

    Pass a subtree of the object and the reader to :func:`materialize` to get NumPy arrays.
    The file stays open inside the reader until :func:`materialize` is done.
    """
    path = Path(path)
    f = open(path, "rb")
    try:
        head = f.read(8)
        f.seek(0)
        if is_torch_zip(head):
            source = _ZipSource(f, path)
            storages = Storages(source.size_of, path)
            obj = _run_pickle(source.pickle(), storages)
        elif is_legacy_torch(head):
            source = _LegacySource(f, path)
            start = source.read_header()
            budget = source.size

            def size_of(key, storage):          # checked exactly once the key list is read
                if storage.nbytes > budget:
                    raise PickleRefused(f"storage {key} declares {storage.numel} elements ({storage.nbytes} "
                                        f"bytes), more than the {budget}-byte file holds")
                return storage.nbytes

            storages = Storages(size_of, path)
            obj, end = PickleMachine(grammar(storages)).run(source.head, start)
            source.locate(storages.seen, end)
        else:
            raise WeightsError(f"'{path}' is not a PyTorch file (neither torch's zip format nor its legacy one)")
        total = sum(s.nbytes for s in storages.seen.values())
        if total > max_bytes:
            raise WeightsError(f"'{path}' declares {total} bytes of tensor storage, more than the limit of "
                               f"{max_bytes} (max_bytes)")
        return obj, Reader(source, max_bytes)
    except BaseException:
        f.close()
        raise


def _run_pickle(data: bytes, storages: Storages):
    obj, end = PickleMachine(grammar(storages)).run(data)
    if end != len(data):
        raise PickleRefused(f"{len(data) - end} bytes follow the end of its pickle", corrupt=True)
    return obj


def describe_error(err: BaseException, path: Path) -> WeightsError:
    """The one-line WeightsError for what reading ``path`` raised."""
    if isinstance(err, WeightsError):
        return err
    if isinstance(err, PickleRefused):
        if err.corrupt:
            return WeightsError(f"'{path}' is a damaged PyTorch file: {err}")
        return WeightsError(f"refusing to load '{path}': {err}")
    if isinstance(err, MemoryError):
        return WeightsError(f"'{path}': not enough memory to read it")
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return WeightsError(f"'{path}' cannot be read: {err.strerror}")
    if isinstance(err, (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, struct.error,
                        OverflowError, NotImplementedError, RuntimeError, ValueError, io.UnsupportedOperation)):
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return WeightsError(f"'{path}' is damaged (a truncated or corrupt PyTorch file?): {text[:200]}")
    return None
