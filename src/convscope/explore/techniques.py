"""What the background jobs compute, with ``convscope.visualize`` doing the work.

Everything here runs in the job worker thread on :class:`WorkerModel`, the worker's own
deep copy of the network (so a long job never holds the lock the page's requests take),
and returns JSON-ready dicts. ``expected_*`` say how many images each job sends through the
network, which is what its progress counts.

Settings that depend on the input size (documented in docs/explore.md):

- occlusion: a window of max(4, round(side / 7)) pixels slid by half of it (4 / 2 at 28 px,
  as Zeiler & Fergus's small-image setting; 32 / 16 at 224 px: 169 positions either way);
- SmoothGrad: 25 noisy copies at 15 % noise (Smilkov et al.'s defaults); integrated
  gradients: 50 steps from the model-space zero (the data mean);
- activation maximisation: the library's defaults (256 steps, tuned at 28-32 px) below 96 px;
  above, 128 steps with 4 px jitter and a 1 px blur, as larger images need.
"""

from __future__ import annotations

import copy

import numpy as np

from ..classifier import Classifier
from ..visualize import (activation_maximization, dissect, feature_maps, grad_cam, guided_backprop,
                         input_gradients, integrated_gradients, normalize_map, occlusion, smoothgrad, to_pixels)
from ..visualize.core import leaf_layer_names
from ..visualize.probe import backprop_from, evaluation_mode, layer_output
from .images import data_url, floats, signed_gray
from .units import receptive_box

__all__ = ["SALIENCY", "WorkerModel", "saliency", "deconv", "actmax", "exemplars",
           "expected_saliency", "occlusion_geometry", "actmax_settings"]

SALIENCY = ("gradient", "guided_backprop", "smoothgrad", "integrated_gradients", "grad_cam", "occlusion")
SMOOTHGRAD_SAMPLES, SMOOTHGRAD_NOISE = 25, 0.15
IG_STEPS = 50
EXEMPLAR_TOP = 16          # dissection keeps this many images per unit; a request shows up to it
LARGE = 96                 # inputs at least this many pixels high get the large-image settings


