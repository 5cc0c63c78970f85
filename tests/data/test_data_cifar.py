"""CIFAR-10 python batches: round trip, the cifar-10-batches-py folder, and the restricted unpickler."""

import os
import pickle

import numpy as np
import pytest

from convscope.data import DataFormatError, load_dataset


@pytest.mark.parametrize("str_keys", [False, True])
@pytest.mark.parametrize("protocol", [2, 4, 5, "py2"])
def test_round_trip(tmp_path, write_cifar_dir, str_keys, protocol):
    written = write_cifar_dir(tmp_path / "cifar", str_keys=str_keys, protocol=protocol)
    ds = load_dataset(tmp_path / "cifar")
    assert ds.name == "cifar"
    assert ds.train_images.shape == (20, 3, 32, 32) and ds.test_images.shape == (3, 3, 32, 32)
    assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int64
    assert ds.class_names == written["label_names"]
    np.testing.assert_array_equal(ds.train_labels, written["train_labels"])
    np.testing.assert_array_equal(ds.test_labels, written["test_labels"])
    # row k of "data" is 1024 red, then 1024 green, then 1024 blue values, each plane row-major
    first = written["train_data"][0]
    np.testing.assert_array_equal(ds.train_images[0, 1], first[1024:2048].reshape(32, 32))
    np.testing.assert_array_equal(ds.train_images.reshape(20, -1), written["train_data"])


def test_batches_py_subfolder(tmp_path, write_cifar_dir):
    write_cifar_dir(tmp_path / "download" / "cifar-10-batches-py")
    ds = load_dataset(str(tmp_path / "download"))
    assert ds.name == "download" and ds.num_classes == 10 and len(ds.train_images) == 20


def test_missing_batch_is_named(tmp_path, write_cifar_dir):
    write_cifar_dir(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DataFormatError, match="incomplete: missing data_batch_3$"):
        load_dataset(tmp_path)


class _Evil:
    """Unpickling this runs os.system: what a malicious "CIFAR batch" would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_forbidden_global_is_refused(tmp_path, write_cifar_dir):
    write_cifar_dir(tmp_path)
    target = tmp_path / "pwned"
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": _Evil(target), b"labels": []}))
    with pytest.raises(DataFormatError, match="refusing to load .*data_batch_2.*system"):
        load_dataset(tmp_path)
    assert not target.exists()


def test_corrupt_pickle(tmp_path, write_cifar_dir):
    write_cifar_dir(tmp_path)
    (tmp_path / "test_batch").write_bytes((tmp_path / "test_batch").read_bytes()[:100])
    with pytest.raises(DataFormatError, match="corrupt CIFAR-10 file .*test_batch"):
        load_dataset(tmp_path)


def test_wrong_data_shape(tmp_path, write_cifar_dir):
    write_cifar_dir(tmp_path)
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataFormatError, match=r"data_batch_1: 'data' must be uint8 \(N, 3072\)"):
        load_dataset(tmp_path)


def test_label_count_mismatch(tmp_path, write_cifar_dir):
    write_cifar_dir(tmp_path)
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}
    (tmp_path / "data_batch_5").write_bytes(pickle.dumps(batch))
    with pytest.raises(DataFormatError, match="data_batch_5 has 2 images but 3 labels"):
        load_dataset(tmp_path)
