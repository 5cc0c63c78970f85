"""The class activation map (CAM) family: a layer's feature maps A (N, K, h, w), weighted and
summed over channels, upsampled to the input.

Every method is one weighting of the same A (a forward hook's record, through
:func:`~convscope.visualize.probe.probe`); gradient CAMs also read g = d score / d A from one
backward seeded with the one-hot target at the logits (the score is the target logit):

- ``grad_cam`` (Selvaraju et al. 2017, eq. 1-2): w_k = mean_hw g_k; ReLU(sum_k w_k A_k).
- ``grad_cam_plus_plus`` (Chattopadhay et al. 2018, eq. 19 with the exponential score's closed
  form): a = g^2 / (2 g^2 + sum_hw(A_k) g^3) (0 where g = 0), w_k = sum_hw a ReLU(g);
  ReLU(sum_k w_k A_k), as pytorch-grad-cam computes it.
- ``xgrad_cam`` (Fu et al. 2020, eq. 9): w_k = sum_hw (A_k / sum_hw A_k) g_k.
- ``layer_cam`` (Jiang et al. 2021, eq. 5-6): ReLU(sum_k ReLU(g_k) . A_k), element-wise weights.
- ``hires_cam`` (Draelos & Carin 2020): ReLU(sum_k g_k . A_k), the element-wise product.
- ``score_cam`` (Wang et al. 2020, eq. 5-8): channel k's map, upsampled and min-max scaled to
  [0, 1], masks the input (baseline + H_k (x - baseline)); w_k = P(target | masked) -
  P(target | baseline), the increase of confidence; ReLU(sum_k w_k A_k). Forward passes only.
- ``ablation_cam`` (Desai & Ramaswamy 2020, eq. 3): w_k = (y - y_k) / y with y the target logit
  and y_k the logit with channel k of A set to zero; ReLU(sum_k w_k A_k). Forward passes only.
- ``eigen_cam`` (Muhammad & Yeasin 2020): A (h*w, K) projected on its first right singular
  vector, class-agnostic; signed, its sign chosen so the map sums to >= 0 (an SVD's sign is
  arbitrary); not rectified.

All but Eigen-CAM are rectified (non-negative). The perturbation methods (Score-CAM,
Ablation-CAM) run N x K copies in passes of at most ``batch_size`` images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers import softmax
from ..validation import check_choice
from .core import batches, check_layer, find_layer, last_conv, one_hot
from .display import resize_bilinear
from .probe import backward_to, layer_output, probe

__all__ = ["CAM_METHODS", "GRADIENT_CAMS", "CamResult", "class_activation_map", "upsample"]

GRADIENT_CAMS = ("grad_cam", "grad_cam_plus_plus", "xgrad_cam", "layer_cam", "hires_cam")
CAM_METHODS = GRADIENT_CAMS + ("score_cam", "ablation_cam", "eigen_cam")
UPSAMPLING = ("bilinear", "nearest")


@dataclass(frozen=True)
class CamResult:
    """What :func:`class_activation_map` returns.

    ``cam`` (N, h, w) at the layer's resolution; ``upsampled`` (N, H, W) at the input's;
    ``weights`` (N, K) the channel weights (None for the element-wise Layer-CAM and HiResCAM);
    ``layer`` the layer's dotted name; ``targets`` (N,) the classes explained.
    """

    cam: np.ndarray
    upsampled: np.ndarray
    weights: np.ndarray | None
    layer: str
    targets: np.ndarray


def upsample(maps: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Maps (N, h, w) -> (N, H, W): "bilinear" with half-pixel centres (PyTorch's
    ``align_corners=False``, cv2's resize) or "nearest" (PyTorch's: source floor(i * h / H))."""
    check_choice(mode, "upsample", UPSAMPLING)
    if mode == "bilinear":
        return resize_bilinear(maps, size)
    rows = np.minimum((np.arange(size[0]) * maps.shape[1]) // size[0], maps.shape[1] - 1)
    cols = np.minimum((np.arange(size[1]) * maps.shape[2]) // size[1], maps.shape[2] - 1)
    return maps[:, rows][:, :, cols]


def _check_4d(a, layer: str) -> None:
    if a is None or a.ndim != 4:
        raise ValueError(f"CAM methods need a layer with 4-D output (N, K, h, w); layer {layer!r} gives "
                         f"{None if a is None else a.shape}")


def _gradient_weights(method: str, a: np.ndarray, g: np.ndarray):
    """(cam (B, h, w) before the final ReLU, weights (B, K) or None) for the gradient CAMs."""
    if method == "grad_cam":
        w = g.mean(axis=(2, 3))
    elif method == "grad_cam_plus_plus":
        g2 = g * g
        denom = 2 * g2 + a.sum(axis=(2, 3))[:, :, None, None] * g2 * g + 1e-6       # pytorch-grad-cam's eps
        alpha = np.where(g != 0, g2 / denom, 0)
        w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    elif method == "xgrad_cam":
        w = (g * a / (a.sum(axis=(2, 3))[:, :, None, None] + 1e-7)).sum(axis=(2, 3))
    elif method == "layer_cam":
        return (np.maximum(g, 0) * a).sum(axis=1), None
    else:                                                                       # hires_cam
        return (g * a).sum(axis=1), None
    return np.einsum("bk,bkhw->bhw", w, a), w


def _gradient_cam(model, x, method, layer, targets, batch_size):
    cams, weights = [], []
    with probe(model, layer) as p:
        model.set_input_grad(False)                  # only d score / d A is needed
        try:
            for s in batches(len(x), batch_size):
                logits = model.forward(x[s])
                _check_4d(p.output, layer)
                backward_to(model, one_hot(logits, targets[s]), p)    # stops at the layer
                cam, w = _gradient_weights(method, p.output, p.grad)
                cams.append(cam)
                weights.append(w)
        finally:
            model.set_input_grad(True)
    return np.concatenate(cams), (None if weights[0] is None else np.concatenate(weights))


def _activations(model, x, layer, batch_size) -> np.ndarray:
    a = np.concatenate([layer_output(model, x[s], layer) for s in batches(len(x), batch_size)])
    _check_4d(a, layer)
    return a


def _score_cam(model, x, layer, targets, batch_size, baseline):
    a = _activations(model, x, layer, batch_size)                               # (N, K, h, w)
    n, k = a.shape[:2]
    base = np.zeros_like(x) if baseline is None else baseline
    rows_all = np.arange(n)
    floor = np.concatenate([softmax(model.forward(base[s]))[np.arange(len(base[s])), targets[s]]
                            for s in batches(n, batch_size)])                   # P(target | baseline)
    scores = np.empty((n, k), dtype=np.float64)
    image_of, channel_of = np.repeat(rows_all, k), np.tile(np.arange(k), n)
    for s in batches(n * k, batch_size):
        rows, ch = image_of[s], channel_of[s]
        m = upsample(a[rows, ch], x.shape[2:])                                  # (B, H, W)
        lo, hi = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
        m = np.divide(m - lo, hi - lo, out=np.zeros_like(m), where=hi > lo)
        masked = base[rows] + m[:, None] * (x[rows] - base[rows])
        scores[rows, ch] = softmax(model.forward(masked.astype(x.dtype)))[np.arange(len(rows)), targets[rows]]
    w = scores - floor[:, None]
    return np.einsum("nk,nkhw->nhw", w, a), w


def _ablation_cam(model, x, layer, targets, batch_size):
    a = _activations(model, x, layer, batch_size)
    n, k = a.shape[:2]
    clean = np.concatenate([model.forward(x[s])[np.arange(len(x[s])), targets[s]]
                            for s in batches(n, batch_size)]).astype(np.float64)     # y (N,)
    ablated = np.empty((n, k), dtype=np.float64)
    image_of, channel_of = np.repeat(np.arange(n), k), np.tile(np.arange(k), n)
    channels = {}

    def zero_channel(module, inputs, out):
        out = out.copy(order="K")             # keep the layer's memory layout
        out[np.arange(len(out)), channels["k"]] = 0
        return out

    with find_layer(model, layer).register_forward_hook(zero_channel):
        for s in batches(n * k, batch_size):
            rows, channels["k"] = image_of[s], channel_of[s]
            ablated[rows, channel_of[s]] = model.forward(x[rows])[np.arange(len(rows)), targets[rows]]
    y = np.where(np.abs(clean) > 1e-12, clean, 1e-12)[:, None]
    w = (clean[:, None] - ablated) / y
    return np.einsum("nk,nkhw->nhw", w, a), w


def _eigen_cam(model, x, layer, batch_size):
    a = _activations(model, x, layer, batch_size).astype(np.float64)
    n, k, h, w = a.shape
    flat = a.reshape(n, k, h * w).transpose(0, 2, 1)                             # (N, h*w, K)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    v = vt[:, 0]                                                                  # (N, K)
    proj = np.einsum("npk,nk->np", flat, v)                                       # (N, h*w)
    sign = np.where(proj.sum(axis=1) < 0, -1.0, 1.0)
    return (proj * sign[:, None]).reshape(n, h, w).astype(x.dtype), v * sign[:, None]


def class_activation_map(model, x: np.ndarray, targets: np.ndarray, method: str = "grad_cam",
                         layer: str | None = None, *, upsample_mode: str = "bilinear",
                         baseline: np.ndarray | None = None, batch_size: int = 64) -> CamResult:
    """One CAM ``method`` (:data:`CAM_METHODS`) at ``layer`` (default: the last convolution),
    for a Module and model-space x (N, C, H, W) and the target classes (N,). ``baseline``
    (N, C, H, W) is what Score-CAM's masks fade to (default model-space zeros); ``upsample_mode``
    "bilinear" or "nearest". Call inside :func:`~convscope.visualize.probe.evaluation_mode`;
    :func:`~convscope.visualize.methods.attribute` is the front door.
    """
    check_choice(method, "method", CAM_METHODS)
    check_choice(upsample_mode, "upsample", UPSAMPLING)
    layer = last_conv(model) if layer is None else check_layer(model, layer)
    if layer == "":
        raise ValueError("CAM methods need an inner layer with 4-D output, got '' (the model's logits)")
    if method in GRADIENT_CAMS:
        cam, w = _gradient_cam(model, x, method, layer, targets, batch_size)
    elif method == "score_cam":
        cam, w = _score_cam(model, x, layer, targets, batch_size, baseline)
    elif method == "ablation_cam":
        cam, w = _ablation_cam(model, x, layer, targets, batch_size)
    else:
        cam, w = _eigen_cam(model, x, layer, batch_size)
    if method != "eigen_cam":
        cam = np.maximum(cam, 0)
    cam = cam.astype(x.dtype, copy=False)
    return CamResult(cam, upsample(cam, x.shape[2:], upsample_mode), w, layer, targets)
