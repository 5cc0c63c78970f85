"""IDX files: round trips for every element type, raw and gzip, and each kind of damage."""

import gzip

import numpy as np
import pytest

from convscope.data import DataFormatError, load_dataset, load_idx
from convscope.data.idx import FASHION_MNIST_CLASSES

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 3, 4, 2)])
def test_round_trip(tmp_path, write_idx, dtype, shape, gz):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    array = (rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype) if info
             else rng.standard_normal(shape).astype(dtype))
    out = load_idx(write_idx(tmp_path / ("f.gz" if gz else "f"), array, gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_gzip_is_detected_by_content_not_name(tmp_path, write_idx):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "no-suffix", array, gz=True)), array)
    np.testing.assert_array_equal(load_idx(write_idx(tmp_path / "raw.gz", array, gz=False)), array)


@pytest.mark.parametrize("data, fact", [
    (b"\x1f\x00\x08\x01", "0x1f000801"),
    (b"", "empty"),
    (b"PK\x03\x04rest", "0x504b0304"),
])
def test_wrong_magic(tmp_path, data, fact):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(DataFormatError, match="not an IDX file") as err:
        load_idx(tmp_path / "bad")
    assert fact in str(err.value) and "bad" in str(err.value) and "0x0000" in str(err.value)


def test_unknown_type_code(tmp_path, encode_idx):
    data = bytearray(encode_idx(np.zeros(3, np.uint8)))
    data[2] = 0x0A
    (tmp_path / "f").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="0x0A"):
        load_idx(tmp_path / "f")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data(tmp_path, encode_idx, gz):
    data = encode_idx(np.zeros((4, 5, 6), np.uint8))[:-10]        # header 16 bytes + 120 - 10
    (tmp_path / "f").write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataFormatError, match="truncated") as err:
        load_idx(tmp_path / "f")
    assert "expected 120 bytes" in str(err.value) and "got 110" in str(err.value)


def test_truncated_header(tmp_path, encode_idx):
    (tmp_path / "f").write_bytes(encode_idx(np.zeros((4, 5, 6), np.uint8))[:9])
    with pytest.raises(DataFormatError, match="truncated.*header needs 16 bytes, got 9"):
        load_idx(tmp_path / "f")


def test_trailing_bytes(tmp_path, encode_idx):
    (tmp_path / "f").write_bytes(encode_idx(np.zeros(5, np.uint8)) + b"xyz")
    with pytest.raises(DataFormatError, match="3 bytes after"):
        load_idx(tmp_path / "f")


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_corrupt_gzip(tmp_path, encode_idx, damage):
    data = bytearray(gzip.compress(encode_idx(np.arange(2000, dtype=np.int32))))
    if damage == "cut":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    (tmp_path / "f.gz").write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt gzip file .*f.gz"):
        load_idx(tmp_path / "f.gz")


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="not found.*nothing"):
        load_idx(tmp_path / "nothing")


@pytest.mark.parametrize("gz", [False, True])
def test_directory_round_trip(tmp_path, write_idx_dir, gz):
    arrays = write_idx_dir(tmp_path / "digits", gz=gz)
    ds = load_dataset(str(tmp_path / "digits"))
    assert ds.name == "digits"
    assert ds.train_images.shape == (12, 1, 6, 5) and ds.test_images.shape == (5, 1, 6, 5)
    assert ds.train_labels.dtype == np.int64 and ds.test_labels.dtype == np.int64
    np.testing.assert_array_equal(ds.train_images[:, 0], arrays["train_images"])
    np.testing.assert_array_equal(ds.test_labels, arrays["test_labels"])
    top = int(max(arrays["train_labels"].max(), arrays["test_labels"].max()))
    assert ds.class_names == [str(i) for i in range(top + 1)]


def test_directory_with_some_files_names_the_missing(tmp_path, write_idx_dir):
    write_idx_dir(tmp_path, skip=("test_labels", "train_images"))
    with pytest.raises(DataFormatError, match="incomplete") as err:
        load_dataset(tmp_path)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and "train-images-idx3-ubyte" in msg
    assert "train-labels" not in msg


def test_label_count_mismatch_names_both_files(tmp_path, write_idx_dir):
    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
              "train_labels": np.zeros(7, np.uint8),
              "test_images": np.zeros((2, 4, 4), np.uint8), "test_labels": np.zeros(2, np.uint8)}
    write_idx_dir(tmp_path, arrays)
    with pytest.raises(DataFormatError) as err:
        load_dataset(tmp_path)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte" in msg and "train-images-idx3-ubyte" in msg
    assert "7 labels" in msg and "6 images" in msg


def test_images_must_be_uint8_3d(tmp_path, write_idx_dir):
    arrays = {"train_images": np.zeros((3, 4, 4), np.float32), "train_labels": np.zeros(3, np.uint8),
              "test_images": np.zeros((2, 4, 4), np.uint8), "test_labels": np.zeros(2, np.uint8)}
    write_idx_dir(tmp_path, arrays)
    with pytest.raises(DataFormatError, match="must be uint8 .*float32"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("name, fashion", [("fashion-mnist", True), ("FashionMNIST", True),
                                           ("my-digits", False)])
def test_fashion_class_names(tmp_path, write_idx_dir, name, fashion):
    write_idx_dir(tmp_path / name)
    ds = load_dataset(tmp_path / name)
    if fashion:
        assert ds.class_names == FASHION_MNIST_CLASSES
        assert ds.class_names[0] == "T-shirt/top" and ds.class_names[-1] == "Ankle boot"
    else:
        assert ds.class_names[0] == "0"
