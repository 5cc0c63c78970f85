"""What every technique shares: what it was given, which layer, which class, in what batches.

Every technique in :mod:`convscope.visualize` has one shape, ``technique(model, images, ...)``,
where ``model`` is either

- a :class:`~convscope.Classifier` with the images a user holds (uint8 arrays (N, H, W),
  (N, C, H, W) or (N, H, W, C), float pixels in [0, 1], or a list of image files), turned
  into model space by ``clf.preprocess``; or
- a bare :class:`~convscope.layers.Module` with float arrays (N, C, H, W) already in model
  space (normalised as in training). A uint8 array is never taken as model space: it is
  refused with a pointer to the Classifier form.

:func:`resolve` is that choice, made in this one place. The rest of the module is the
bookkeeping the techniques share: layers by dotted name and the default layer of each kind
(:func:`first_conv`, :func:`last_conv`, :func:`feature_layer`), the class explained
(:func:`check_target`, :func:`one_hot`), batches (:func:`batches`, :func:`accumulate`,
:func:`batch_limit`) and logits (:func:`predict`).

Memory: every technique runs its images ``batch_size`` at a time, and :func:`batch_limit`
lowers that cap for large inputs so that one batch's caches stay near 1 GB: at 224 x 224
VGG-16 keeps ~460 MB per image for a forward and backward pass (its second convolution's
im2col alone is 116 MB), so gradient methods take 2 images at a time and forward-only ones 4
(MNIST and CIFAR sizes keep their ``batch_size``).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from ..layers import Conv2d, Module
from ..validation import check_float_images, is_int

__all__ = ["resolve", "model_space", "find_layer", "check_layer", "leaf_layer_names", "layers_of_type",
           "first_conv", "last_conv", "feature_layer", "check_target", "check_classes", "one_hot",
           "resolve_targets", "batches", "accumulate", "predict", "batch_limit", "last_block", "is_large",
           "LARGE_SIDE"]

# Inputs whose longer side exceeds this are "large" (ImageNet's 224 px): techniques pick
# settings for photos rather than for MNIST / CIFAR thumbnails (the zoo's small-variant rule).
LARGE_SIDE = 64
_PIXELS_PER_BATCH = 2 * 224 * 224        # image pixels per gradient batch (see the module docstring)


# -- Classifier or Module --------------------------------------------------------------------

def resolve(model, images=None, *, images_needed: bool = True, name: str = "x"):
    """(network, model-space images (N, C, H, W) float32 or None, classifier or None).

    ``model`` a :class:`~convscope.Classifier` (``images`` are raw images, preprocessed by it)
    or a :class:`~convscope.layers.Module` (``images`` must be float model-space arrays). With
    ``images_needed=False`` (a technique that takes no images, e.g. :func:`filter_grid`)
    ``images`` is ignored and None comes back in its place.
    """
    from ..classifier import Classifier
    if isinstance(model, Classifier):
        clf, network = model, model.model
    elif isinstance(model, Module):
        clf, network = None, model
    else:
        raise TypeError(f"model must be a convscope Classifier (with raw images) or a Module (with float "
                        f"images in model space), got {type(model).__name__}")
    x = model_space(clf, images, name) if images_needed else None
    return network, x, clf


def model_space(clf, images, name: str = "x") -> np.ndarray:
    """``images`` in model space (N, C, H, W): through ``clf.preprocess`` when ``clf`` is a
    Classifier; with ``clf`` None they must already be float model-space arrays."""
    if clf is not None:
        try:
            return clf.preprocess(images)
        except ValueError as err:
            if isinstance(images, np.ndarray) and np.issubdtype(images.dtype, np.floating):
                raise ValueError(f"{name}: {err}; arrays already in model space go with the Module "
                                 f"form, technique(clf.model, x)") from None
            raise
    if isinstance(images, np.ndarray) and (np.issubdtype(images.dtype, np.integer) or images.dtype == bool):
        raise TypeError(f"{name} has dtype {images.dtype}: raw pixels, which a bare Module never takes as "
                        f"model space; pass the Classifier and the images instead, e.g. "
                        f"grad_cam(clf, images) with clf = convscope.load(run), or clf.preprocess(images)")
    if isinstance(images, (str, os.PathLike)) or (
            isinstance(images, (list, tuple)) and images and all(isinstance(p, (str, os.PathLike)) for p in images)):
        raise TypeError(f"{name} names image files, which only a Classifier can read and preprocess: pass "
                        f"the Classifier, e.g. grad_cam(clf, paths) with clf = convscope.load(run)")
    return check_float_images(images, name)


# -- layers by name ----------------------------------------------------------------------------

def _training_only(model: Module) -> tuple[str, ...]:
    """Name prefixes of the auxiliary classifiers' heads, which run in training only."""
    from ..layers import AuxiliaryClassifier
    return tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, AuxiliaryClassifier))


