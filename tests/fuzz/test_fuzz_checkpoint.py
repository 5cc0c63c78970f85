"""Fuzzing the checkpoint reader: mutated LeNet-5 checkpoints give a CheckpointError or load.

Hypothesis flips bytes, truncates and splices a valid checkpoint (stored, as
``save_checkpoint`` writes it, and re-zipped with deflate), aiming half of its edits at the
zip and .npy headers where the sizes live. Each batch of files is loaded in one child
process capped at 2 GiB of address space and a timeout (see :mod:`fuzz.harness`), so a
memory flood or a hang fails the test instead of the machine. Only ``CheckpointError`` (a
``ValueError``) may escape, as one line naming the file and never suggesting
``allow_pickle``. About ten seconds.
"""

from __future__ import annotations

import functools
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.models import build_model
from convscope.training import save_checkpoint
from fuzz.harness import run_reader_in_child

pytest.importorskip("resource")          # RLIMIT_AS: POSIX only

FILES_PER_BATCH = 30
READER = """
from convscope.training import load_checkpoint

def read(path):
    load_checkpoint(path)
"""
META = {"data": "mnist", "normalizer": {"mean": [0.13], "std": [0.31]},
        "class_names": list("0123456789"), "input_shape": [1, 28, 28],
        "train": {"epochs": 2}, "history": [{"epoch": 1, "train_loss": 0.5}]}


@functools.lru_cache(maxsize=None)
def bases() -> tuple[tuple[bytes, list[int]], ...]:
    """(bytes, anchors) of a stored and a deflated checkpoint; anchors are where headers start.

    Cached in the module rather than a fixture, so Hypothesis does not print 500 KB with a failure.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "base.npz"
        save_checkpoint(path, build_model("lenet5", rng=np.random.default_rng(0)), META,
                        {"__steps__": np.array(3), "fc3.bias.momentum": np.zeros(10, np.float32)})
        stored = path.read_bytes()
    src = zipfile.ZipFile(io.BytesIO(stored))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
    return tuple((data, _anchors(data)) for data in (stored, buf.getvalue()))


def _anchors(data: bytes) -> list[int]:
    """Offsets of each local header, its data (the .npy header), the central directory, its end."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    out = [zf.start_dir, len(data) - 22]
    for info in zf.infolist():
        out += [info.header_offset, info.header_offset + 30 + len(info.filename) + len(info.extra)]
    return out


# A position: anywhere in the file (a fraction of its length), or near a header (anchor, offset).
POSITION = st.one_of(st.floats(0, 1, exclude_max=True), st.tuples(st.integers(0, 99), st.integers(-4, 140)))
EDIT = st.one_of(
    st.tuples(st.just("flip"), POSITION, st.integers(1, 255)),
    st.tuples(st.just("truncate"), POSITION),
    st.tuples(st.just("splice"), POSITION, POSITION, st.integers(1, 512)),      # copy a run over another place
    st.tuples(st.just("insert"), POSITION, st.binary(min_size=1, max_size=16)),
)
MUTANT = st.tuples(st.integers(0, 1), st.lists(EDIT, min_size=1, max_size=3))


def _at(position, data: bytearray, anchors: list[int]) -> int:
    if isinstance(position, float):
        return int(position * len(data))
    anchor, offset = position
    return min(max(anchors[anchor % len(anchors)] + offset, 0), max(len(data) - 1, 0))


def mutate(base: bytes, anchors: list[int], edits) -> bytes:
    data = bytearray(base)
    for kind, *args in edits:
        if not data:
            break
        i = _at(args[0], data, anchors)
        if kind == "flip":
            data[i] ^= args[1]
        elif kind == "truncate":
            del data[i:]
        elif kind == "splice":
            j, n = _at(args[1], data, anchors), args[2]
            data[j:j + n] = data[i:i + n]
        else:
            data[i:i] = args[1]
    return bytes(data)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(mutants=st.lists(MUTANT, min_size=FILES_PER_BATCH, max_size=FILES_PER_BATCH))
def test_mutated_checkpoints_load_or_give_one_line(tmp_path_factory, mutants):
    directory = tmp_path_factory.mktemp("mutants")
    paths = []
    for k, (which, edits) in enumerate(mutants):
        paths.append(directory / f"mutant{k}.npz")
        paths[-1].write_bytes(mutate(*bases()[which], edits))
    for result, (which, edits) in zip(run_reader_in_child(READER, paths, timeout=60), mutants):
        outcome, message = result["outcome"], result["message"]
        assert outcome in ("ok", "CheckpointError"), (outcome, message, which, edits)
        if outcome == "CheckpointError":
            assert result["path"] in message and "\n" not in message, (message, edits)
            assert "allow_pickle" not in message, (message, edits)


def test_the_unmutated_bases_load(tmp_path):
    paths = []
    for k, (data, _) in enumerate(bases()):
        paths.append(tmp_path / f"base{k}.npz")
        paths[-1].write_bytes(data)
    assert [r["outcome"] for r in run_reader_in_child(READER, paths)] == ["ok", "ok"]
