"""Activation maximisation (notes §3): Hubel and Wiesel's experiment, done by gradient ascent.

Find an input that makes one unit fire strongly: start from faint noise and climb the
unit's activation a(x) with steps on the *input*, the weights fixed (Erhan, Bengio,
Courville & Vincent, "Visualizing Higher-Layer Features of a Deep Network", 2009; Simonyan,
Vedaldi & Zisserman, "Deep Inside Convolutional Networks", ICLR workshop 2014, for class
scores). Unregularised, the ascent finds high-frequency patterns no camera would record, so
the objective carries the image priors of Yosinski et al. ("Understanding Neural Networks
Through Deep Visualization", 2015) and Mahendran & Vedaldi (2015)::

    maximise  a(x) - l2 ||x||^2 - tv TV(x)       with x clipped to the valid pixel range

plus jitter (the gradient is taken at the image rolled by up to ``jitter`` pixels, and rolled
back) and a Gaussian blur every ``blur_every`` steps (:mod:`.regularizers`). The steps are
Adam's (each pixel moves by about ``lr`` per step whatever the unit's scale).

The defaults follow the image size (:func:`defaults_for`). For 28-32 px models (MNIST,
CIFAR): a few hundred steps, 1 px of jitter and a light blur; the 224 px settings of the
papers (8+ px jitter, sigma 1+) wash such small images out. For 224 px photos those
settings, plus random zoom (scale robustness, Olah et al. 2017), and fewer steps: each
costs a forward and backward pass of an ImageNet network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_int, check_real, is_int
from .core import check_layer, is_large, resolve
from .probe import backprop_from, evaluation_mode, layer_output
from .regularizers import Adam, Zoom, gaussian_blur, pixel_bounds, random_shift, random_zoom, roll, total_variation

__all__ = ["ActMaxResult", "activation_maximization", "defaults_for"]


@dataclass
class ActMaxResult:
    """``image`` (C, H, W) in model space; ``activation`` the unit's value on it, measured
    without jitter or penalties; ``history`` (steps,) the value at each step (on the jittered
    image the gradient was taken at, before that step's update); ``settings`` every argument
    and the pixel bounds, for reproducing the run."""

    image: np.ndarray
    activation: float
    history: np.ndarray
    settings: dict


def _check_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
    if len(shape) != 3 or not all(is_int(s) and s > 0 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) with positive ints, got {input_shape!r}")
    return tuple(int(s) for s in shape)


def _unit_seed(layer: str, out_shape: tuple[int, ...], unit) -> np.ndarray:
    """The seed (1, *out_shape) whose dot product with the layer output is the unit's
    activation: 1/(H*W) over a channel (its spatial mean), or a one-hot position/feature."""
    seed = np.zeros((1, *out_shape), dtype=np.float32)
    what = f"layer {layer or '(logits)'!r}"
    if len(out_shape) == 1:
        if isinstance(unit, tuple):
            raise ValueError(f"{what} outputs {out_shape[0]} features; unit must be one int, got {unit!r}")
        f = check_int(unit, "unit", minimum=0)
        if f >= out_shape[0]:
            raise ValueError(f"unit {f} is out of range: {what} has {out_shape[0]} features (0..{out_shape[0] - 1})")
        seed[0, f] = 1.0
        return seed
    if len(out_shape) != 3:
        raise ValueError(f"activation maximisation needs a layer whose output is (C, H, W) or "
                         f"(features,); {what} gives {out_shape}")
    c, h, w = out_shape
    index = tuple(unit) if isinstance(unit, (tuple, list)) else (unit,)
    if len(index) not in (1, 3):
        raise ValueError(f"unit must be a channel or a (channel, row, col) triple, got {unit!r}")
    index = tuple(check_int(i, "unit", minimum=0) for i in index)
    for value, size, axis in zip(index, out_shape, ("channels", "rows", "columns")):
        if value >= size:
            raise ValueError(f"unit {unit!r} is out of range: {what} has {size} {axis} (0..{size - 1}), "
                             f"output (C, H, W) = {out_shape}")
    if len(index) == 1:
        seed[0, index[0]] = 1.0 / (h * w)
    else:
        seed[(0, *index)] = 1.0
    return seed


def defaults_for(input_shape) -> dict:
    """The settings that None stands for, by image size: the MNIST-tuned ones up to 64 px; for
    photos (224 px) fewer steps (each costs a forward and backward pass of a large network, ~0.5 s
    for ResNet-50 on 2 cores), jitter of 1/28 of the side (8 px at 224), zoom by up to 1.1x and a
    stronger, more frequent blur, the transformation robustness of Olah et al. (2017)."""
    if not is_large(input_shape):
        return dict(steps=256, lr=0.1, jitter=1, blur_every=8, blur_sigma=0.5, scale=1.0)
    side = max(input_shape[-2:])
    return dict(steps=64, lr=0.05, jitter=max(1, side // 28), blur_every=4, blur_sigma=1.0, scale=1.1)


def activation_maximization(model, layer: str | None = None, unit=None, input_shape=None, steps: int | None = None,
                            lr: float | None = None, l2: float = 1e-3, jitter: int | None = None, tv: float = 0.005,
                            blur_every: int | None = None, blur_sigma: float | None = None, seed: int = 0,
                            init_scale: float = 0.5, normalizer=None, scale: float | None = None) -> ActMaxResult:
    """An input (C, H, W) that maximises one unit of ``layer``, by regularised gradient ascent.

    ``model``: a Classifier (then ``input_shape`` and ``normalizer`` default to its own) or
    a Module (then ``input_shape``, one image's (C, H, W), is required). ``layer``: a dotted
    name; None or "" is the model's logits, so ``unit`` is then a class. ``unit``: for a
    conv-like layer (output (C, H, W)) a channel ``c`` (its spatial mean is maximised) or a
    position ``(c, i, j)``; for a linear layer (output (F,)) a feature index.

    Each of ``steps`` steps: draw a shift of up to ``jitter`` px per axis (and, with ``scale``
    > 1, a zoom factor in [1/scale, scale]), take the unit's gradient at the zoomed and rolled
    image and send it back through both, add the penalties' gradients (``l2``
    times ||x||^2, ``tv`` times TV^2, notes §3 / Mahendran & Vedaldi), take an Adam step of
    size ``lr`` up the objective, and clip to the pixel range; before every ``blur_every``-th
    step (0 = never) blur with a Gaussian of ``blur_sigma`` px. The range is [(0 - mean) / std,
    (1 - mean) / std] per channel from ``normalizer`` (a convscope Normalizer), or [0, 1]
    without one. The start is model-space zero (the data mean) plus ``init_scale`` times
    Gaussian noise. Everything random comes from ``np.random.default_rng(seed)``: the same
    seed gives the same image.

    A unit that is zero on the start image (a ReLU output no start pixel excites) gets no
    gradient and stays there (``activation`` 0): maximise the layer before the ReLU instead,
    or try another seed or ``init_scale``. Settings left None follow the image size
    (:func:`defaults_for`): up to 64 px the values tuned on LeNet-5 / MNIST (256 steps, Adam lr
    0.1, jitter 1 px, blur sigma 0.5 px every 8 steps, no zoom; with l2 1e-3, tv 0.005, start
    noise 0.5); at 224 px 64 steps, lr 0.05, jitter 8 px, zoom 1.1, blur sigma 1 every 4 steps.
    """
    model, _, clf = resolve(model, images_needed=False)
    layer = "" if layer is None else check_layer(model, layer)
    if unit is None:
        raise TypeError("activation_maximization needs unit=: a class for the logits, a channel (or a "
                        "(channel, row, col) position) for a convolution, a feature for a linear layer")
    if input_shape is None:
        if clf is None:
            raise TypeError("activation_maximization on a bare Module needs input_shape=(C, H, W); "
                            "a Classifier knows its own")
        input_shape = clf.input_shape
    if normalizer is None and clf is not None:
        normalizer = clf.normalizer
    shape = _check_shape(input_shape)
    given = dict(steps=steps, lr=lr, jitter=jitter, blur_every=blur_every, blur_sigma=blur_sigma, scale=scale)
    auto = defaults_for(shape)
    steps, lr, jitter, blur_every, blur_sigma, scale = (auto[k] if v is None else v for k, v in given.items())
    settings = dict(layer=layer, unit=unit, input_shape=shape, seed=check_int(seed, "seed", minimum=0),
                    steps=check_int(steps, "steps", minimum=1),
                    lr=check_real(lr, "lr", minimum=0.0, strict=True),
                    l2=check_real(l2, "l2", minimum=0.0),
                    jitter=check_int(jitter, "jitter", minimum=0),
                    tv=check_real(tv, "tv", minimum=0.0),
                    blur_every=check_int(blur_every, "blur_every", minimum=0),
                    blur_sigma=check_real(blur_sigma, "blur_sigma", minimum=0.0),
                    scale=check_real(scale, "scale", minimum=1.0),
                    init_scale=check_real(init_scale, "init_scale", minimum=0.0))
    low, high = pixel_bounds(normalizer, shape[0])           # (C, 1, 1) each
    settings.update(pixel_low=low.ravel().tolist(), pixel_high=high.ravel().tolist())
    rng = np.random.default_rng(settings["seed"])
    with evaluation_mode(model):
        x = np.zeros((1, *shape), dtype=np.float32)          # (1, C, H, W)
        out_seed = _unit_seed(layer, layer_output(model, x, layer).shape[1:], unit)
        x += settings["init_scale"] * rng.standard_normal(x.shape, dtype=np.float32)
        np.clip(x, low, high, out=x)
        x, history = _ascend(model, layer, x, out_seed, settings, rng, (low, high))
        final = float(np.sum(layer_output(model, x, layer) * out_seed, dtype=np.float64))
    return ActMaxResult(image=x[0], activation=final, history=history, settings=settings)


def _ascend(model, layer: str, x: np.ndarray, out_seed: np.ndarray, settings: dict,
            rng: np.random.Generator, bounds) -> tuple[np.ndarray, np.ndarray]:
    """The regularised ascent from x (1, C, H, W); returns the final image and the history."""
    low, high = bounds
    adam = Adam(x.shape, settings["lr"])
    history = np.empty(settings["steps"])
    blur_every, sigma = settings["blur_every"], settings["blur_sigma"]
    for t in range(settings["steps"]):
        if t and blur_every and sigma and t % blur_every == 0:
            x = gaussian_blur(x, sigma)                       # before a step: the result is never just blurred
        shift = random_shift(rng, settings["jitter"])
        zoom = Zoom(x.shape[2:], random_zoom(rng, settings["scale"])) if settings["scale"] > 1 else None
        seen = roll(zoom(x) if zoom else x, shift)
        grad, out = backprop_from(model, seen, layer, out_seed)
        history[t] = np.sum(out * out_seed, dtype=np.float64)
        grad = roll(grad, (-shift[0], -shift[1]))             # d a / d x at the unshifted image
        if zoom:
            grad = zoom.adjoint(grad)                         # ... and at the unzoomed one
        if settings["l2"]:
            grad -= 2 * settings["l2"] * x
        if settings["tv"]:
            grad -= settings["tv"] * total_variation(x)[1]
        adam.step(x, -grad)                                   # ascent
        np.clip(x, low, high, out=x)
    return x, history
