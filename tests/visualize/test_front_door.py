"""The front door: every technique takes a Classifier with the images users hold, or a Module
with model-space floats, and gives the same result for the same images; figures say what they
show; ``convscope.visualize`` imports without matplotlib."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import convscope
from convscope import Classifier
from convscope.data import Dataset
from convscope.visualize import core

N = 4


@pytest.fixture(scope="module")
def digits(trained) -> np.ndarray:
    """Four MNIST test digits as users hold them: uint8 (N, H, W)."""
    return trained.data.test_images[:N, 0].copy()


@pytest.fixture(scope="module")
def png_paths(digits, tmp_path_factory) -> list[str]:
    from PIL import Image
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for i, digit in enumerate(digits):
        path = folder / f"digit{i}.png"
        Image.fromarray(digit).save(path)
        paths.append(str(path))
    return paths


def _train(trained):
    return trained.data.train_images[:60], trained.data.train_labels[:60]


# (name, call(model, images, trained)): each is run with (clf, uint8), (clf, PNG paths) and
# (clf.model, clf.preprocess(uint8)); techniques that make images get the normaliser from
# the classifier, so the Module form passes it explicitly.
TECHNIQUES = {
    "filter_grid": lambda m, x, t: convscope.visualize.filter_grid(m),
    "feature_maps": lambda m, x, t: convscope.visualize.feature_maps(m, x),
    "sparsity": lambda m, x, t: convscope.visualize.sparsity(m, x),
    "nearest_neighbors": lambda m, x, t: convscope.visualize.nearest_neighbors(
        m, _space(m, t, _train(t)[0]), _train(t)[1], x, t.y_test[:N], k=3),
    "translation_example": lambda m, x, t: convscope.visualize.translation_example(m, x, 2),
    "deconv": lambda m, x, t: convscope.visualize.deconv(m, x),
    "activation_maximization": lambda m, x, t: convscope.visualize.activation_maximization(
        m, unit=3, steps=5, **({} if isinstance(m, Classifier) else
                               {"input_shape": (1, 28, 28), "normalizer": t.normalizer})),
    "input_gradients": lambda m, x, t: convscope.visualize.input_gradients(m, x),
    "gradient_saliency": lambda m, x, t: convscope.visualize.gradient_saliency(m, x),
    "guided_backprop": lambda m, x, t: convscope.visualize.guided_backprop(m, x, 2),
    "smoothgrad": lambda m, x, t: convscope.visualize.smoothgrad(m, x, samples=3, rng=np.random.default_rng(0)),
    "integrated_gradients": lambda m, x, t: convscope.visualize.integrated_gradients(m, x, steps=4),
    "grad_cam": lambda m, x, t: convscope.visualize.grad_cam(m, x),
    "occlusion": lambda m, x, t: convscope.visualize.occlusion(m, x, window=7, stride=7),
    "invert": lambda m, x, t: convscope.visualize.invert(
        m, x, steps=3, **({} if isinstance(m, Classifier) else {"normalizer": t.normalizer})),
    "dissect": lambda m, x, t: convscope.visualize.dissect(m, x, labels=t.y_test[:N], top=2),
}
TAKES_IMAGES = [name for name in TECHNIQUES if name not in ("filter_grid", "activation_maximization")]


def _space(model, trained, raw):
    """Training images in the form ``model`` takes: raw for a Classifier, model space for a Module."""
    return raw if isinstance(model, Classifier) else trained.clf.preprocess(raw)


def _arrays(result) -> dict:
    """Every array and number of a result, by field name (lists of rows flattened)."""
    if isinstance(result, list):
        return {f"{i}.{k}": v for i, row in enumerate(result) for k, v in _arrays(row).items()}
    if dataclasses.is_dataclass(result):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                if f.name != "settings"}
    return {"": result}


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_classifier_and_raw_images_or_module_and_model_space_give_the_same_result(
        name, trained, clf, digits, png_paths):
    call = TECHNIQUES[name]
    x = clf.preprocess(digits)
    assert x.dtype == np.float32 and x.shape == (N, 1, 28, 28)
    expected = _arrays(call(clf.model, x, trained))
    for images in (digits, png_paths):
        got = _arrays(call(clf, images, trained))
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(got[key], value, err_msg=f"{name}: {key}")
            else:
                assert got[key] == value or (value != value and got[key] != got[key]), (name, key)


@pytest.mark.parametrize("name", TAKES_IMAGES)
def test_a_bare_module_refuses_uint8_images_and_points_at_the_classifier(name, trained, clf, digits):
    with pytest.raises(TypeError, match="uint8.*Classifier"):
        TECHNIQUES[name](clf.model, digits[:, None], trained)


def test_grad_cam_front_door_defaults_to_the_last_conv(clf, digits):
    result = convscope.visualize.grad_cam(clf, digits)
    assert result.upsampled.shape == (N, 28, 28)
    assert core.last_conv(clf.model) == "conv2"
    np.testing.assert_array_equal(result.cam, convscope.visualize.grad_cam(clf, digits, "conv2").cam)
    assert result.cam.shape == (N, 10, 10)                 # conv2's resolution


def test_default_layers(clf):
    model = clf.model
    assert (core.first_conv(model), core.last_conv(model), core.feature_layer(model)) == ("conv1", "conv2", "flatten")
    assert convscope.visualize.filter_grid(clf).layer == "conv1"
    assert convscope.visualize.activation_maximization(clf, unit=1, steps=1).settings["layer"] == ""


def test_resolve_refuses_what_it_cannot_read(clf, digits, png_paths):
    with pytest.raises(TypeError, match="Classifier .* or a Module .* got list"):
        core.resolve([], digits)
    with pytest.raises(TypeError, match="dtype int64"):
        core.resolve(clf.model, digits.astype(np.int64)[:, None])
    with pytest.raises(TypeError, match="image files.*Classifier"):
        core.resolve(clf.model, png_paths)
    with pytest.raises(ValueError, match=r"\[0, 1\].*clf\.model"):     # model-space floats with a Classifier
        core.resolve(clf, clf.preprocess(digits))
    model, x, got = core.resolve(clf, digits.astype(np.float32) / 255)   # float pixels in [0, 1]
    assert model is clf.model and got is clf
    np.testing.assert_allclose(x, clf.preprocess(digits), atol=1e-6)


def test_importable_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import convscope.visualize as v\n"
            "assert 'matplotlib' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "print(len(v.__all__))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# -- figures say what they show ----------------------------------------------------------------

needs_matplotlib = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                      reason="figures need matplotlib")


def _texts(fig) -> list[str]:
    """Every piece of text on a figure: suptitles, axes titles and tick labels."""
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out.append(ax.get_title())
        out += [t.get_text() for t in ax.get_yticklabels()]
    return [t for t in out if t]


@pytest.fixture(scope="module")
def ctx(trained):
    from convscope.visualize.context import Context
    return Context(trained.clf, trained.data, [0, 1], sample=40, steps=3, progress=False)


@pytest.fixture
def close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


@needs_matplotlib
@pytest.mark.usefixtures("close_figures")
def test_saliency_names_the_classes_and_draws_the_input_in_gray(ctx, trained):
    from convscope.visualize.techniques import run_saliency
    out = run_saliency(ctx)
    fig = out.figures["saliency_0"]
    title = " ".join(t.get_text() for t in fig.texts)
    true = trained.data.class_names[int(trained.data.test_labels[0])]
    explained = trained.data.class_names[int(out.numbers["explained_classes"][0])]
    assert f"true class {true}" in title and f"explaining class {explained}" in title
    first = fig.axes[0].images[0]
    assert first.get_cmap().name == "gray" and first.get_clim() == (0, 1)
    np.testing.assert_allclose(first.get_array(), trained.data.test_images[0, 0] / 255.0, atol=1e-6)
    assert fig.axes[1].images[0].get_cmap().name == "inferno"


@needs_matplotlib
@pytest.mark.usefixtures("close_figures")
def test_saliency_draws_an_rgb_input_in_rgb():
    from convscope.visualize.context import Context
    from convscope.visualize.techniques import run_saliency
    rng = np.random.default_rng(0)
    clf = Classifier.untrained("lenet5", 3, (3, 32, 32), rng=rng)
    images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    data = Dataset("rgb", images, np.arange(4) % 3, images, np.arange(4) % 3, ["a", "b", "c"])
    fig = run_saliency(Context(clf, data, [1], progress=False)).figures["saliency_1"]
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (32, 32, 3)
    np.testing.assert_allclose(shown, images[1].transpose(1, 2, 0) / 255.0, atol=1e-6)


@needs_matplotlib
@pytest.mark.usefixtures("close_figures")
def test_actmax_and_inversion_say_what_their_numbers_are(ctx):
    from convscope.visualize.techniques import run_actmax, run_inversion
    titles = _texts(run_actmax(ctx).figures["actmax"])
    assert sum("activation" in t for t in titles) >= 10         # one per class, plus the suptitle
    titles = _texts(run_inversion(ctx).figures["inversion"])
    assert sum("rel. error" in t for t in titles) >= 2


@needs_matplotlib
@pytest.mark.usefixtures("close_figures")
def test_dissect_shows_every_unit_in_pages(trained):
    from convscope.visualize.context import Context
    from convscope.visualize.techniques import PAGE, run_dissect
    out = run_dissect(Context(trained.clf, trained.data, [0], layer="fc2", sample=40, progress=False))
    pages = [stem for stem in out.figures if stem.startswith("dissect_top_images")]
    assert len(pages) == -(-84 // PAGE)                          # fc2 has 84 units
    labels = [t for stem in pages for t in _texts(out.figures[stem]) if t.startswith("unit ")]
    assert [int(t.split(":")[0].split()[1]) for t in labels] == list(range(84))
    assert all("prefers" in t for t in labels)


@needs_matplotlib
@pytest.mark.usefixtures("close_figures")
def test_neighbours_show_the_agreement_and_the_shifted_image(ctx):
    from convscope.visualize.techniques import run_neighbors
    out = run_neighbors(ctx, train_sample=300)
    title = " ".join(_texts(out.figures["neighbors"]))
    assert f"feature space {out.numbers['feature_agreement']:.2f}" in title
    assert f"pixel space {out.numbers['pixel_agreement']:.2f}" in title
    shifted = _texts(out.figures["translation"])
    assert sum(t.startswith("shifted 3 px") for t in shifted) == 2
    assert any(f"{out.numbers['translation']['feature_relative_median']:.2f}" in t for t in shifted)


def test_display_survives_dead_and_nan_images():
    from convscope.visualize.display import normalize_map, to_display, to_pixels
    maps = np.zeros((2, 1, 3, 3))
    maps[1, 0, 0, 0] = np.nan
    for shown in (to_display(maps), normalize_map(maps), to_pixels(maps)):
        assert np.all(np.isfinite(shown))


def test_probes_use_forward_hooks_and_leave_no_trace(clf, digits):
    """A probe observes through a forward hook and sees the gradient at the layer's output;
    afterwards the layer has no hook and no instance attribute left, nested probes included."""
    from convscope.visualize.probe import evaluation_mode, probe
    model, x = clf.model, clf.preprocess(digits)
    conv2 = model.get_module("conv2")
    with evaluation_mode(model), probe(model, "conv2") as outer, probe(model, "conv2") as inner:
        logits = model.forward(x)
        model.backward(np.ones_like(logits))
        assert conv2._forward_hooks and "forward" not in vars(conv2)
    for p in (outer, inner):
        assert p.output.shape == p.grad.shape == (N, 16, 10, 10)
    np.testing.assert_array_equal(outer.grad, inner.grad)
    assert not conv2._forward_hooks and "backward" not in vars(conv2)
