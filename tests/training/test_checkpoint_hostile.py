"""Checkpoints are untrusted input: hostile files give one line, allocate nothing big, never unpickle.

Each test crafts a file that used to cost a traceback, a huge allocation or advice to use
``allow_pickle``; every refusal must be a one-line :class:`CheckpointError` naming the file.
Sizes are checked with ``tracemalloc`` (NumPy reports its allocations to it), not timings.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

from convscope.io import NpzError, read_npz
from convscope.models import build_model
from convscope.training import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from convscope.training import checkpoint as checkpoint_module

MB = 1 << 20
LENET_META = {"data": "mnist", "normalizer": {"mean": [0.13], "std": [0.31]},
              "class_names": list("0123456789"), "input_shape": [1, 28, 28]}


# -- helpers ----------------------------------------------------------------------------
@pytest.fixture
def good(tmp_path):
    """A LeNet-5 checkpoint with the metadata a training run writes."""
    path = tmp_path / "good.npz"
    save_checkpoint(path, build_model("lenet5", rng=np.random.default_rng(0)), LENET_META)
    return path


def contents(path) -> tuple[dict, dict]:
    """(config, arrays) of one of our own files, read with NumPy (trusted here)."""
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return json.loads(str(arrays.pop("__config__"))), arrays


def write(path, config, arrays, *, raw_config: str | None = None):
    text = raw_config if raw_config is not None else json.dumps(config)
    np.savez(path, __config__=np.array(text), **arrays)
    return path


def variant(good, tmp_path, change_config=None, change_arrays=None, name="model.npz"):
    """A copy of ``good`` with its config and/or arrays changed in place by the given functions."""
    config, arrays = contents(good)
    if change_config:
        change_config(config)
    if change_arrays:
        change_arrays(arrays)
    return write(tmp_path / name, config, arrays)


def npy(shape, descr="<f4", data=b"") -> bytes:
    """An .npy member: a version 1.0 header declaring (shape, descr), then ``data`` as given."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue() + data


def hand_zip(members) -> bytes:
    """A zip archive written field by field: ``members`` are (name, data, overrides) with
    overrides among method (0 stored, 8 deflated), compressed (the bytes stored), file_size, crc."""
    local, central = b"", b""
    for name, data, over in members:
        method = over.get("method", 0)
        stored = over.get("compressed", data if method == 0 else _deflate(data))
        crc, size = over.get("crc", zlib.crc32(data)), over.get("file_size", len(data))
        fields = (20, 0, method, 0, 0x21, crc, len(stored), size, len(name), 0)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *fields[:-1], 0, 0, 0, 0, 0, len(local))
        central += name.encode()
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", *fields) + name.encode() + stored
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    return local + central + end


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def config_member(good) -> tuple[str, bytes, dict]:
    config, _ = contents(good)
    f = io.BytesIO()
    np.save(f, np.array(json.dumps(config)))
    return "__config__.npy", f.getvalue(), {}


def refused(path, match: str, *, load=load_checkpoint, peak_mb: float = 50) -> str:
    """The one-line CheckpointError ``load(path)`` raises, having allocated under ``peak_mb``."""
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert peak < peak_mb * MB, f"{peak / MB:.1f} MB allocated before refusing"
    assert str(path) in message and "\n" not in message and "allow_pickle" not in message, message
    assert match in message, message
    return message


# -- sizes declared by the file -----------------------------------------------------------
def test_thirty_million_classes_are_refused_before_anything_is_built(good, tmp_path):
    path = variant(good, tmp_path, lambda c: c["model"].update(num_classes=30_000_000))
    message = refused(path, "model.num_classes")
    assert "30000000" in message and "1..100000" in message


def test_weights_are_compared_with_a_shapes_only_model_before_the_real_one_is_built(good, tmp_path):
    # 100,000 classes is within bounds; building the real model would take ~34 MB for fc3 alone.
    def big(config):
        config["model"]["num_classes"] = 100_000
        del config["class_names"]
    message = refused(variant(good, tmp_path, big), "'fc3.weight'", peak_mb=20)
    assert "(10, 84)" in message and "(100000, 84)" in message


@pytest.mark.parametrize("change, match", [
    (lambda a: a.pop("conv1.bias"), "'conv1.bias'"),                 # a missing weight
    (lambda a: a.update(ghost=np.zeros(3, np.float32)), "'ghost'"),  # an unexpected one
])
def test_missing_and_unexpected_weights_are_named_before_the_model_is_built(good, tmp_path, change, match):
    def big(config):
        config["model"]["num_classes"] = 100_000
        del config["class_names"]
    refused(variant(good, tmp_path, big, change), match, peak_mb=20)


def test_mis_shaped_weight_names_the_key_and_both_shapes(good, tmp_path):
    path = variant(good, tmp_path, change_arrays=lambda a: a.update({"fc1.weight": a["fc1.weight"][:, :10]}))
    message = refused(path, "'fc1.weight'")
    assert "(120, 10)" in message and "(120, 400)" in message and "in the file" in message


