"""load_dataset: embedded names versus paths, missing and unrecognised directories."""

import pytest

from convscope.data import DataFormatError, load_dataset


def test_missing_directory(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataFormatError) as err:
        load_dataset(str(missing))
    assert str(err.value) == (f"data directory not found: {missing} (use 'mnist' or a directory of "
                              f"IDX / CIFAR-10 / image-folder data)")


def test_unknown_name_is_a_path():
    with pytest.raises(DataFormatError, match="data directory not found: cifar100-nowhere"):
        load_dataset("cifar100-nowhere")


def test_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "f.txt").write_text("hello")
    with pytest.raises(DataFormatError, match="not a directory"):
        load_dataset(tmp_path / "f.txt")


def test_unrecognised_directory_lists_the_formats(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "notes").mkdir()
    with pytest.raises(DataFormatError, match="no dataset found") as err:
        load_dataset(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    for fact in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "data_batch_1", "batches.meta",
                 "cifar-10-batches-py", "PNG/JPEG"):
        assert fact in msg


def test_rejects_non_path():
    with pytest.raises(TypeError, match="int"):
        load_dataset(3)


def test_error_is_a_value_error():
    assert issubclass(DataFormatError, ValueError)
