"""channel_stats against a float64 reference; Normalizer's transform, dict round trip and checks."""

import json

import numpy as np
import pytest

from convscope.data import Normalizer, channel_stats


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (7, 1, 5, 4), (5000, 3, 3, 2), (9, 4, 8, 8)])
def test_channel_stats_matches_float64_reference(shape):
    images = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    mean, std = channel_stats(images)
    ref = images.astype(np.float64) / 255.0
    assert mean.dtype == np.float32 and std.dtype == np.float32 and mean.shape == (shape[1],)
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 2, 3)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(std, ref.std(axis=(0, 2, 3)), rtol=1e-6, atol=1e-7)


def test_channel_stats_constant_channel():
    images = np.full((4, 2, 3, 3), 51, np.uint8)
    images[:, 1] = [0, 255, 0]
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, [0.2, 1 / 3], rtol=1e-6)
    assert std[0] == 0.0


@pytest.mark.parametrize("bad", [np.zeros((2, 3, 4), np.uint8), np.zeros((2, 1, 3, 3), np.float32),
                                 np.zeros((0, 1, 2, 2), np.uint8)])
def test_channel_stats_rejects(bad):
    with pytest.raises(ValueError, match="channel_stats"):
        channel_stats(bad)


def test_normalizer_formula():
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 5, 5), dtype=np.uint8)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 0.3]
    out = Normalizer(mean, std)(images)
    ref = (images / 255.0 - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_normalizer_standardises_its_own_statistics():
    images = np.random.default_rng(1).integers(0, 256, (50, 2, 6, 6), dtype=np.uint8)
    out = Normalizer(*channel_stats(images))(images).astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1.0, atol=1e-5)


def test_dict_round_trip_through_json():
    norm = Normalizer([0.1307], [0.3081])
    d = json.loads(json.dumps(norm.to_dict()))
    assert set(d) == {"mean", "std"} and all(isinstance(v, float) for v in d["mean"] + d["std"])
    back = Normalizer.from_dict(d)
    np.testing.assert_array_equal(back.mean, norm.mean)
    np.testing.assert_array_equal(back.std, norm.std)


@pytest.mark.parametrize("mean, std, fact", [
    ([0.5], [0.0], r"std\[0\] = 0.0"),
    ([0.5, 0.5], [0.2, -1.0], r"std\[1\] = -1.0"),
    ([0.5], [0.2, 0.2], "got 1 and 2"),
    ([float("nan")], [0.2], "mean must be finite"),
])
def test_normalizer_rejects(mean, std, fact):
    with pytest.raises(ValueError, match=fact):
        Normalizer(mean, std)


def test_normalizer_checks_channels_and_dict():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\).*\(2, 3, 4, 4\)"):
        Normalizer([0.5], [0.2])(np.zeros((2, 3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="'mean' and 'std'"):
        Normalizer.from_dict({"mean": [0.5]})