def test_an_npy_header_declaring_2_to_the_40_elements_is_refused_without_allocating(good, tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(hand_zip([config_member(good), ("conv1.weight.npy", npy((2**40,), data=bytes(16)), {})]))
    message = refused(path, "conv1.weight", load=read_checkpoint)
    assert "1099511627776" in message or str(2**42) in message


def test_a_deflate_bomb_is_refused_before_it_is_inflated(good, tmp_path):
    # The header and the zip entry both claim 2 GiB of float32; the stream holds ~1 KB.
    header = npy((2**29,))
    member = ("conv1.weight.npy", header + bytes(MB), {"method": 8, "file_size": len(header) + 2**31})
    path = tmp_path / "model.npz"
    path.write_bytes(hand_zip([config_member(good), member]))
    refused(path, "conv1.weight", load=read_checkpoint)


def test_a_stream_that_inflates_past_its_declared_size_stops_there(good, tmp_path):
    data = npy((4,), data=bytes(16))
    bomb = data + bytes(64 * MB)                      # the stream goes on, the entry says len(data)
    member = ("conv1.weight.npy", bomb, {"method": 8, "file_size": len(data), "crc": zlib.crc32(bomb)})
    path = tmp_path / "model.npz"
    path.write_bytes(hand_zip([config_member(good), member]))
    refused(path, "CRC", load=read_checkpoint, peak_mb=20)


def test_read_npz_keeps_to_max_bytes_and_max_members(tmp_path):
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, a=np.zeros(MB, np.float32), b=np.zeros(1, np.float32))
    assert read_npz(path)["a"].shape == (MB,)
    with pytest.raises(NpzError, match="max_bytes"):
        read_npz(path, max_bytes=MB)
    with pytest.raises(NpzError, match="max_members"):
        read_npz(path, max_members=1)


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.float32).reshape(3, 4), np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.array("a config ✓"), np.array([True, False]), np.zeros((0, 5), np.int64),
    np.arange(3, dtype=">i2"), np.array(3), np.array([1 + 2j]), np.array(["", ""]),
], ids=["float32", "fortran", "unicode-0d", "bool", "empty", "big-endian", "int-0d", "complex", "U0"])
def test_read_npz_reads_what_np_load_reads(tmp_path, array):
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "a.npz", x=array)
        got = read_npz(tmp_path / "a.npz")["x"]
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


# -- damaged files ----------------------------------------------------------------------
def test_a_corrupt_deflate_stream_gives_one_line(good, tmp_path):
    src = zipfile.ZipFile(good)
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("fc1.weight.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start] |= 0x06                                # block type 11: reserved, "invalid block type"
    path.write_bytes(bytes(data))
    refused(path, "invalid block type")


def test_a_bad_crc_gives_one_line(good, tmp_path):
    data = bytearray(good.read_bytes())
    info = zipfile.ZipFile(good).getinfo("fc1.weight.npy")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 500] ^= 0xFF
    path = tmp_path / "model.npz"
    path.write_bytes(bytes(data))
    refused(path, "CRC")


def test_every_truncation_of_a_small_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "small.npz"
    save_checkpoint(path, build_model("mlp", 2, 1, (2, 2), hidden=[3], rng=np.random.default_rng(0)), {})
    size = path.stat().st_size
    load_checkpoint(path)
    for n in reversed(range(size)):
        os.truncate(path, n)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message and "allow_pickle" not in message, (n, message)