def find_layer(model: Module, name: str) -> Module:
    """The module called ``name`` ("" is the whole model); ValueError listing names if unknown,
    or if it sits in a training-only auxiliary classifier (nothing runs there in evaluation)."""
    if name == "":
        return model
    module = model.get_module(name)
    if name.startswith(_training_only(model)):
        raise ValueError(f"layer {name!r} belongs to a training-only auxiliary classifier, which does "
                         f"not run when a model is examined; choose a layer on the main path")
    return module


def check_layer(model: Module, layer) -> str:
    """``layer`` if it is the dotted name of a layer of ``model`` ("" the logits); TypeError
    for a non-string, ValueError listing the known names for an unknown one."""
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a dotted layer name (str; \"\" for the logits), got {layer!r}")
    find_layer(model, layer)
    return layer


def leaf_layer_names(model: Module) -> list[str]:
    """Dotted names of the leaf layers that run in evaluation, in forward order: the rows of
    ``convscope summary`` less any auxiliary classifier's head."""
    skip = _training_only(model)
    return [name for name, module in model.named_modules()
            if name and not module.children() and not name.startswith(skip)]


def layers_of_type(model: Module, kinds) -> list[str]:
    """Dotted names of the leaf layers that are instances of ``kinds``, in forward order."""
    return [name for name in leaf_layer_names(model) if isinstance(model.get_module(name), kinds)]


def _convs(model: Module) -> list[str]:
    convs = layers_of_type(model, Conv2d)
    if not convs:
        raise ValueError("the model has no Conv2d layer; name a layer with layer= (--layer)")
    return convs


def last_block(model: Module) -> str:
    """The output of the block the last convolution sits in: the default of Grad-CAM.

    In a plain stack (LeNet, VGG, AlexNet) that is the last convolution itself; inside a
    residual block or an Inception module it is the outermost such block, whose output (after
    the addition and ReLU, or the concatenation) is what the classifier's pooling sees:
    "layer4.2" in ResNet-50 (the last stage's output), "inception5b" in GoogLeNet.
    """
    from ..layers import Concat, Residual
    from ..layers.graph import Graph
    if isinstance(model, Graph):
        return _last_spatial_node(model)
    name = last_conv(model)
    parts = name.split(".")
    for end in range(1, len(parts)):
        prefix = ".".join(parts[:end])
        if isinstance(model.get_module(prefix), (Residual, Concat)):
            return prefix
    return name


def _last_spatial_node(graph) -> str:
    """A Graph's (an imported network's) last node, in execution order, whose output is still a
    feature map (C, H, W) with more than one position: its nodes are flat, so there are no blocks."""
    config = getattr(graph, "config", None)
    if not config:
        raise ValueError("this graph has no recorded input size; choose a layer (layer=...)")
    shapes = graph.shapes((config["in_channels"], *config["input_size"]))
    spatial = [name for name, _ in graph.children() if len(shapes.get(name, ())) == 3
               and shapes[name][1] * shapes[name][2] > 1]
    if not spatial:
        raise ValueError("the graph has no node with a spatial output; choose a layer (layer=...)")
    return spatial[-1]


