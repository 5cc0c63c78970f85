"""Fuzzing the dataset readers: damaged IDX, CIFAR-10 and PNG / JPEG files raise DataFormatError only.

Hypothesis draws mutations (bit flips, byte sets, inserts, deletes, duplicated spans,
truncations; aimed half the time at the bytes that carry structure: headers, pickle
opcodes, PNG chunk heads) of small valid files. Each test writes its mutants to a temporary
folder and reads them all in one child process under a 2 GiB address-space limit and a
timeout (:func:`fuzz.harness.run_reader_in_child`), so a crash, hang or memory flood fails
the test. A failure names the seed and the mutations, enough to rebuild the file.
"""

from __future__ import annotations

import gzip
import io
import pickle
import pickletools

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz.harness import run_reader_in_child
from ondisk import idx_bytes, py2_pickle

pytest.importorskip("resource")          # RLIMIT_AS: POSIX only

KINDS = ("flip", "set", "insert", "delete", "duplicate", "truncate")


def mutate(seed: bytes, mutations) -> bytes:
    """``seed`` after each (kind, position, value) of ``mutations``, in order."""
    data = bytearray(seed)
    for kind, position, value in mutations:
        at = position % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] ^= 1 << (value % 8)
        elif kind == "set" and data:
            data[at % len(data)] = value
        elif kind == "insert":
            data[at:at] = bytes([value]) * (1 + value % 5)
        elif kind == "delete":
            del data[at:at + 1 + value % 16]
        elif kind == "duplicate":
            data[at:at] = data[at:at + 1 + value % 64]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def mutations(hot: list[int], size: int):
    """Lists of 1..6 mutations; positions are hot (structural) bytes half the time."""
    position = st.one_of(st.sampled_from(hot), st.integers(0, size)) if hot else st.integers(0, size)
    return st.lists(st.tuples(st.sampled_from(KINDS), position, st.integers(0, 255)), min_size=1, max_size=6)


def draw_mutants(seeds: dict[str, tuple[bytes, list[int]]], count: int) -> list[tuple[str, list, bytes]]:
    """``count`` (seed name, mutations, mutated bytes) drawn by Hypothesis from the ``seeds``."""
    cases = st.sampled_from(sorted(seeds)).flatmap(
        lambda name: st.tuples(st.just(name), mutations(seeds[name][1], len(seeds[name][0]))))
    drawn = []

    @settings(max_examples=count, deadline=None, database=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck))
    @given(cases)
    def collect(case):
        name, ops = case
        drawn.append((name, ops, mutate(seeds[name][0], ops)))

    collect()
    return drawn


def check_in_child(tmp_path, reader_code: str, drawn, paths=None, timeout: float = 90.0) -> None:
    """Run the reader on every mutant; only "ok" or a one-line DataFormatError may come back."""
    if paths is None:
        paths = []
        for k, (_, _, data) in enumerate(drawn):
            paths.append(tmp_path / f"mutant{k:04d}")
            paths[-1].write_bytes(data)
    results = run_reader_in_child(reader_code, [str(p) for p in paths], timeout=timeout)
    bad = [(name, ops, r) for (name, ops, _), r in zip(drawn, results)
           if r["outcome"] not in ("ok", "DataFormatError") or r["lines"] > 1]
    assert not bad, "\n".join(f"seed {name!r} with mutations {ops}: {r['outcome']}: {r['message']}"
                              for name, ops, r in bad[:10])


# --- IDX ----------------------------------------------------------------------------------------

def _idx_seeds() -> dict[str, tuple[bytes, list[int]]]:
    rng = np.random.default_rng(0)
    raw = {"images": idx_bytes(rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)),
           "labels": idx_bytes(rng.integers(0, 10, 7).astype(np.uint8)),
           "int16": idx_bytes(rng.integers(-300, 300, (4, 3)).astype(np.int16)),
           "float64": idx_bytes(rng.standard_normal(5))}
    seeds = {name: (data, list(range(16))) for name, data in raw.items()}
    seeds.update({f"{name}.gz": (gzip.compress(data), list(range(24)) + list(range(len(gzip.compress(data)) - 8,
                                                                                   len(gzip.compress(data)))))
                  for name, data in raw.items()})
    return seeds