def test_running_out_of_memory_while_building_gives_one_line(good, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(checkpoint_module, "build_model", no_memory)
    refused(good, "not enough memory")


# -- configs ----------------------------------------------------------------------------
@pytest.mark.parametrize("key, match", [
    ("model", "'model'"), ("model.name", "'model.name'"), ("model.num_classes", "'model.num_classes'"),
    ("model.input_size", "'model.input_size'"), ("version", "'version'"),
])
def test_a_config_missing_a_key_names_the_key(good, tmp_path, key, match):
    def drop(config):
        *parents, last = key.split(".")
        d = config
        for p in parents:
            d = d[p]
        del d[last]
    refused(variant(good, tmp_path, drop), match, load=read_checkpoint)


@pytest.mark.parametrize("change, match", [
    (lambda c: c["model"].update(name="nope"), "unknown model 'nope'"),
    (lambda c: c["model"].update(num_classes=0), "model.num_classes"),
    (lambda c: c["model"].update(num_classes="10"), "model.num_classes"),
    (lambda c: c["model"].update(num_classes=True), "model.num_classes"),
    (lambda c: c["model"].update(in_channels=65), "model.in_channels"),
    (lambda c: c["model"].update(input_size=[32]), "model.input_size"),
    (lambda c: c["model"].update(input_size=[100_000, 32]), "model.input_size H"),
    (lambda c: c["model"].update(options=[]), "model.options"),
    (lambda c: c["model"].update(options={"hidden": {"a": 1}}), "model.options['hidden']"),
    (lambda c: c["model"].update(options={"hidden": [2**28]}), "integers up to 65536"),
    (lambda c: c.update(version=2), "version 2"),
    (lambda c: c.update(class_names=["a"]), "class_names"),
    (lambda c: c.update(input_shape=[3, 32, 32]), "input_shape"),
    (lambda c: c.update(normalizer="x"), "normalizer"),
    (lambda c: c.update(normalizer={"mean": [0.1]}), "normalizer"),
    (lambda c: c.update(normalizer={"mean": [0.1, 0.2], "std": [0.3, 0.3]}), "normalizer.mean"),
    (lambda c: c.update(normalizer={"mean": [0.1], "std": [0.0]}), "std must be positive"),
    (lambda c: c.update(train=[1]), "train"),
    (lambda c: c.update(history={}), "history"),
])
def test_a_malformed_config_is_refused_before_anything_is_built(good, tmp_path, change, match):
    refused(variant(good, tmp_path, change), match, load=read_checkpoint)


def test_a_model_the_builder_refuses_gives_one_line(good, tmp_path):
    path = variant(good, tmp_path, lambda c: c["model"]["options"].update(depth=3))
    refused(path, "does not hold a model convscope can rebuild")


@pytest.mark.parametrize("raw", ["[" * 100_000, '{"format": "convscope-checkpoint", "x": ' + "[" * 100_000
                                 + "]" * 100_000 + "}"], ids=["unbalanced", "balanced"])
def test_deeply_nested_json_is_refused_without_recursion(good, tmp_path, raw):
    _, arrays = contents(good)
    path = write(tmp_path / "model.npz", None, arrays, raw_config=raw)
    refused(path, "levels deep", load=read_checkpoint)


def test_brackets_inside_strings_do_not_count_as_nesting(good, tmp_path):
    path = variant(good, tmp_path, lambda c: c.update(note="[" * 1000 + '"\\"{'))
    assert read_checkpoint(path)[0]["note"].startswith("[[[")


# -- files that are not checkpoints -----------------------------------------------------
def _png() -> bytes:
    from PIL import Image
    f = io.BytesIO()
    Image.new("L", (2, 2)).save(f, format="PNG")
    return f.getvalue()


@pytest.mark.parametrize("content, looks", [
    (b"hello, a text file", None), (pickle.dumps({"weights": [1, 2]}), "a pickle"),
    (_png(), "a PNG image"), (b"", "an empty file"),
], ids=["text", "pickle", "png", "empty"])
def test_a_file_that_is_not_an_npz_says_so(tmp_path, content, looks):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    message = refused(path, "not an .npz file")
    assert "not a readable convscope checkpoint" in message
    assert looks is None or looks in message


def test_an_npy_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    refused(path, "a single .npy array")


def test_object_arrays_are_never_unpickled(good, tmp_path):
    config, arrays = contents(good)
    arrays["conv1.bias"] = np.array([{"evil": 1}] * 6, dtype=object)
    path = write(tmp_path / "model.npz", config, arrays)
    refused(path, "never objects")


# -- resuming ---------------------------------------------------------------------------
def _resumable(tmp_path, *, drop=(), optim=None):
    model = build_model("lenet5", rng=np.random.default_rng(0))
    meta = {**LENET_META, "train": {"epochs": 2, "lr": 0.05, "limit": None},
            "history": [{"epoch": 1, "train_loss": 0.5}]}
    for key in drop:
        del meta[key]
    state = {"__steps__": np.array(10), "fc1.weight.momentum": np.zeros((120, 400), np.float32)}
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, model, meta, state if optim is None else optim)
    return path


def test_a_complete_checkpoint_can_be_resumed(tmp_path):
    from convscope.training.checkpoint import check_resumable
    path = _resumable(tmp_path)
    check_resumable(load_checkpoint(path)[1], path)
    check_resumable(read_checkpoint(path)[0], path)         # no optimizer arrays: those are not checked


@pytest.mark.parametrize("drop, optim, match", [
    (("history",), None, "cannot be resumed: it has no training history (written by an older or foreign tool?)"),
    (("train",), None, "cannot be resumed: it has no training options"),
    (("normalizer",), None, "cannot be resumed: it has no input normalizer"),
    ((), {}, "holds no optimizer state"),
    ((), {"__steps__": np.array(1), "fc1.weight.momentum": np.zeros(3)}, "'fc1.weight.momentum'"),
    ((), {"__steps__": np.array(1), "ghost.weight.momentum": np.zeros(3)}, "belongs to no parameter"),
    ((), {"__steps__": np.array(1.5)}, "step count"),
])
def test_a_checkpoint_that_cannot_be_resumed_says_why(tmp_path, drop, optim, match):
    from convscope.training.checkpoint import check_resumable
    path = _resumable(tmp_path, drop=drop, optim=optim)
    _, config = load_checkpoint(path)
    refused(path, match, load=lambda p: check_resumable(config, p))
