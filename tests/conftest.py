"""Fixtures shared by the whole suite: small slices of the embedded MNIST, as arrays and as IDX files.

This file puts ``tests/`` on ``sys.path``, so test modules can ``from ondisk import ...``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from convscope.data import Dataset, load_dataset
from ondisk import dataset_arrays, write_idx_dir


@pytest.fixture(scope="session")
def mnist() -> Dataset:
    """The embedded MNIST, loaded once per test session."""
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def mnist_small(mnist) -> Dataset:
    """2048 training and 500 test images of MNIST: enough to learn, quick to train on."""
    return Dataset("mnist-small", mnist.train_images[:2048], mnist.train_labels[:2048],
                   mnist.test_images[:500], mnist.test_labels[:500], mnist.class_names)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory, mnist) -> Path:
    """A directory of gzip IDX files with 512 training and 200 test images of MNIST."""
    small = Dataset("mnist-tiny", mnist.train_images[:512], mnist.train_labels[:512],
                    mnist.test_images[:200], mnist.test_labels[:200], mnist.class_names)
    directory = tmp_path_factory.mktemp("data") / "mnist-tiny"
    write_idx_dir(directory, dataset_arrays(small), gz=True)
    return directory
