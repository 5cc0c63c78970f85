"""Photo-sized models: default layers and settings by input size, capped batches, photos without a dataset."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from convscope import Classifier
from convscope.data import Dataset
from convscope.layers import shapes_only
from convscope.models import build_model
from convscope.visualize import actmax, core, inversion
from convscope.visualize.occlusion import default_window
from convscope.visualize.context import Context, DataSource
from convscope.visualize.regularizers import Zoom

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="figures need matplotlib")


@pytest.mark.parametrize("name, block", [("resnet50", "layer4.2"), ("resnet18", "layer4.1"), ("googlenet", "inception5b"),
                                         ("vgg16", "features.conv5_3"), ("alexnet", "features.conv5"),
                                         ("lenet5", "conv2"), ("resnet20", "layer3.2")])
def test_grad_cam_defaults_to_the_last_stage(name, block):
    size = (28, 28) if name in ("lenet5", "resnet20") else (224, 224)
    with shapes_only():
        model = build_model(name, num_classes=10, in_channels=3, input_size=size)
    assert core.last_block(model) == block


@pytest.mark.parametrize("shape, gradient, forward", [((1, 28, 28), 64, 64), ((3, 32, 32), 64, 64),
                                                     ((3, 224, 224), 2, 4), ((3, 112, 112), 8, 16),
                                                     ((3, 1024, 1024), 1, 1)])
def test_batches_are_capped_by_input_size(shape, gradient, forward):
    assert core.batch_limit(shape, 64) == gradient
    assert core.batch_limit(shape, 64, forward_only=True) == forward


def test_occlusion_window_scales_with_the_input():
    assert default_window((28, 28)) == ((4, 4), (2, 2))
    assert default_window((224, 224)) == ((16, 16), (8, 8))


def test_settings_for_photos_differ_from_those_for_thumbnails():
    small, large = actmax.defaults_for((1, 28, 28)), actmax.defaults_for((3, 224, 224))
    assert (small["steps"], small["jitter"], small["scale"]) == (256, 1, 1.0)
    assert (large["steps"], large["jitter"], large["scale"]) == (64, 8, 1.1)
    assert inversion.defaults_for((1, 28, 28))["jitter"] == 0
    assert inversion.defaults_for((3, 224, 224))["steps"] == 64


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.13])
def test_zoom_and_its_adjoint(factor):
    rng = np.random.default_rng(0)
    zoom = Zoom((11, 7), factor)
    x, g = rng.standard_normal((2, 3, 11, 7)), rng.standard_normal((2, 3, 11, 7))
    assert np.sum(zoom(x) * g) == pytest.approx(np.sum(x * zoom.adjoint(g)), rel=1e-5)
    if factor == 1.0:
        np.testing.assert_allclose(zoom(x), x, atol=1e-6)


def test_actmax_with_zoom_and_jitter_on_a_96_px_model():
    clf = Classifier.untrained("lenet5", 3, (3, 96, 96), rng=np.random.default_rng(0))
    result = actmax.activation_maximization(clf, None, 1, steps=6)
    assert result.settings["scale"] == 1.1 and result.settings["jitter"] == 3 and result.image.shape == (3, 96, 96)
    again = actmax.activation_maximization(clf, None, 1, steps=6)
    np.testing.assert_array_equal(result.image, again.image)


def _photos(tmp_path, count=2):
    from PIL import Image
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = tmp_path / f"photo{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (120 + 10 * i, 150, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def photo_clf():
    """A 96 px RGB classifier with torchvision's resize-and-crop preset (a "large" model, but cheap)."""
    clf = Classifier.untrained("lenet5", 5, (3, 96, 96), rng=np.random.default_rng(0))
    return Classifier(clf.model, clf.normalizer, clf.class_names, clf.input_shape, {"preprocess": {"resize": 110}})


@needs_matplotlib
@pytest.mark.parametrize("technique", ["filters", "activations", "deconv", "actmax", "saliency", "inversion"])
def test_per_image_techniques_run_on_photos_without_loading_a_dataset(technique, photo_clf, tmp_path):
    import matplotlib.pyplot as plt

    from convscope.visualize.techniques import run_technique
    calls = []
    source = DataSource(None if technique == "activations" else (lambda: calls.append(1)))
    ctx = Context(photo_clf, source, _photos(tmp_path), steps=2, progress=False)
    out = run_technique(technique, ctx)
    plt.close("all")
    assert out.figures and calls == []                       # the dataset was never loaded
    if technique == "activations":                           # sparsity over the photos themselves
        assert "the 2 image(s) shown" in out.figures["sparsity"].axes[0].get_title()
    if technique == "saliency":
        assert out.numbers["true_classes"] is None
        assert sorted(out.figures) == ["saliency_0_photo0", "saliency_1_photo1"]
        assert out.numbers["integrated_gradients_steps"] == 16
        assert out.numbers["occlusion"] == {"window": 13, "stride": 6}


@pytest.mark.parametrize("technique", ["neighbors", "dissect"])
def test_dataset_techniques_without_a_dataset_say_so(technique, photo_clf, tmp_path):
    from convscope.visualize.techniques import run_technique
    ctx = Context(photo_clf, DataSource(None, "no dataset was given (--data)"), _photos(tmp_path), progress=False)
    with pytest.raises(ValueError, match=f"^{technique} .*needs a dataset, but no dataset was given"):
        run_technique(technique, ctx)


@needs_matplotlib
def test_dataset_techniques_take_images_of_the_preset_size(photo_clf, tmp_path):
    """A folder read at the preset's resize (110 px) is cropped to 96 px by the classifier."""
    import matplotlib.pyplot as plt

    from convscope.visualize.techniques import run_technique
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (12, 3, 110, 110), dtype=np.uint8)
    labels = np.arange(12) % 3
    data = Dataset("folder", images, labels, images, labels, ["a", "b", "c"])
    ctx = Context(photo_clf, DataSource(lambda: data), [0, 1], sample=12, progress=False)
    out = run_technique("dissect", ctx)
    assert out.numbers["images"] == 12 and out.figures
    out = run_technique("neighbors", ctx)
    assert out.numbers["train_images_searched"] == 12 and out.numbers["feature_agreement"] is None
    plt.close("all")


def test_images_are_indices_or_files_not_both(photo_clf, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        Context(photo_clf, None, [0, _photos(tmp_path, 1)[0]])
