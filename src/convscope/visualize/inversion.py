"""Code inversion (notes §3): given a representation, find an image that has it.

Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them" (CVPR
2015): for the code phi0 = phi(x) of an image at some layer, start from random noise and
descend::

    E(z) = ||phi(z) - phi0||^2 / ||phi0||^2  +  tv TV(z)  +  l2 ||z||^2

with z clipped to the valid pixel range. The first term is their normalised loss (eq. 2);
TV^2 and the L2 decay stand in for their TV^beta and alpha-norm priors (:mod:`.regularizers`).
What survives in the reconstruction is what the layer keeps of the image; what differs
between runs from different noise is what it throws away (a late layer keeps the class and
the rough shape, not the exact strokes).

d E / d z comes from the model's backward seeded at the layer with d E / d phi =
2 (phi(z) - phi0) / ||phi0||^2 (:func:`~convscope.visualize.probe.backprop_from`), so any
named layer of any model can be inverted. Steps are Adam's, per pixel and per image.

An image whose code is all zero (every unit of the layer off: a blank image after a ReLU)
has no relative error: its descent minimises ||phi(z)||^2 instead and its errors are NaN,
while the other images of the batch are inverted as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_int, check_real
from .core import batch_limit, batches, check_layer, feature_layer, is_large, resolve
from .probe import backprop_from, evaluation_mode, layer_output
from .regularizers import Adam, gaussian_blur, pixel_bounds, random_shift, roll, total_variation

__all__ = ["InversionResult", "invert", "defaults_for"]


@dataclass
class InversionResult:
    """``images`` (N, C, H, W): the reconstructions, in model space. ``relative_error`` (N,):
    ||phi(z) - phi(x)|| / ||phi(x)|| for the final images (NaN where phi(x) is all zero).
    ``history`` (steps, N): the same error at each step, before that step's update (row 0
    is the noise start). ``settings``:
    the arguments and pixel bounds used."""

    images: np.ndarray
    relative_error: np.ndarray
    history: np.ndarray
    settings: dict


def _axes(a: np.ndarray) -> tuple[int, ...]:
    return tuple(range(1, a.ndim))


def _bounds(normalizer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, 1, 1) pixel bounds: from the normalizer, else the per-channel range of x itself."""
    if normalizer is not None:
        return pixel_bounds(normalizer, x.shape[1], x.dtype)
    return x.min(axis=(0, 2, 3))[:, None, None], x.max(axis=(0, 2, 3))[:, None, None]


