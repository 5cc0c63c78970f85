"""Semantic interpretation of units (notes §3, "what does one unit respond to?").

What does one unit of a layer respond to? Following Bau et al. 2017 ("Network Dissection:
Quantifying Interpretability of Deep Visual Representations", CVPR) and Zhou et al. 2015
("Object Detectors Emerge in Deep Scene CNNs"), each unit is summarised by one number per
image, its *response*: the spatial maximum of its feature map for a convolutional layer
(a (N, C, H, W) output: one unit per channel), the activation itself for a fully-connected
layer (a (N, F) output: one unit per feature). Then:

- the ``top`` images that excite it most (Zeiler & Fergus 2014 show these as image patches);
- with class ``labels``: its mean response per class and the class selectivity index of
  Morcos et al. 2018 ("On the importance of single directions for generalization", ICLR):

      selectivity = (mu_max - mu_rest) / (mu_max + mu_rest)

  where mu_max is the largest class-conditional mean response and mu_rest the mean of the
  other classes' means. For non-negative responses (after a ReLU) it lies in [0, 1]: 0 when
  every class excites the unit equally, 1 when only one class does. It is NaN (undefined)
  where a class mean is negative or all class means are 0;
- with image-level ``concepts`` (an (N, K) binary matrix: image n shows concept k): the same
  per concept, and Bau et al.'s IoU between where the unit fires and where the concept is,
  here at image level: a unit "fires" on the images whose response exceeds its
  ``quantile``-th quantile over the N images, and IoU(unit, k) = |fires and k| / |fires or k|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_int, check_real
from .core import batch_limit, check_layer, last_conv, resolve
from .probe import layer_batches

__all__ = ["DissectResult", "dissect", "selectivity_index"]


@dataclass
class DissectResult:
    """Units of ``layer`` explained on N images (U units, K concepts, L classes).

    ``responses``: (N, U) per-image response of every unit (spatial max for a convolution).
    ``top_indices`` / ``top_activations``: (U, top) the images exciting each unit most,
    strongest first, and their responses. With labels: ``classes`` (L,) the labels present,
    ``class_means`` (U, L), ``selectivity`` (U,) in [0, 1] or NaN, ``preferred_class`` (U,)
    (a label value). With concepts: ``concept_names`` (K,), ``concept_means`` (U, K),
    ``concept_selectivity`` (U,), ``preferred_concept`` (U,) (a column index),
    ``concept_iou`` (U, K). Fields that need missing inputs are None.
    """

    layer: str
    responses: np.ndarray
    top_indices: np.ndarray
    top_activations: np.ndarray
    classes: np.ndarray | None = None
    class_means: np.ndarray | None = None
    selectivity: np.ndarray | None = None
    preferred_class: np.ndarray | None = None
    concept_names: list[str] | None = None
    concept_means: np.ndarray | None = None
    concept_selectivity: np.ndarray | None = None
    preferred_concept: np.ndarray | None = None
    concept_iou: np.ndarray | None = None
    quantile: float = 0.9

    def rows(self) -> list[dict]:
        """One dict per unit, in unit order: ``unit``, ``top_activation`` and, where known,
        ``preferred_class`` and ``selectivity``; ``preferred_concept`` (its name),
        ``concept_selectivity``, ``best_iou_concept`` (the concept of highest IoU, Bau et
        al.'s label for the unit) and ``best_iou``. Plain Python numbers, ready for JSON."""
        table = []
        for u in range(self.responses.shape[1]):
            row = {"unit": u, "top_activation": float(self.top_activations[u, 0])}
            if self.class_means is not None:
                row["preferred_class"] = int(self.preferred_class[u])
                row["selectivity"] = float(self.selectivity[u])
            if self.concept_means is not None:
                row["preferred_concept"] = self.concept_names[int(self.preferred_concept[u])]
                row["concept_selectivity"] = float(self.concept_selectivity[u])
                best = int(np.argmax(self.concept_iou[u]))
                row["best_iou_concept"] = self.concept_names[best]
                row["best_iou"] = float(self.concept_iou[u, best])
            table.append(row)
        return table


def selectivity_index(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Morcos et al. 2018 selectivity of each row of ``means`` (U, L >= 2), one mean response
    per class (or concept): ((mu_max - mu_rest) / (mu_max + mu_rest), argmax) with mu_rest
    the mean of the other L - 1 entries. NaN where an entry is negative or the sum is 0."""
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] < 2:
        raise ValueError(f"selectivity needs means of shape (units, >= 2 groups), got {means.shape}")
    best = np.argmax(means, axis=1)
    mu_max = means[np.arange(len(means)), best]
    mu_rest = (means.sum(axis=1) - mu_max) / (means.shape[1] - 1)
    total = mu_max + mu_rest
    defined = (means.min(axis=1) >= 0) & (total > 0)
    index = np.full(len(means), np.nan)
    index[defined] = (mu_max[defined] - mu_rest[defined]) / total[defined]
    return index, best


def _responses(model, x: np.ndarray, layer: str, batch_size: int) -> np.ndarray:
    """(N, U) unit responses, reduced batch by batch: only (N, U) is ever kept."""
    out = None
    for rows, y in layer_batches(model, x, layer, batch_size):
        if y.ndim == 4:
            y = y.max(axis=(2, 3))                                # (B, C): spatial max
        elif y.ndim != 2:
            raise ValueError(f"layer {layer!r} gives outputs of shape {y.shape[1:]}; dissect needs "
                             f"(C, H, W) feature maps or (F,) features")
        if out is None:
            out = np.empty((len(x), y.shape[1]), dtype=np.float64)
        out[rows] = y
    return out


def _top(responses: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """(U, top) indices of the largest responses per unit, strongest first. A stable sort,
    so ties (a dead unit's zeros) go to the lower image index."""
    r = responses.T                                               # (U, N)
    indices = np.argsort(-r, axis=1, kind="stable")[:, :top]
    return indices, np.take_along_axis(r, indices, 1)


def _group_means(responses: np.ndarray, members: np.ndarray) -> np.ndarray:
    """(U, G) mean response over the images of each group; members (N, G) in {0, 1}."""
    counts = members.sum(axis=0)                                  # (G,)
    return (responses.T @ members) / counts


def _check_labels(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n} integer class labels (shape ({n},)), "
                         f"got {labels.dtype} array of shape {labels.shape}")
    if len(np.unique(labels)) < 2:
        raise ValueError(f"labels must contain at least 2 classes for a selectivity, "
                         f"got only {np.unique(labels).tolist()}")
    return labels


def _check_concepts(concepts, names, n: int) -> tuple[np.ndarray, list[str]]:
    concepts = np.asarray(concepts)
    if concepts.ndim != 2 or concepts.shape[0] != n or concepts.shape[1] < 2:
        raise ValueError(f"concepts must be an ({n}, K) binary matrix with K >= 2, got shape {concepts.shape}")
    if not np.isin(concepts, (0, 1)).all():
        raise ValueError(f"concepts must hold only 0 and 1 (or False/True), got values "
                         f"{np.unique(concepts)[:5].tolist()}")
    concepts = concepts.astype(np.float64)
    empty = np.nonzero(concepts.sum(axis=0) == 0)[0]
    if len(empty):
        raise ValueError(f"every concept needs at least one image; concept columns {empty.tolist()} have none")
    k = concepts.shape[1]
    if names is None:
        names = [f"concept {i}" for i in range(k)]
    if isinstance(names, str) or len(names) != k:
        raise ValueError(f"concept_names must be {k} names, one per concept column, got {names!r}")
    return concepts, [str(name) for name in names]


def _iou(responses: np.ndarray, concepts: np.ndarray, quantile: float) -> np.ndarray:
    """(U, K) image-level IoU of "response above the unit's quantile" with each concept."""
    threshold = np.quantile(responses, quantile, axis=0)          # (U,)
    fires = (responses > threshold).astype(np.float64)            # (N, U)
    both = fires.T @ concepts                                     # (U, K)
    either = fires.sum(axis=0)[:, None] + concepts.sum(axis=0)[None, :] - both
    return both / either


def dissect(model, x, layer: str | None = None, labels=None, concepts=None,
            concept_names=None, top: int = 8, batch_size: int = 128,
            quantile: float = 0.9) -> DissectResult:
    """Explain every unit of ``layer`` (default: the last convolution) with images x: raw
    images with a Classifier, model-space (N, C, H, W) floats with a Module.

    ``labels`` (N,) integer classes and/or ``concepts`` (N, K) binary image-level concept
    labels with ``concept_names`` (K names; default "concept 0", ...) turn on the per-class
    and per-concept statistics; ``quantile`` in (0, 1) sets where a unit counts as firing for
    the IoU. Only the (N, U) responses are kept, one batch of ``batch_size`` feature maps at
    a time. See the module docstring for the definitions and :class:`DissectResult`.
    """
    model, x, _ = resolve(model, x)
    layer = last_conv(model) if layer is None else check_layer(model, layer)
    top = check_int(top, "top", minimum=1, maximum=len(x))
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    batch_size = batch_limit(x.shape[1:], batch_size, forward_only=True)
    quantile = check_real(quantile, "quantile", minimum=0.0, maximum=1.0, strict=True)
    if labels is not None:
        labels = _check_labels(labels, len(x))
    if concepts is not None:
        concepts, concept_names = _check_concepts(concepts, concept_names, len(x))
    elif concept_names is not None:
        raise ValueError(f"concept_names given ({concept_names!r}) without concepts")

    responses = _responses(model, x, layer, batch_size)          # (N, U)
    indices, values = _top(responses, top)
    result = DissectResult(layer, responses, indices, values, quantile=float(quantile))
    if labels is not None:
        classes = np.unique(labels)
        onehot = (labels[:, None] == classes[None, :]).astype(np.float64)   # (N, L)
        result.classes = classes
        result.class_means = _group_means(responses, onehot)
        result.selectivity, best = selectivity_index(result.class_means)
        result.preferred_class = classes[best]
    if concepts is not None:
        result.concept_names = concept_names
        result.concept_means = _group_means(responses, concepts)
        result.concept_selectivity, result.preferred_concept = selectivity_index(result.concept_means)
        result.concept_iou = _iou(responses, concepts, quantile)
    return result
