"""Dataset: validation on construction, properties, limit()."""

import numpy as np
import pytest

from convscope.data import DataFormatError, Dataset


def make(n_train=10, n_test=4, shape=(3, 5, 6), classes=("a", "b", "c"), **override):
    rng = np.random.default_rng(0)
    fields = dict(name="toy",
                  train_images=rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
                  train_labels=rng.integers(0, len(classes), n_train),
                  test_images=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
                  test_labels=rng.integers(0, len(classes), n_test),
                  class_names=list(classes))
    fields.update(override)
    return Dataset(**fields)


def test_properties():
    ds = make()
    assert ds.num_classes == 3 and ds.input_shape == (3, 5, 6)
    assert all(type(v) is int for v in ds.input_shape)


def test_repr_is_one_line():
    assert repr(make(n_train=12000)) == "Dataset('toy': 12,000 train / 4 test images of 3x5x6, 3 classes)"


def test_limit_keeps_the_test_split():
    ds = make()
    small = ds.limit(4)
    assert len(small.train_images) == 4 and len(small.train_labels) == 4
    np.testing.assert_array_equal(small.train_images, ds.train_images[:4])
    np.testing.assert_array_equal(small.train_labels, ds.train_labels[:4])
    assert small.test_images is ds.test_images and small.class_names == ds.class_names
    assert len(ds.train_images) == 10                                  # the original is untouched
    assert len(ds.limit(100).train_images) == 10


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_limit_rejects(n):
    with pytest.raises(ValueError, match=repr(n).replace(".", r"\.")):
        make().limit(n)


@pytest.mark.parametrize("override, fact", [
    (dict(train_images=np.zeros((10, 3, 5, 6), np.float32)), "train_images must be a uint8"),
    (dict(test_images=np.zeros((4, 5, 6), np.uint8)), "test_images must be a uint8 array"),
    (dict(train_labels=np.zeros(10, np.int32)), "train_labels must be an int64"),
    (dict(test_labels=np.zeros(5, np.int64)), "4 images but 5 labels"),
    (dict(test_labels=np.array([0, 1, 3, 0])), "label 3 is outside 0..2"),
    (dict(train_labels=np.full(10, -1)), "label -1 is outside"),
    (dict(test_images=np.zeros((4, 3, 5, 5), np.uint8)), "3x5x6 but test images are 3x5x5"),
    (dict(class_names=[]), "no class names"),
    (dict(class_names=["a"], train_labels=np.zeros(10, np.int64), test_labels=np.zeros(4, np.int64)),
     "has one class \\('a'\\); a classifier needs at least two classes"),
    (dict(train_images=np.zeros((0, 3, 5, 6), np.uint8), train_labels=np.zeros(0, np.int64)), "no images"),
])
def test_validation(override, fact):
    with pytest.raises(DataFormatError, match=fact):
        make(**override)
