"""Saliency maps (notes §3, "find what locations in the image make a neuron fire"): gradients.

Every function here and in :mod:`~convscope.visualize.attribution` is pure. It takes a model
and inputs ``x`` (N, C, H, W), floats already normalised to the model's input space, runs the
model in evaluation mode and returns raw arrays: signed and unnormalised. Scaling for display
is the separate, explicit step :func:`normalize_map`. Work goes in batches of at most
``batch_size`` images (originals, noisy or interpolated or occluded copies alike), so memory
stays flat however many images or samples are asked for.

The score explained is the logit (pre-softmax) of the target class. ``target`` is None (the
class the model predicts for each clean image), an int (one class for every image) or an int
array (N,) (one class per image).

- :func:`input_gradients`: d score / d x (Simonyan, Vedaldi & Zisserman 2014, "Deep inside
  convolutional networks"). The same backward pass with every ReLU's rule switched gives
  Zeiler & Fergus's deconvnet (2014) or guided backpropagation (Springenberg et al. 2015,
  "Striving for simplicity"): one modified-ReLU backward, see
  :func:`~convscope.visualize.probe.relu_rule`. Other non-linearities keep their derivative.
- :func:`gradient_saliency`: Simonyan et al.'s map, max over channels of |gradient|.
- :func:`smoothgrad`: the gradient averaged over noisy copies (Smilkov et al. 2017).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..layers import Module, ReLU
from ..layers.base import default_rng
from .checks import check_images, check_int, check_real  # noqa: F401  (shared with attribution.py)
from .probe import evaluation_mode, input_gradient

__all__ = ["input_gradients", "gradient_saliency", "guided_backprop", "smoothgrad", "normalize_map"]


# -- helpers shared with attribution.py ------------------------------------------------------

def check_target(target, n: int) -> np.ndarray | None:
    """None, or the target classes (N,) int64 for an int or an int array (N,) ``target``.

    The upper bound (the number of classes) is checked against the logits: :func:`one_hot`.
    """
    if target is None:
        return None
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        targets = np.full(n, int(target), dtype=np.int64)
    elif isinstance(target, (np.ndarray, list, tuple)):
        targets = np.asarray(target)
        if not np.issubdtype(targets.dtype, np.integer) or targets.shape != (n,):
            raise ValueError(f"target must be None, an int or an int array of shape ({n},), "
                             f"got a {targets.dtype} array of shape {targets.shape}")
        targets = targets.astype(np.int64)
    else:
        raise TypeError(f"target must be None, an int or an int array (N,), got {type(target).__name__}")
    if targets.min() < 0:
        raise ValueError(f"target classes must be non-negative, got {int(targets.min())}")
    return targets


def check_classes(logits: np.ndarray, targets: np.ndarray) -> None:
    """ValueError unless ``logits`` is (N, K) and every target is a class below K."""
    if logits.ndim != 2:
        raise ValueError(f"the model must output logits (N, K), got shape {logits.shape}")
    if targets.max() >= logits.shape[1]:
        raise ValueError(f"target class {int(targets.max())} is out of range for a model "
                         f"with {logits.shape[1]} classes")


def one_hot(logits: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """The seed d score / d logits (N, K): 1 at each row's target (its arg-max when None)."""
    targets = logits.argmax(axis=1) if targets is None else targets
    check_classes(logits, targets)
    seed = np.zeros_like(logits)                      # (N, K)
    seed[np.arange(len(targets)), targets] = 1
    return seed


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering range(n) in order, each at most ``batch_size`` long."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def predict(model: Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits (N, K) of x (N, C, H, W), in batches (call inside ``evaluation_mode``)."""
    return np.concatenate([model.forward(x[s]) for s in batches(len(x), batch_size)])


def resolve_targets(model: Module, x: np.ndarray, target, batch_size: int) -> np.ndarray:
    """Target classes (N,): ``target`` checked, or the predicted classes when it is None."""
    targets = check_target(target, len(x))
    if targets is None:
        targets = predict(model, x, batch_size).argmax(axis=1)
    return targets