def test_fuzz_idx(tmp_path):
    drawn = draw_mutants(_idx_seeds(), 300)
    # also inflate-side damage: mutate the raw bytes, then compress them, so the parser sees it
    inner = [(f"gzip({name})", ops, gzip.compress(data)) for name, ops, data in draw_mutants(
        {k: v for k, v in _idx_seeds().items() if not k.endswith(".gz")}, 100)]
    check_in_child(tmp_path, "from convscope.data import load_idx as read\n", drawn + inner)


# --- CIFAR-10 -----------------------------------------------------------------------------------

def _opcode_bytes(blob: bytes) -> list[int]:
    """Positions of each opcode of ``blob`` and the first bytes of its argument."""
    return [pos + k for _, _, pos in pickletools.genops(blob) for k in range(5)]


def _cifar_seeds() -> dict[str, tuple[bytes, list[int]]]:
    rng = np.random.default_rng(1)
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [3, 9],
             b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"filenames": [b"a.png", b"b.png"]}
    as_str = {k.decode(): v for k, v in batch.items()}
    blobs = {"py2": py2_pickle(batch), "p2": pickle.dumps(batch, protocol=2),
             "p4_str": pickle.dumps(as_str, protocol=4), "p5": pickle.dumps(batch, protocol=5),
             "meta": py2_pickle({b"label_names": [b"cat", b"dog"], b"num_vis": 3072})}
    return {name: (blob, _opcode_bytes(blob)) for name, blob in blobs.items()}


CIFAR_READER = """
from convscope.data.cifar import read_cifar_batch, read_cifar_pickle
def read(path):
    read_cifar_pickle(path)
    read_cifar_batch(path)
"""


def test_fuzz_cifar(tmp_path):
    check_in_child(tmp_path, CIFAR_READER, draw_mutants(_cifar_seeds(), 400))


# --- PNG / JPEG and image folders ---------------------------------------------------------------

def _image_seeds() -> dict[str, tuple[bytes, list[int]]]:
    from PIL import Image
    rng = np.random.default_rng(2)
    images = {"gray.png": (Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8)), "PNG"),
              "rgb.png": (Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)), "PNG"),
              "rgba.png": (Image.fromarray(rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)), "PNG"),
              "wide.png": (Image.fromarray(rng.integers(0, 65536, (6, 5), dtype=np.uint16)), "PNG"),
              "palette.png": (Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).convert("P"), "PNG"),
              "rgb.jpg": (Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)), "JPEG")}
    seeds = {}
    for name, (image, fmt) in images.items():
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        data = buffer.getvalue()
        chunk_names = [k for k in range(len(data) - 4) if data[k:k + 4] in (b"IDAT", b"IEND", b"PLTE", b"tRNS")]
        hot = list(range(40)) + chunk_names
        seeds[name] = (data, hot + [k + d for k in hot[40:] for d in (-4, -3, -2, -1, 4)])
    return seeds


IMAGE_READER = """
from convscope.data import read_image
from convscope.data.images import image_shape
def read(path):
    image_shape(path)
    for channels in (None, 1, 3):
        read_image(path, channels=channels, max_pixels=10 ** 6)
"""


def test_fuzz_images(tmp_path):
    pytest.importorskip("PIL")
    check_in_child(tmp_path, IMAGE_READER, draw_mutants(_image_seeds(), 400))


def test_fuzz_image_folders(tmp_path):
    """Folders of two classes in which one file is a mutant: the whole load_dataset path."""
    pytest.importorskip("PIL")
    seeds = _image_seeds()
    drawn = draw_mutants({k: v for k, v in seeds.items() if k.endswith(".png")}, 40)
    folders = []
    for k, (name, _, data) in enumerate(drawn):
        folder = tmp_path / f"folder{k:03d}"
        for cls in ("a", "b"):
            (folder / cls).mkdir(parents=True)
            for i in range(6):
                (folder / cls / f"{i}.png").write_bytes(seeds[name][0])
        (folder / "a" / "0.png").write_bytes(data)
        folders.append(folder)
    check_in_child(tmp_path, "from convscope.data import load_dataset as read\n", drawn, paths=folders)
