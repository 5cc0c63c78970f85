"""Saliency maps (notes §3, "find what locations in the image make a neuron fire"): gradients.

Every function here and in :mod:`~convscope.visualize.attribution` is pure and has one
shape: ``method(model, images, target=None, ...)`` with a Classifier and raw images, or a
Module and model-space floats (N, C, H, W) (:func:`~convscope.visualize.core.resolve`). The
model runs in evaluation mode and work goes in batches of at most ``batch_size`` images
(originals, noisy or interpolated copies alike), so memory stays flat however many images or
samples are asked for. What comes back is unscaled: :func:`input_gradients`, guided
backprop and SmoothGrad are signed (N, C, H, W) arrays; :func:`gradient_saliency` is
Simonyan et al.'s |gradient| map (N, H, W). Scaling for display is the separate, explicit
step :func:`~convscope.visualize.display.normalize_map`.

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

import numpy as np

from ..layers import ReLU
from ..layers.base import default_rng
from ..validation import check_int, check_real
from .core import accumulate, batch_limit, batches, check_target, resolve, resolve_targets
from .probe import evaluation_mode, logit_gradient

__all__ = ["input_gradients", "gradient_saliency", "guided_backprop", "smoothgrad"]


def input_gradients(model, x, target=None, rule: str = "gradient", batch_size: int = 64) -> np.ndarray:
    """d (target logit) / d x, shape (N, C, H, W) like the model-space input, signed.

    ``rule`` is the ReLUs' backward: "gradient" (the true derivative, Simonyan et al. 2014),
    "deconvnet" (Zeiler & Fergus 2014: pass only positive signals back, ignoring the forward
    mask) or "guided" (Springenberg et al. 2015: both masks). Max-pooling routes to its
    arg-max in all three, which is Zeiler & Fergus's "switches".
    """
    model, x, _ = resolve(model, x)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size)
    if rule not in ReLU.RULES:
        raise ValueError(f"rule must be one of {', '.join(ReLU.RULES)}, got {rule!r}")
    targets = check_target(target, len(x))
    with evaluation_mode(model):
        grads = [logit_gradient(model, x[s], None if targets is None else targets[s], rule)[0]
                 for s in batches(len(x), batch_size)]
    return np.concatenate(grads)


def gradient_saliency(model, x, target=None, batch_size: int = 64) -> np.ndarray:
    """Simonyan et al.'s (2014) saliency map (N, H, W): max over channels of |d score / d x|
    (non-negative; the sign is in :func:`input_gradients`)."""
    return np.abs(input_gradients(model, x, target, "gradient", batch_size)).max(axis=1)


def guided_backprop(model, x, target=None, batch_size: int = 64) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015), (N, C, H, W), signed:
    :func:`input_gradients` with rule "guided"."""
    return input_gradients(model, x, target, "guided", batch_size)


def smoothgrad(model, x, target=None, samples: int = 25, noise: float = 0.15,
               rng: np.random.Generator | None = None, batch_size: int = 64) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017), (N, C, H, W), signed: the mean of d score / d x over
    ``samples`` copies of each image with Gaussian noise added.

    The noise standard deviation is ``noise`` x (max - min) of each model-space image, the
    paper's "noise level" (10-20% works well). ``target`` None means the class predicted for
    the clean image. ``rng`` draws the noise, copy after copy in image order, so a seeded
    generator gives the same map whatever ``batch_size`` is. With ``noise`` = 0 the result
    is the plain gradient.
    """
    model, x, _ = resolve(model, x)
    samples = check_int(samples, "samples", minimum=1)
    noise = check_real(noise, "noise", minimum=0.0)
    rng = default_rng(rng)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size)
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
