"""The sanity checks for saliency maps, on the LeNet-5 trained in the session.

A map that passes them depends on what the model learned (Adebayo et al. 2018, "Sanity
checks for saliency maps"), points at pixels the model really uses (deletion, Samek et al.
2017), adds up (integrated gradients' completeness) and reduces to the plain gradient where
the modified ReLU rules have nothing to modify.
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope.layers import Conv2d, Flatten, Linear, MaxPool2d, Sequential, Tanh, softmax
from convscope.models import build_model
from convscope.visualize.attribution import grad_cam, integrated_gradients
from convscope.visualize.saliency import gradient_saliency, input_gradients

N_IMAGES = 12


def ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of v (n,), ties sharing their mean rank (Spearman's convention)."""
    order = np.argsort(v, kind="stable")
    _, first, counts = np.unique(v[order], return_index=True, return_counts=True)
    out = np.empty(len(v))
    out[order] = np.repeat(first + (counts - 1) / 2, counts)
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps: Pearson's correlation of their ranks."""
    return float(np.corrcoef(ranks(a.ravel()), ranks(b.ravel()))[0, 1])


def test_ranks_share_ties_and_spearman_is_one_for_a_monotone_map():
    assert ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    m = np.random.default_rng(0).random((5, 5))
    assert spearman(m, np.exp(3 * m)) == pytest.approx(1.0)
    assert spearman(m, -m) == pytest.approx(-1.0)


def test_model_parameter_randomisation_changes_gradient_maps(trained):
    """Adebayo et al.: maps of the trained model and of the same architecture with fresh
    weights must differ; a map that survives randomisation explains the input, not the model."""
    x = trained.x_test[:N_IMAGES]
    fresh = build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(123))
    targets = trained.model.forward(x).argmax(axis=1)
    learned = gradient_saliency(trained.model, x, targets)
    random = gradient_saliency(fresh, x, targets)
    rho = [spearman(a, b) for a, b in zip(learned, random)]
    assert np.mean(rho) < 0.5, rho                     # measured: 0.21
    # the control: the statistic does not read every pair of maps as unrelated
    again = gradient_saliency(trained.model, x, targets, batch_size=5)
    assert all(spearman(a, b) > 0.99 for a, b in zip(learned, again))


def _deletion_drops(model, x, maps, background, rng, fraction=0.1, repeats=5):
    """(drop when the top ``fraction`` of each map's pixels are set to ``background``, mean drop
    for random pixel sets of the same size), as mean predicted-class probabilities lost."""
    n, h, w = maps.shape
    k = int(fraction * h * w)
    logits = model.forward(x)
    targets, rows = logits.argmax(axis=1), np.arange(n)
    clean = softmax(logits)[rows, targets]

    def drop(pixels):                                  # pixels (n, k) flat indices
        deleted = x.reshape(n, -1).copy()
        np.put_along_axis(deleted, pixels, background, axis=1)
        return float(np.mean(clean - softmax(model.forward(deleted.reshape(x.shape)))[rows, targets]))

    salient = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")[:, :k]
    random = [drop(np.stack([rng.choice(h * w, k, replace=False) for _ in range(n)]))
              for _ in range(repeats)]
    return drop(salient), float(np.mean(random))


def _black(trained) -> float:
    """The background value: a black pixel after normalisation, (0 - mean) / std."""
    return float(-trained.normalizer.mean[0] / trained.normalizer.std[0])


def test_deleting_the_most_salient_pixels_hurts_more_than_random_ones(trained):
    x = trained.x_test[:N_IMAGES]
    maps = gradient_saliency(trained.model, x)
    salient, random = _deletion_drops(trained.model, x, maps, _black(trained), np.random.default_rng(0))
    assert salient > random, (salient, random)         # measured: 0.069 vs 0.024


def _squares(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Black 28x28 images with one bright 6x6 square: class 0 on the left half, class 1 on the right.
    Returns images (n, 1, 28, 28) in [-1, 1], labels (n,) and the squares' masks (n, 28, 28)."""
    labels = rng.integers(0, 2, n)
    x = np.full((n, 1, 28, 28), -1.0, np.float32)
    masks = np.zeros((n, 28, 28), bool)
    for i, label in enumerate(labels):
        top, left = rng.integers(2, 20), rng.integers(2, 8) + 12 * label
        masks[i, top:top + 6, left:left + 6] = True
    x[:, 0][masks] = 1.0
    return x, labels, masks


def test_grad_cam_points_at_the_evidence():
    """Where the evidence is known (a square whose side of the image is the class), Grad-CAM's
    peak at the last convolution lies on or next to the square. (On the MNIST LeNet-5 the
    deletion check is not a fair test of Grad-CAM: its 10x10 map often ranks background pixels
    first, which are black already, so deleting them changes nothing.)"""
    from convscope.optim import SGD
    from convscope.layers import SoftmaxCrossEntropy
    rng = np.random.default_rng(0)
    model = build_model("lenet5", 2, 1, (28, 28), rng=rng)
    loss, opt = SoftmaxCrossEntropy(), SGD(model, lr=0.05, momentum=0.9)
    for _ in range(60):
        x, y, _ = _squares(rng, 32)
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
    x, y, masks = _squares(np.random.default_rng(1), 64)
    model.eval()
    assert np.mean(model.forward(x).argmax(axis=1) == y) > 0.95
    cam = grad_cam(model, x, "conv2").upsampled                        # (64, 28, 28)
    peaks = np.argmax(cam.reshape(len(x), -1), axis=1)
    rows, cols = np.divmod(peaks, 28)
    near = [np.any(m[max(r - 3, 0):r + 4, max(c - 3, 0):c + 4]) for m, r, c in zip(masks, rows, cols)]
    assert np.mean(near) > 0.6, np.mean(near)             # measured 0.75; chance (a 12x12 window) 0.18


def test_integrated_gradients_are_complete(trained):
    """Sundararajan et al.'s completeness: sum(attr) = f(x) - f(baseline), within 1%."""
    x = trained.x_test[:8]
    result = integrated_gradients(trained.model, x)
    logits = trained.model.forward(x)
    rows = np.arange(len(x))
    np.testing.assert_allclose(result.scores, logits[rows, result.targets], rtol=1e-5)
    np.testing.assert_allclose(result.baseline_scores,
                               trained.model.forward(np.zeros_like(x))[rows, result.targets], rtol=1e-5)
    total = result.attributions.reshape(len(x), -1).sum(axis=1)
    change = result.scores - result.baseline_scores
    assert np.all(np.abs(total - change) <= 0.01 * np.abs(change)), result.completeness_gap
    assert np.all(result.completeness_gap < 0.01)      # measured: at most 0.8%, mean 0.3%


def test_rules_coincide_without_relus_and_differ_with_them(trained):
    """Deconvnet and guided backprop only change how ReLUs pass gradients back."""
    rng = np.random.default_rng(1)
    smooth = Sequential(Conv2d(1, 4, 3, rng=rng), Tanh(), MaxPool2d(2), Flatten(), Linear(4 * 5 * 5, 3, rng=rng))
    x = rng.standard_normal((4, 1, 12, 12)).astype(np.float32)
    plain = input_gradients(smooth, x)
    assert np.any(plain != 0)
    for rule in ("deconvnet", "guided"):
        np.testing.assert_array_equal(input_gradients(smooth, x, rule=rule), plain)

    x = trained.x_test[:4]
    plain = input_gradients(trained.model, x)
    for rule in ("deconvnet", "guided"):
        assert not np.allclose(input_gradients(trained.model, x, rule=rule), plain, atol=1e-3)