class WorkerModel:
    """The job worker's copy of the classifier, whose first layer reports every forward pass
    to ``tick`` (progress, and the point where a cancelled job stops)."""

    def __init__(self, clf: Classifier, lock, tick) -> None:
        with lock:                                           # no request is half-way through it
            model = copy.deepcopy(clf.model)
        self.clf = Classifier(model, clf.normalizer, clf.class_names, clf.input_shape, clf.meta)
        first = leaf_layer_names(model)[0]
        model.get_module(first).register_forward_hook(lambda module, x, y: tick(len(x)))
        self.dissections: dict[str, object] = {}              # layer -> DissectResult, worker-only

    def x(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (C, H, W) -> model space (1, C, H, W)."""
        return self.clf.normalizer(pixels[None])


def occlusion_geometry(h: int, w: int) -> tuple[int, int]:
    """(window, stride) for occlusion on an h x w input; see the module docstring."""
    window = max(4, int(round(min(h, w) / 7)))
    return window, max(2, window // 2)


def _positions(size: int, window: int, stride: int) -> int:
    """How many window offsets :func:`~convscope.visualize.occlusion` uses along one axis."""
    starts = list(range(0, size - window + 1, stride))
    return len(starts) + (starts[-1] + window < size)


def expected_saliency(method: str, shape: tuple[int, int, int]) -> int:
    """Images the method sends through the network for one input."""
    _, h, w = shape
    if method == "smoothgrad":
        return 1 + SMOOTHGRAD_SAMPLES
    if method == "integrated_gradients":
        return 2 + IG_STEPS
    if method == "occlusion":
        window, stride = occlusion_geometry(h, w)
        return 1 + _positions(h, window, stride) * _positions(w, window, stride)
    return 1


def saliency(worker: WorkerModel, pixels: np.ndarray, method: str, target: int, layer: str | None) -> dict:
    """One saliency map for class ``target``: ``map`` (base64 float32 (H, W)) scaled to [0, 1]
    (``signed`` False: gradient, guided backprop and SmoothGrad by max |.| over channels,
    Grad-CAM by its maximum) or to [-1, 1] (``signed`` True: integrated gradients and
    occlusion, positive for evidence for the class)."""
    model, x = worker.clf.model, worker.x(pixels)
    note, signed = "", False
    if method == "gradient":
        m = normalize_map(input_gradients(model, x, target), "abs")
    elif method == "guided_backprop":
        m = normalize_map(guided_backprop(model, x, target), "abs")
    elif method == "smoothgrad":
        m = normalize_map(smoothgrad(model, x, target, samples=SMOOTHGRAD_SAMPLES, noise=SMOOTHGRAD_NOISE,
                                     rng=np.random.default_rng(0)), "abs")
        note = f"{SMOOTHGRAD_SAMPLES} noisy copies, noise {SMOOTHGRAD_NOISE:.0%} of the image's range"
    elif method == "integrated_gradients":
        r = integrated_gradients(model, x, target, steps=IG_STEPS)
        m, signed = normalize_map(r.attributions, "signed"), True
        note = (f"{IG_STEPS} steps from the data mean; the attributions add up to f(x) - f(baseline) "
                f"within {float(r.completeness_gap[0]):.1%}")
    elif method == "grad_cam":
        up = grad_cam(model, x, layer, target).upsampled                       # (1, H, W), >= 0
        peak = float(up.max())
        m = up / peak if peak > 0 else up
        note = f"at layer {layer}" + ("" if peak > 0 else "; the map is zero everywhere for this class")
    elif method == "occlusion":
        window, stride = occlusion_geometry(*x.shape[2:])
        m, signed = normalize_map(occlusion(model, x, target, window=window, stride=stride), "signed"), True
        note = f"a {window}x{window} window at stride {stride}, filled with the data mean"
    else:
        raise ValueError(f"unknown saliency method {method!r}")
    return {"method": method, "target": target, "class": worker.clf.class_names[target], "layer": layer,
            "shape": list(m.shape[1:]), "signed": signed, "map": floats(m[0]), "note": note}


def deconv(worker: WorkerModel, pixels: np.ndarray, row, index: tuple[int, ...]) -> dict:
    """Zeiler & Fergus's deconvnet projection of unit ``index`` of layer ``row.name`` for this
    input: that activation kept, every other one of the layer zeroed, sent back to pixels by
    the backward pass with the deconvnet ReLU rule. A unit that is not positive here projects
    to nothing, so the channel's strongest activation is projected instead (``fallback``)."""
    model, x = worker.clf.model, worker.x(pixels)
    with evaluation_mode(model):
        out = layer_output(model, x, row.name)[0]
        chosen, fallback = tuple(index), False
        if out[chosen] <= 0 and out.ndim == 3:
            flat = int(np.argmax(out[index[0]]))
            chosen, fallback = (index[0], *np.unravel_index(flat, out.shape[1:])), True
        value = float(out[chosen])
        if value <= 0:
            return {"empty": True, "value": value, "note": "the unit (and its whole channel) is not active for "
                                                          "this input: nothing to project"}
        seed = np.zeros((1, *out.shape), dtype=out.dtype)
        seed[(0, *chosen)] = value
        dx, _ = backprop_from(model, x, row.name, seed, rule="deconvnet")
    chosen = [int(v) for v in chosen]
    box = receptive_box(row, chosen[1:] if out.ndim == 3 else None, x.shape[2:]) if row.receptive_field else None
    return {"empty": False, "image": data_url(signed_gray(dx[0])), "index": chosen, "value": value,
            "fallback": fallback, "box": box,
            "note": "mid-grey is 0; one scale for all channels" + (
                "; the unit itself is not active, so its channel's strongest activation is projected"
                if fallback else "")}


def actmax_settings(shape: tuple[int, int, int]) -> dict:
    """Keyword arguments of :func:`~convscope.visualize.activation_maximization` for this input size."""
    if shape[1] >= LARGE:
        return {"steps": 128, "jitter": 4, "blur_sigma": 1.0}
    return {"steps": 256}


def actmax(worker: WorkerModel, layer: str, unit: int, settings: dict) -> dict:
    """The image that maximises feature ``unit`` of ``layer`` (a channel's spatial mean for a
    convolution), with the activation reached and its history: ``image`` contrast-stretched
    from ``pixel_range`` (its darkest and brightest pixel values in [0, 1]) to black..white,
    ``raw_image`` as the network sees it."""
    r = activation_maximization(worker.clf, layer, unit, seed=0, **settings)
    pixels = to_pixels(r.image[None], worker.clf.normalizer)[0]                   # (C, H, W) in [0, 1]
    lo, hi = float(pixels.min()), float(pixels.max())
    stretched = (pixels - lo) / (hi - lo) if hi > lo else pixels
    history = r.history[np.linspace(0, len(r.history) - 1, min(64, len(r.history))).astype(int)]
    return {"image": data_url(np.rint(stretched * 255).astype(np.uint8)),
            "raw_image": data_url(np.rint(pixels * 255).astype(np.uint8)), "pixel_range": [lo, hi],
            "activation": r.activation, "history": history.tolist(),
            "settings": {k: v for k, v in r.settings.items() if k not in ("pixel_low", "pixel_high")}}


def exemplars(worker: WorkerModel, images: np.ndarray, labels: np.ndarray, indices: np.ndarray,
              row, unit: int, k: int) -> dict:
    """The ``k`` images of a dataset sample (``images`` (N, C, H, W) uint8 at dataset
    ``indices``) that excite unit ``unit`` of ``row.name`` most (a channel's spatial maximum
    for a convolution, Bau et al.'s response), dissected once per layer and cached."""
    result = worker.dissections.get(row.name)
    if result is None:
        result = dissect(worker.clf, images, row.name, labels=labels, top=min(EXEMPLAR_TOP, len(images)))
        worker.dissections[row.name] = result
    top = result.top_indices[unit, :k]
    maps = feature_maps(worker.clf, images[top], row.name)[:, unit] if len(row.output_shape) == 3 else None
    names = worker.clf.class_names
    shown = []
    for t, (j, response) in enumerate(zip(top, result.top_activations[unit, :k])):
        item = {"index": int(indices[j]), "label": int(labels[j]), "class": names[int(labels[j])],
                "response": float(response), "image": data_url(images[j])}
        if maps is not None:
            pos = [int(v) for v in np.unravel_index(int(np.argmax(maps[t])), maps[t].shape)]
            item["position"] = pos
            item["box"] = receptive_box(row, pos, images.shape[2:]) if row.receptive_field else None
        shown.append(item)
    selectivity = float(result.selectivity[unit])
    return {"layer": row.name, "unit": unit, "sample": int(len(images)), "images": shown,
            "preferred_class": names[int(result.preferred_class[unit])],
            "selectivity": None if np.isnan(selectivity) else selectivity}