def _invert_batch(model, x: np.ndarray, z: np.ndarray, layer: str, settings: dict,
                  low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descend E from the start images z (n, C, H, W) in place; returns (final error (n,),
    history (steps, n))."""
    target = layer_output(model, x, layer)                    # phi0, (n, ...)
    norm2 = np.sum(target.astype(np.float64) ** 2, axis=_axes(target))
    dead = norm2 == 0                                         # an all-zero code: no relative error
    norm2 = np.where(dead, 1.0, norm2)                        # descend on the absolute error there
    scale = (2 / norm2).astype(target.dtype).reshape(-1, *[1] * (target.ndim - 1))
    adam = Adam(z.shape, settings["lr"], dtype=z.dtype)

    def error(out: np.ndarray) -> np.ndarray:
        diff = (out - target).astype(np.float64)
        return np.where(dead, np.nan, np.sqrt(np.sum(diff * diff, axis=_axes(diff)) / norm2))

    def seed(out: np.ndarray) -> np.ndarray:                  # d E / d phi, at the current z
        errors.append(error(out))
        return scale * (out - target)

    errors: list[np.ndarray] = []                              # one (n,) row per step
    rng = np.random.default_rng([settings["seed"], 1])         # the jitter's own stream
    for step in range(settings["steps"]):
        if step and settings["blur_every"] and settings["blur_sigma"] and step % settings["blur_every"] == 0:
            z[...] = np.clip(gaussian_blur(z, settings["blur_sigma"]), low, high)
        shift = random_shift(rng, settings["jitter"])         # (0, 0) without jitter
        grad, _ = backprop_from(model, roll(z, shift), layer, seed)
        grad = roll(grad, (-shift[0], -shift[1]))            # d E / d z at the unshifted images
        if settings["tv"]:
            grad += settings["tv"] * total_variation(z)[1]
        if settings["l2"]:
            grad += 2 * settings["l2"] * z
        adam.step(z, grad)
        np.clip(z, low, high, out=z)
    return error(layer_output(model, z, layer)), np.stack(errors)


def defaults_for(input_shape) -> dict:
    """The settings None stands for, by image size: up to 64 px 200 steps without jitter or
    blur (tuned on LeNet-5 / MNIST); for photos (224 px) 64 steps with jitter of 1/28 of the side
    (8 px) and a Gaussian blur of sigma 1 every 4 steps (Mahendran & Vedaldi 2016 jitter their
    224 px reconstructions; each step is a forward and backward pass of the whole network)."""
    if not is_large(input_shape):
        return dict(steps=200, jitter=0, blur_every=0, blur_sigma=0.0)
    return dict(steps=64, jitter=max(1, max(input_shape[-2:]) // 28), blur_every=4, blur_sigma=1.0)


def invert(model, x, layer: str | None = None, steps: int | None = None, lr: float = 0.05,
           tv: float = 0.002, l2: float = 1e-3, seed: int = 0, normalizer=None,
           init_scale: float = 0.1, batch_size: int = 64, jitter: int | None = None,
           blur_every: int | None = None, blur_sigma: float | None = None) -> InversionResult:
    """Reconstruct images from their representation at ``layer`` (default: the feature layer
    before the first fully-connected one, :func:`~convscope.visualize.core.feature_layer`).

    ``model`` a Classifier with raw images x (its normalizer then sets the pixel range unless
    ``normalizer`` is given), or a Module with model-space images x (N, C, H, W). The
    reconstructions are model-space images (N, C, H, W).

    Starts each image from model-space zero plus ``init_scale`` times Gaussian noise (drawn
    for the whole batch from ``np.random.default_rng(seed)``, so results do not depend on
    ``batch_size``) and takes ``steps`` Adam steps of size ``lr`` down E (module docstring),
    with weights ``tv`` (TV^2) and ``l2``, in evaluation mode. Each step is clipped to the
    pixel range: [(0 - mean) / std, (1 - mean) / std] per channel from ``normalizer`` (a
    convscope Normalizer), or without one the per-channel range of x. ``layer`` is a dotted
    name ("" the logits). Images go through in batches of ``batch_size``; each image's
    descent is independent of the others'.

    A code after a ReLU can trap the descent: a unit the target needs that is off at z passes
    no gradient back, so an image can stall with its error near 1 (on LeNet-5 / MNIST, 1 or
    2 in 10 test images inverted from "pool2"; none from "relu4" or "fc2"). Another ``seed``
    or a larger ``init_scale`` changes which ones.

    ``steps``, ``jitter`` (the code is taken at z rolled by up to that many px, the gradient
    rolled back), ``blur_every`` and ``blur_sigma`` left None follow the image size
    (:func:`defaults_for`): 200 steps and neither up to 64 px; 64 steps, 8 px, sigma 1 every
    4 steps at 224 px.
    """
    model, x, clf = resolve(model, x)
    layer = feature_layer(model) if layer is None else check_layer(model, layer)
    if normalizer is None and clf is not None:
        normalizer = clf.normalizer
    given = dict(steps=steps, jitter=jitter, blur_every=blur_every, blur_sigma=blur_sigma)
    auto = defaults_for(x.shape[1:])
    chosen = {key: auto[key] if value is None else value for key, value in given.items()}
    settings = dict(layer=layer, steps=check_int(chosen["steps"], "steps", minimum=1),
                    jitter=check_int(chosen["jitter"], "jitter", minimum=0),
                    blur_every=check_int(chosen["blur_every"], "blur_every", minimum=0),
                    blur_sigma=check_real(chosen["blur_sigma"], "blur_sigma", minimum=0.0),
                    lr=check_real(lr, "lr", minimum=0.0, strict=True),
                    tv=check_real(tv, "tv", minimum=0.0), l2=check_real(l2, "l2", minimum=0.0),
                    seed=check_int(seed, "seed", minimum=0),
                    init_scale=check_real(init_scale, "init_scale", minimum=0.0),
                    batch_size=batch_limit(x.shape[1:], check_int(batch_size, "batch_size", minimum=1)))
    low, high = _bounds(normalizer, x)
    settings.update(pixel_low=low.ravel().tolist(), pixel_high=high.ravel().tolist())
    rng = np.random.default_rng(settings["seed"])
    images = (settings["init_scale"] * rng.standard_normal(x.shape)).astype(x.dtype)
    np.clip(images, low, high, out=images)
    n = x.shape[0]
    relative_error, history = np.empty(n), np.empty((settings["steps"], n))
    with evaluation_mode(model):
        for part in batches(n, settings["batch_size"]):
            z = images[part]                                  # a view: updated in place
            relative_error[part], history[:, part] = _invert_batch(model, x[part], z, layer, settings, low, high)
    return InversionResult(images, relative_error, history, settings)