def accumulate(total: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``total[rows[j]] += values[j]`` for sorted ``rows`` (B,) and values (B, D), with one
    ``np.add.reduceat`` over each run of equal rows instead of ``np.add.at``."""
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    total[rows[starts]] += np.add.reduceat(values, starts, axis=0)


def logit_gradient(model: Module, x: np.ndarray, targets: np.ndarray | None,
                   rule: str = "gradient") -> tuple[np.ndarray, np.ndarray]:
    """(d score / dx (B, C, H, W), logits (B, K)) for one batch, the score being each row's
    target logit. Call inside ``evaluation_mode``."""
    return input_gradient(model, x, "", lambda logits: one_hot(logits, targets), rule)


# -- gradient maps ---------------------------------------------------------------------------

def input_gradients(model: Module, x: np.ndarray, target=None, rule: str = "gradient",
                    batch_size: int = 64) -> np.ndarray:
    """d (target logit) / d x, shape (N, C, H, W) like ``x``, signed.

    ``rule`` is the ReLUs' backward: "gradient" (the true derivative, Simonyan et al. 2014),
    "deconvnet" (Zeiler & Fergus 2014: pass only positive signals back, ignoring the forward
    mask) or "guided" (Springenberg et al. 2015: both masks). Max-pooling routes to its
    arg-max in all three, which is Zeiler & Fergus's "switches".
    """
    x = check_images(x)
    batch_size = check_int(batch_size, "batch_size")
    if rule not in ReLU.RULES:
        raise ValueError(f"rule must be one of {', '.join(ReLU.RULES)}, got {rule!r}")
    targets = check_target(target, len(x))
    with evaluation_mode(model):
        grads = [logit_gradient(model, x[s], None if targets is None else targets[s], rule)[0]
                 for s in batches(len(x), batch_size)]
    return np.concatenate(grads)


def gradient_saliency(model: Module, x: np.ndarray, target=None, batch_size: int = 64) -> np.ndarray:
    """Simonyan et al.'s (2014) saliency map (N, H, W): max over channels of |d score / d x|."""
    return np.abs(input_gradients(model, x, target, "gradient", batch_size)).max(axis=1)


def guided_backprop(model: Module, x: np.ndarray, target=None, batch_size: int = 64) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015), (N, C, H, W): :func:`input_gradients`
    with rule "guided"."""
    return input_gradients(model, x, target, "guided", batch_size)


def smoothgrad(model: Module, x: np.ndarray, target=None, samples: int = 25, noise: float = 0.15,
               rng: np.random.Generator | None = None, batch_size: int = 64) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017), (N, C, H, W): the mean of d score / d x over
    ``samples`` copies of each image with Gaussian noise added.

    The noise standard deviation is ``noise`` x (max - min) of each image, the paper's
    "noise level" (10-20% works well). ``target`` None means the class predicted for the
    clean image. ``rng`` draws the noise, copy after copy in image order, so a seeded
    generator gives the same map whatever ``batch_size`` is. With ``noise`` = 0 the result
    is the plain gradient.
    """
    x = check_images(x)
    samples = check_int(samples, "samples")
    noise = check_real(noise, "noise", minimum=0.0)
    rng = default_rng(rng)
    batch_size = check_int(batch_size, "batch_size")
    n = len(x)
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))        # (N,)
    total = np.zeros((n, x[0].size), dtype=np.float64)                      # (N, C*H*W)
    image_of = np.repeat(np.arange(n), samples)                             # (N*samples,)
    with evaluation_mode(model):
        targets = resolve_targets(model, x, target, batch_size)
        for s in batches(len(image_of), batch_size):
            rows = image_of[s]
            eps = rng.standard_normal((len(rows),) + x.shape[1:])           # (B, C, H, W)
            noisy = (x[rows] + sigma[rows, None, None, None] * eps).astype(x.dtype)
            grad, _ = logit_gradient(model, noisy, targets[rows])
            accumulate(total, rows, grad.reshape(len(rows), -1))
    return (total / samples).reshape(x.shape).astype(grad.dtype)


# -- display ---------------------------------------------------------------------------------

def normalize_map(m: np.ndarray, mode: str = "abs") -> np.ndarray:
    """A map scaled for display, (N, H, W), from a raw map (N, H, W) or (N, C, H, W).

    "abs": |m| divided by its maximum per image, in [0, 1]; channels collapse by max |.|
    (Simonyan et al.'s rule). "signed": m divided by max |m| per image, in [-1, 1], keeping
    the sign (positive evidence for the class, negative against); channels collapse by sum
    (the signed total over a pixel's channels). An all-zero image stays zero.
    """
    if not isinstance(m, np.ndarray) or not np.issubdtype(m.dtype, np.floating):
        got = f"dtype {m.dtype}" if isinstance(m, np.ndarray) else type(m).__name__
        raise TypeError(f"normalize_map expects a float array, got {got}")
    if m.ndim not in (3, 4):
        raise ValueError(f"normalize_map expects a map (N, H, W) or (N, C, H, W), got shape {m.shape}")
    if mode == "abs":
        out = np.abs(m).max(axis=1) if m.ndim == 4 else np.abs(m)          # (N, H, W)
    elif mode == "signed":
        out = m.sum(axis=1) if m.ndim == 4 else m.copy()                    # (N, H, W)
    else:
        raise ValueError(f"mode must be 'abs' or 'signed', got {mode!r}")
    scale = np.abs(out).max(axis=(1, 2), keepdims=True)                     # (N, 1, 1)
    return np.divide(out, scale, out=np.zeros_like(out), where=scale > 0)
