"""Writers of small synthetic datasets on disk (IDX, CIFAR-10 pickles, image folders), as fixtures."""

import shutil
from pathlib import Path

import pytest

import ondisk

@pytest.fixture
def write_idx():
    """``write_idx(path, array, gz=False)``: one IDX file."""
    return ondisk.write_idx


@pytest.fixture
def write_idx_dir():
    """``write_idx_dir(directory, arrays=None, gz=False, skip=())``: the four IDX files."""
    return ondisk.write_idx_dir


@pytest.fixture
def write_cifar_dir():
    """``write_cifar_dir(directory, ...)``: synthetic CIFAR-10 python batches."""
    return ondisk.write_cifar_dir


@pytest.fixture
def write_image():
    """``write_image(path, pixels)``: one image file, written with Pillow."""
    pytest.importorskip("PIL")
    return ondisk.write_image


@pytest.fixture
def embedded_copy(tmp_path, monkeypatch):
    """A writable copy of the embedded datasets in tmp_path, which the loader then reads instead."""
    from convscope.data import embedded
    root = tmp_path / "embedded"
    for name in embedded.EMBEDDED:
        shutil.copytree(Path(str(embedded.embedded_root() / name)), root / name)
    monkeypatch.setattr(embedded, "embedded_root", lambda: root)
    return root


@pytest.fixture
def encode_idx():
    """``encode_idx(array) -> bytes``: the IDX encoding, for tests that damage it."""
    return ondisk.idx_bytes
