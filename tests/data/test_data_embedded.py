"""The MNIST copy shipped in the package: shapes, labels, and the SHA256 check at load."""

import numpy as np
import pytest

from convscope.data import EMBEDDED, DataFormatError, load_dataset

# ``mnist`` (the embedded MNIST, loaded once per session) comes from tests/conftest.py.


def test_embedded_names():
    assert EMBEDDED == ("mnist",)


def test_mnist_shapes_and_labels(mnist):
    assert mnist.name == "mnist"
    assert mnist.train_images.shape == (60000, 1, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 1, 28, 28) and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.shape == (60000,) and mnist.train_labels.dtype == np.int64
    assert mnist.test_labels.shape == (10000,) and mnist.test_labels.dtype == np.int64
    assert set(np.unique(mnist.train_labels)) == set(range(10)) == set(np.unique(mnist.test_labels))
    assert mnist.class_names == [str(d) for d in range(10)]
    assert mnist.input_shape == (1, 28, 28) and mnist.num_classes == 10
    # well-known facts of MNIST: the first two training labels, and the test split's class counts
    assert mnist.train_labels[:2].tolist() == [5, 0]
    assert np.bincount(mnist.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("file_name", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
def test_corrupt_copy_is_refused(embedded_copy, file_name):
    path = embedded_copy / "mnist" / file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt") as err:
        load_dataset("mnist")
    assert file_name in str(err.value) and "reinstall" in str(err.value)


def test_missing_file_in_copy_is_refused(embedded_copy):
    (embedded_copy / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataFormatError, match="incomplete.*t10k-images-idx3-ubyte.gz is missing"):
        load_dataset("mnist")


def test_missing_sums_file_is_refused(embedded_copy):
    (embedded_copy / "mnist" / "SHA256SUMS").unlink()
    with pytest.raises(DataFormatError, match="SHA256SUMS is missing"):
        load_dataset("mnist")
