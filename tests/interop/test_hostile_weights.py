"""Hostile weights files: code in the pickle, forged sizes, truncation, forged safetensors headers.

Every refusal is one line (a WeightsError naming the file); no code from a file ever runs and
no declared size is allocated before it is checked against the bytes the file holds.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from convscope.interop import WeightsError, read_state_dict

torch = pytest.importorskip("torch")

_N = 1000                                   # elements of the one tensor of the template files
_NUMEL = b"M" + struct.pack("<H", _N)       # BININT2 1000: the storage's size, then the tensor's shape
_HUGE = b"\x8a\x06" + (2 ** 40).to_bytes(6, "little")     # LONG1 2**40


class _Evil:
    """Unpickling this runs os.system: what a malicious "state_dict" would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _refused(path, match: str) -> str:
    with pytest.raises(WeightsError, match=match) as info:
        read_state_dict(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def _template(tmp_path, legacy: bool = False):
    path = tmp_path / ("legacy.pt" if legacy else "zip.pt")
    torch.save({"w": torch.zeros(_N)}, path, **({"_use_new_zipfile_serialization": False} if legacy else {}))
    return path


def _with_pickle(tmp_path, data_pkl: bytes, name: str = "forged.pt"):
    """The zip template with its data.pkl replaced by ``data_pkl``."""
    template = _template(tmp_path)
    out = tmp_path / name
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl") else src.read(info))
    return out


def _zip_pickle(tmp_path) -> bytes:
    with zipfile.ZipFile(_template(tmp_path)) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def _legacy_head(obj_pickle: bytes) -> bytes:
    """A legacy torch file's header pickles, then ``obj_pickle`` and an empty storage key list."""
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, info))
    return head + obj_pickle + pickle.dumps([], protocol=2)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_code_in_the_pickle_is_refused_and_never_runs(tmp_path, legacy):
    marker = tmp_path / "pwned"
    blobs = {"reduce": pickle.dumps({"w": _Evil(marker)}, protocol=2),
             "reduce_p4": pickle.dumps({"w": _Evil(marker)}, protocol=4),
             "builtins_eval": b"\x80\x02cbuiltins\neval\nX\x0c\x00\x00\x00__import__()\x85R.",
             "subprocess": b"\x80\x02}X\x01\x00\x00\x00wcsubprocess\nPopen\n(X\x02\x00\x00\x00lstRs."}
    for name, blob in blobs.items():
        if legacy:
            path = tmp_path / f"{name}.pt"
            path.write_bytes(_legacy_head(blob))
        else:
            path = _with_pickle(tmp_path, blob, f"{name}.pt")
        _refused(path, r"refusing to load .*: its pickle asks for (posix|os|builtins|subprocess)\."
                       r"(system|eval|Popen), which a PyTorch state_dict never contains")
    assert not marker.exists()


def test_a_storage_declaring_two_to_the_forty_elements_is_refused_before_allocation(tmp_path):
    data = _zip_pickle(tmp_path)
    path = _with_pickle(tmp_path, data.replace(_NUMEL, _HUGE, 1))
    _refused(path, r"storage 0 declares 1099511627776 elements \(4398046511104 bytes\) but the file holds 4000 bytes")
    legacy = _template(tmp_path, legacy=True)
    raw = legacy.read_bytes()
    legacy.write_bytes(raw.replace(_NUMEL, _HUGE, 1))
    _refused(legacy, r"declares 1099511627776 elements \(4398046511104 bytes\), more than the \d+-byte file holds")


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    data = _zip_pickle(tmp_path)
    first = data.index(_NUMEL) + len(_NUMEL)
    forged = data[:first] + data[first:].replace(_NUMEL, b"M" + struct.pack("<H", 4000), 1)   # shape (4000,)
    _refused(_with_pickle(tmp_path, forged), r"a tensor of shape \(4000,\) at offset 0 reaches element 3999 of a "
                                             r"storage of 1000 elements")


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.97])
def test_truncated_files_are_one_line(tmp_path, legacy, keep):
    path = _template(tmp_path, legacy)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    _refused(path, r"damaged|truncated|not a PyTorch|corrupt")


def test_deep_nesting_and_shared_containers_are_refused_quickly(tmp_path):
    deep = b"\x80\x02" + b"(" * 100_000 + b"l" * 100_000 + b"."
    _refused(_with_pickle(tmp_path, deep, "deep.pt"), "nests deeper than 64 levels")
    laughs = b"\x80\x02Nq\x00" + b"".join(bytes([0x68, i, 0x86, 0x71, i + 1]) for i in range(60)) + b"."
    assert len(laughs) < 400                                      # 2**60 leaves if it were walked naively
    _refused(_with_pickle(tmp_path, laughs, "laughs.pt"), "outgrows the file")


def test_a_zip_without_data_pkl_and_other_files_are_not_weights(tmp_path):
    import convscope
    npz = convscope.Classifier.untrained("lenet5").save(tmp_path / "ck.npz")
    _refused(npz, "a zip archive with no data.pkl: not a file torch.save wrote")
    (tmp_path / "notes.txt").write_text("hello, these are not weights\n")
    _refused(tmp_path / "notes.txt", "not a weights file torch.save or safetensors writes .*looks like text")
    (tmp_path / "empty.pt").write_bytes(b"")
    _refused(tmp_path / "empty.pt", "looks like an empty file")
    _refused(tmp_path / "missing.pt", "cannot be read")


# -- safetensors -------------------------------------------------------------------------------

def _safetensors(header: dict, data: bytes, length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


@pytest.mark.parametrize("header, data, match", [
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4,
     r"claims bytes 0..8 of a 4-byte data buffer"),
    ({"w": {"dtype": "F32", "shape": [2 ** 40], "data_offsets": [0, 8]}}, b"\0" * 8,
     r"declares F32 \(1099511627776,\) \(4398046511104 bytes\) but its offsets span 8 bytes"),
    ({"w": {"dtype": "F32", "shape": [2 ** 40], "data_offsets": [0, 2 ** 42]}}, b"\0" * 8,
     r"claims bytes 0..4398046511104 of a 8-byte data buffer"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, r"tensors 'a' and 'b' overlap"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "not a list of non-negative ints"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, b"\0" * 8, r"not \[begin, end\]"),
    ({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "has dtype 'C64'"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}}, b"\0" * 4,
     "exactly dtype, shape and data_offsets"),
    ({"__metadata__": {"a": 1}}, b"", "__metadata__ must map strings to strings"),
])
def test_a_forged_safetensors_header_is_one_line(tmp_path, header, data, match):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors(header, data))
    _refused(path, match)


def test_a_safetensors_header_length_past_the_file_or_the_cap(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"x", length=4000))
    _refused(path, "its safetensors header claims 4000 bytes, more than the file holds")
    path.write_bytes(struct.pack("<Q", 2 ** 60) + b"{" + b" " * 20)
    _refused(path, "not a weights file")                          # not even taken for safetensors
    path.write_bytes(struct.pack("<Q", 20) + b"{not json at all!!!}")
    _refused(path, "header is not valid JSON")


def test_a_truncated_safetensors_file(tmp_path):
    from torch_reference import save_safetensors
    path = save_safetensors({"w": torch.arange(100, dtype=torch.float32)}, tmp_path / "w.safetensors")
    raw = path.read_bytes()
    path.write_bytes(raw[:-40])
    _refused(path, r"claims bytes 0..400 of a 360-byte data buffer")
    path.write_bytes(raw)                                         # the intact file reads
    np.testing.assert_array_equal(read_state_dict(path)["w"], np.arange(100, dtype=np.float32))
