"""The Classifier: images as users hold them -> model space, predictions, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import Classifier
from convscope.data import Normalizer
from convscope.models import build_model


@pytest.fixture(scope="module")
def gray():
    model = build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(0))
    return Classifier(model, Normalizer([0.13], [0.31]), [f"digit {k}" for k in range(10)], (1, 28, 28))


@pytest.fixture(scope="module")
def rgb():
    model = build_model("resnet20", 3, 3, (8, 12), rng=np.random.default_rng(1))
    return Classifier(model, Normalizer([0.4, 0.5, 0.6], [0.2, 0.25, 0.3]), ["a", "b", "c"], (3, 8, 12))


def test_every_layout_of_uint8_images_gives_the_same_model_input(gray, rgb):
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    want = gray.normalizer(g[:, None])
    for images in (g, g[:, None], g[..., None], list(g)):
        np.testing.assert_array_equal(gray.preprocess(images), want)
    np.testing.assert_array_equal(gray.preprocess(g[0]), want[:1])                 # one (H, W) image
    c = rng.integers(0, 256, (2, 3, 8, 12), dtype=np.uint8)
    want = rgb.normalizer(c)
    np.testing.assert_array_equal(rgb.preprocess(c.transpose(0, 2, 3, 1)), want)   # NHWC
    np.testing.assert_array_equal(rgb.preprocess(c[1]), want[1:])                  # one CHW image
    np.testing.assert_array_equal(rgb.preprocess(c[1].transpose(1, 2, 0)), want[1:])


def test_float_pixels_in_unit_range_equal_their_uint8_form(gray):
    g = np.random.default_rng(1).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(gray.preprocess(g / 255.0), gray.preprocess(g), atol=1e-5)


@pytest.mark.parametrize("scale", [255.0, -1.0])
def test_float_arrays_outside_unit_range_are_refused_not_guessed(gray, scale):
    x = np.random.default_rng(2).random((2, 28, 28)) * scale        # 0..255 floats, or normalised-looking
    with pytest.raises(ValueError, match=r"\[0, 1\].*model_space=True"):
        gray.preprocess(x)


def test_model_space_only_when_stated(gray):
    x = gray.preprocess(np.zeros((2, 28, 28), np.uint8))
    np.testing.assert_array_equal(gray.preprocess(x, model_space=True), x)
    with pytest.raises(TypeError, match="float array"):
        gray.preprocess(np.zeros((2, 1, 28, 28), np.uint8), model_space=True)   # uint8 is never model space
    with pytest.raises(ValueError, match="shape"):
        gray.preprocess(x[:, :, :10], model_space=True)


@pytest.mark.parametrize("bad, error, match", [
    (np.zeros((2, 27, 28), np.uint8), ValueError, r"\(2, 27, 28\).*1x28x28"),
    (np.zeros((2, 3, 28, 28), np.uint8), ValueError, "do not fit"),
    (np.full((1, 28, 28), 300, np.int64), TypeError, "outside 0..255"),
    (np.zeros((1, 28, 28), bool), TypeError, "dtype bool"),
    ("no-such-file.png", Exception, "no-such-file.png"),
    ([], ValueError, "empty"),
    (3.5, TypeError, "float"),
])
def test_bad_images_name_what_was_received(gray, bad, error, match):
    with pytest.raises(error, match=match):
        gray.preprocess(bad)


def test_image_files_are_read_converted_and_resized(gray, rgb, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    digit = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(digit).save(tmp_path / "digit.png")
    np.testing.assert_array_equal(gray.pixels([tmp_path / "digit.png"])[0, 0], digit)
    np.testing.assert_array_equal(gray.preprocess([str(tmp_path / "digit.png")]), gray.preprocess(digit))
    photo = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert rgb.pixels([tmp_path / "photo.png"]).shape == (1, 3, 8, 12)      # resized to the input size
    assert gray.pixels(tmp_path / "photo.png").shape == (1, 1, 28, 28)     # colour -> luminance


def test_predict_gives_probabilities_and_top_names_classes(gray):
    images = np.random.default_rng(4).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    p = gray.predict(images)
    assert p.shape == (5, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    z = gray.logits(images).astype(np.float64)
    np.testing.assert_allclose(p, np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1,
                               keepdims=True), rtol=1e-5)
    top = gray.top(images, k=3)
    assert len(top) == 5 and [t["index"] for t in top[0]] == list(np.argsort(-p[0])[:3])
    assert top[0][0]["class"] == f"digit {top[0][0]['index']}"


def test_save_and_load_round_trip_through_a_file_and_a_run_directory(gray, tmp_path):
    path = gray.save(tmp_path / "run" / "model.npz")
    images = np.random.default_rng(5).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    for where in (path, tmp_path / "run", str(path)):
        loaded = convscope.load(where)
        assert loaded.class_names == gray.class_names and loaded.input_shape == (1, 28, 28)
        assert not loaded.model.training
        np.testing.assert_array_equal(loaded.predict(images), gray.predict(images))
    with pytest.raises(ValueError, match="without a model.npz"):
        convscope.load(tmp_path)


def test_constructor_checks_that_the_parts_fit(gray):
    with pytest.raises(ValueError, match="class names"):
        Classifier(gray.model, gray.normalizer, ["a", "b"], (1, 28, 28))
    with pytest.raises(ValueError, match="channel"):
        Classifier(gray.model, Normalizer([0.5] * 3, [0.5] * 3), gray.class_names, (1, 28, 28))
    with pytest.raises(TypeError, match="Module"):
        Classifier("lenet5", gray.normalizer, gray.class_names, (1, 28, 28))
    assert "lenet5" in repr(gray) and "10 classes" in repr(gray)
