"""Image folders: the train/test layout, the holdout layout, grayscale vs RGB, and their errors."""

import sys

import numpy as np
import pytest

from convscope.data import DataFormatError, load_dataset
from convscope.data.folder import HOLDOUT_EVERY

pytest.importorskip("PIL")


def make_folder(root, write_image, counts, size=(5, 4), rgb=False, seed=0, suffix=".png"):
    """Class folders under ``root`` with counts[c] random images each; returns {class: [pixels...]}."""
    rng = np.random.default_rng(seed)
    h, w = size
    pixels = {}
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        pixels[cls] = []
        for k in range(n):
            img = rng.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)
            write_image(root / cls / f"img{k:03d}{suffix}", img)
            pixels[cls].append(img)
    return pixels


def test_train_test_layout(tmp_path, write_image):
    train = make_folder(tmp_path / "pets" / "train", write_image, {"dog": 3, "cat": 2})
    test = make_folder(tmp_path / "pets" / "test", write_image, {"dog": 1, "cat": 2}, seed=1)
    ds = load_dataset(tmp_path / "pets")
    assert ds.name == "pets" and ds.class_names == ["cat", "dog"]
    assert ds.train_images.shape == (5, 1, 5, 4) and ds.test_images.shape == (3, 1, 5, 4)
    assert ds.train_labels.tolist() == [0, 0, 1, 1, 1]
    assert ds.test_labels.tolist() == [0, 1, 0]                # round robin: cat0, dog0, cat1
    np.testing.assert_array_equal(ds.train_images[0, 0], train["cat"][0])
    np.testing.assert_array_equal(ds.test_images[1, 0], test["dog"][0])
    np.testing.assert_array_equal(ds.test_images[2, 0], test["cat"][1])


def test_holdout_layout_is_deterministic(tmp_path, write_image):
    pixels = make_folder(tmp_path / "shapes", write_image, {"a": 13, "b": 6}, rgb=True)
    ds = load_dataset(tmp_path / "shapes")
    assert ds.input_shape == (3, 5, 4) and ds.class_names == ["a", "b"]
    # every 6th file sorted by name: a -> img005, img011; b -> img005; interleaved a, b, a
    assert len(ds.test_images) == 3 and len(ds.train_images) == 16
    assert ds.test_labels.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(ds.test_images[0], pixels["a"][HOLDOUT_EVERY - 1].transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.test_images[1], pixels["b"][HOLDOUT_EVERY - 1].transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.test_images[2], pixels["a"][2 * HOLDOUT_EVERY - 1].transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.train_images[5], pixels["a"][6].transpose(2, 0, 1))
    again = load_dataset(tmp_path / "shapes")
    np.testing.assert_array_equal(again.test_images, ds.test_images)


def test_mixed_modes_become_rgb(tmp_path, write_image):
    make_folder(tmp_path / "mix", write_image, {"a": 6})
    make_folder(tmp_path / "mix", write_image, {"b": 6}, rgb=True, suffix=".jpg")
    ds = load_dataset(tmp_path / "mix")
    assert ds.input_shape == (3, 5, 4)
    gray = ds.train_images[ds.train_labels == 0]
    np.testing.assert_array_equal(gray[:, 0], gray[:, 2])       # a gray image has equal R, G, B


def test_odd_size_names_the_file(tmp_path, write_image):
    make_folder(tmp_path / "d", write_image, {"a": 6, "b": 6})
    write_image(tmp_path / "d" / "b" / "odd.png", np.zeros((7, 4), np.uint8))
    with pytest.raises(DataFormatError, match="odd.png is 4x7 but .* is 4x5; all images must share one size"):
        load_dataset(tmp_path / "d")


def test_unreadable_image_names_the_file(tmp_path, write_image):
    make_folder(tmp_path / "d", write_image, {"a": 6, "b": 6})
    (tmp_path / "d" / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match="broken.png': not a readable PNG/JPEG image"):
        load_dataset(tmp_path / "d")


def test_no_test_images(tmp_path, write_image):
    make_folder(tmp_path / "d", write_image, {"a": 2, "b": 3})
    with pytest.raises(DataFormatError, match="no test images"):
        load_dataset(tmp_path / "d")


def test_train_without_test(tmp_path, write_image):
    make_folder(tmp_path / "d" / "train", write_image, {"a": 2})
    with pytest.raises(DataFormatError, match="has train/ but no test/"):
        load_dataset(tmp_path / "d")


def test_test_class_unknown_to_train(tmp_path, write_image):
    make_folder(tmp_path / "d" / "train", write_image, {"a": 2, "b": 1})
    make_folder(tmp_path / "d" / "test", write_image, {"a": 1, "zebra": 1})
    with pytest.raises(DataFormatError, match="zebra has no counterpart"):
        load_dataset(tmp_path / "d")


def test_empty_class_folder(tmp_path, write_image):
    make_folder(tmp_path / "d", write_image, {"a": 6})
    (tmp_path / "d" / "b").mkdir()
    with pytest.raises(DataFormatError, match="class folder .*b has no PNG/JPEG images"):
        load_dataset(tmp_path / "d")


def test_without_pillow(tmp_path, write_image, monkeypatch):
    make_folder(tmp_path / "d", write_image, {"a": 6})
    monkeypatch.setitem(sys.modules, "PIL", None)             # makes "from PIL import Image" fail
    with pytest.raises(DataFormatError, match=r'pip install "convscope\[pictures\]"'):
        load_dataset(tmp_path / "d")