def first_conv(model: Module) -> str:
    """The first convolution in forward order: the default of the filter and activation views."""
    return _convs(model)[0]


def last_conv(model: Module) -> str:
    """The last convolution in forward order: the default of Grad-CAM, deconvnet and dissection
    (the deepest feature maps that still have a spatial layout)."""
    return _convs(model)[-1]


def feature_layer(model: Module) -> str:
    """The layer whose output is the feature space before the first fully-connected layer
    (notes §3): the leaf just before the first Linear in forward order, e.g. "flatten" in
    LeNet-5 or the global average pool of a ResNet. The default of neighbours and inversion."""
    from ..layers import Linear
    names = leaf_layer_names(model)
    for previous, name in zip(names, names[1:]):
        if isinstance(model.get_module(name), Linear):
            return previous
    raise ValueError("the model has no fully-connected layer after another layer; name a layer with "
                     "layer= (--layer)")


# -- the class explained -----------------------------------------------------------------------

def check_target(target, n: int) -> np.ndarray | None:
    """None, or the target classes (N,) int64 for an int or an int array (N,) ``target``.

    The upper bound (the number of classes) is checked against the logits: :func:`one_hot`.
    """
    if target is None:
        return None
    if is_int(target):
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
                         f"with {logits.shape[1]} classes (0..{logits.shape[1] - 1})")


def one_hot(logits: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """The seed d score / d logits (N, K): 1 at each row's target (its arg-max when None)."""
    targets = logits.argmax(axis=1) if targets is None else targets
    check_classes(logits, targets)
    seed = np.zeros_like(logits)                      # (N, K)
    seed[np.arange(len(targets)), targets] = 1
    return seed


def resolve_targets(model: Module, x: np.ndarray, target, batch_size: int) -> np.ndarray:
    """Target classes (N,): ``target`` checked, or the predicted classes when it is None.
    Call inside :func:`~convscope.visualize.probe.evaluation_mode`."""
    targets = check_target(target, len(x))
    if targets is None:
        targets = predict(model, x, batch_size).argmax(axis=1)
    return targets


# -- batches -----------------------------------------------------------------------------------

def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Slices covering range(n) in order, each at most ``batch_size`` long."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def accumulate(total: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``total[rows[j]] += values[j]`` for sorted ``rows`` (B,) and values (B, D), with one
    ``np.add.reduceat`` over each run of equal rows instead of ``np.add.at``."""
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    total[rows[starts]] += np.add.reduceat(values, starts, axis=0)


def is_large(input_shape) -> bool:
    """Whether one image (C, H, W) is photo-sized: its longer side exceeds :data:`LARGE_SIDE`."""
    return max(int(s) for s in tuple(input_shape)[-2:]) > LARGE_SIDE


def batch_limit(input_shape, batch_size: int, *, forward_only: bool = False) -> int:
    """``batch_size`` lowered for large images (C, H, W): at most 2 images of 224 x 224 per
    gradient batch, 4 for forward passes only (scaled by pixels: 8 at 112 x 112); never below 1.
    Inputs up to :data:`LARGE_SIDE` keep ``batch_size``."""
    if not is_large(input_shape):
        return int(batch_size)
    h, w = (int(s) for s in tuple(input_shape)[-2:])
    cap = max(1, (2 if forward_only else 1) * _PIXELS_PER_BATCH // (h * w))
    return min(int(batch_size), cap)


def predict(model: Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits (N, K) of x (N, C, H, W) in model space, in batches (call inside
    :func:`~convscope.visualize.probe.evaluation_mode`)."""
    return np.concatenate([model.forward(x[s]) for s in batches(len(x), batch_size)])
