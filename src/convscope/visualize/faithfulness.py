"""Measures that say whether to trust an attribution map: :data:`METRICS` and :func:`faithfulness`.

::

    maps = visualize.attribute(clf, images, method="gradient")                 # (N, H, W)
    scores = visualize.faithfulness(clf, images, maps, metric="deletion")      # (N,)
    visualize.METRICS["deletion"]["better"]                                    # "lower"

``model`` and ``images`` as in :func:`~convscope.visualize.methods.attribute` (Classifier and
raw images, or Module and model-space floats); ``maps`` (N, H, W) at the input's size (or
(N, C, H, W) attributions for infidelity). ``target`` None means each image's predicted class.
Pixels are ranked by the map's value, most attributed first (ties in pixel order). Every
perturbed copy runs in passes of at most ``batch_size`` images.

- ``deletion`` / ``insertion`` (Petsiuk et al. 2018, §4.1): the area under the target's
  softmax probability as the most attributed pixels are removed (set to the baseline) / added
  (onto the baseline) in ``steps`` equal steps; the baseline is explicit: "black" (pixel
  value 0) by default, "blur", "mean", a number or an array (model space).
- ``road_morf`` / ``road_lerf`` / ``road`` (Rong et al. 2022): the mean probability over
  ``fractions`` of pixels removed most- / least-relevant first, the removed pixels filled by
  noisy linear imputation (:mod:`.road`); ``road`` is (LeRF - MoRF) / 2.
- ``randomisation`` (Adebayo et al. 2018, cascading model-parameter randomisation): the
  Spearman rank correlation between ``maps`` and the maps ``method`` gives once every layer
  has been re-initialised from the top down (of |map| with ``absolute``).
- ``infidelity`` (Yeh et al. 2019, Captum's ``infidelity``): E_I[(I . phi - (f(x) - f(x - I)))^2]
  over Gaussian I of std ``noise`` x the image's range, f the target logit.
- ``sensitivity`` (Yeh et al. 2019, Captum's ``sensitivity_max``): max over ``samples`` of
  ||phi(x + d) - phi(x)|| / ||phi(x)||, d uniform in the L-inf ball of ``radius`` x the range.

:func:`faithfulness_curves` and :func:`randomisation_curve` return the curves behind the
scores, for plotting.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..layers import BatchNorm1d, BatchNorm2d, softmax
from ..layers.init import he_normal
from ..validation import check_choice, check_int, check_real
from .core import batches, leaf_layer_names, resolve, resolve_targets
from .methods import attribute
from .perturbation import baseline_images, batch_budget, resolve_rng
from .probe import evaluation_mode
from .road import noisy_linear_imputation

__all__ = ["METRICS", "faithfulness", "faithfulness_curves", "Curves", "randomisation_curve",
           "RandomisationCurve", "spearman"]

METRICS: dict[str, dict[str, str]] = {
    "deletion": {"better": "lower", "doc": "AUC of P(target) as the most attributed pixels are removed "
                 "(Petsiuk et al. 2018)"},
    "insertion": {"better": "higher", "doc": "AUC of P(target) as the most attributed pixels are added "
                  "onto the baseline (Petsiuk et al. 2018)"},
    "road_morf": {"better": "lower", "doc": "ROAD, most relevant first: mean P(target) with the top "
                  "fractions imputed (Rong et al. 2022)"},
    "road_lerf": {"better": "higher", "doc": "ROAD, least relevant first: mean P(target) with the bottom "
                  "fractions imputed (Rong et al. 2022)"},
    "road": {"better": "higher", "doc": "ROAD combined, (LeRF - MoRF) / 2 (Rong et al. 2022)"},
    "randomisation": {"better": "lower", "doc": "Spearman correlation with the maps of the model "
                      "re-initialised from the top down (Adebayo et al. 2018)"},
    "infidelity": {"better": "lower", "doc": "E[(I . phi - (f(x) - f(x - I)))^2], Gaussian I "
                   "(Yeh et al. 2019)"},
    "sensitivity": {"better": "lower", "doc": "max ||phi(x + d) - phi(x)|| / ||phi(x)|| over |d| <= r "
                    "(Yeh et al. 2019)"},
}

_OPTIONS = {
    "deletion": ("steps", "baseline", "blur_sigma", "score"),
    "insertion": ("steps", "baseline", "blur_sigma", "score"),
    "road_morf": ("fractions", "noise", "score", "rng", "seed"),
    "road_lerf": ("fractions", "noise", "score", "rng", "seed"),
    "road": ("fractions", "noise", "score", "rng", "seed"),
    "randomisation": ("method", "method_options", "absolute", "rng", "seed"),
    "infidelity": ("samples", "noise", "normalize", "score", "rng", "seed"),
    "sensitivity": ("method", "method_options", "samples", "radius", "rng", "seed"),
}
_CURVES = ("deletion", "insertion", "road_morf", "road_lerf")
FRACTIONS = tuple(np.round(np.arange(1, 10) / 10, 2))        # ROAD's 10% .. 90%


@dataclass(frozen=True)
class Curves:
    """``fractions`` (S,) of pixels removed / inserted; ``scores`` (N, S) the target's score at
    each; ``auc`` (N,) the metric (trapezoid area for deletion / insertion, mean for ROAD)."""

    metric: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray


@dataclass(frozen=True)
class RandomisationCurve:
    """``layers`` re-initialised so far at each stage, top first; ``correlations`` (N, L)."""

    layers: list[str]
    correlations: np.ndarray


def _score(model, x, targets, score: str, batch: int) -> np.ndarray:
    """The target's softmax probability or logit (N,) float64."""
    out = []
    for s in batches(len(x), batch):
        logits = model.forward(x[s])
        values = softmax(logits) if score == "probability" else logits
        out.append(values[np.arange(len(logits)), targets[s]])
    return np.concatenate(out).astype(np.float64)


def _check_maps(maps, x, name="maps", channels=False) -> np.ndarray:
    if not isinstance(maps, np.ndarray) or not np.issubdtype(maps.dtype, np.floating):
        raise TypeError(f"{name} must be a float array (N, H, W), got {type(maps).__name__}")
    shapes = [(len(x),) + x.shape[2:]] + ([(len(x), 1) + x.shape[2:], x.shape] if channels else [])
    if maps.shape not in shapes:
        raise ValueError(f"{name} must have shape {' or '.join(map(str, shapes))} for images {x.shape}, "
                         f"got {maps.shape}")
    return maps


def _ranks(maps: np.ndarray) -> np.ndarray:
    """rank (N, H*W): 0 for each image's most attributed pixel, ties in pixel order."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks


def _deletion_curve(model, x, maps, targets, metric, o, clf, batch) -> Curves:
    steps = check_int(o.get("steps", 50), "steps", minimum=1)
    base = baseline_images(o.get("baseline", "black"), x, clf, blur_sigma=o.get("blur_sigma"))
    score = check_choice(o.get("score", "probability"), "score", ("probability", "logit"))
    n, hw = len(x), x.shape[2] * x.shape[3]
    counts = np.round(np.linspace(0, hw, steps + 1)).astype(np.int64)            # pixels changed per step
    ranks = _ranks(maps).reshape(n, *x.shape[2:])
    scores = np.empty((n, steps + 1))
    image_of, step_of = np.repeat(np.arange(n), steps + 1), np.tile(np.arange(steps + 1), n)
    start, end = (x, base) if metric == "deletion" else (base, x)
    for s in batches(len(image_of), batch):
        rows, k = image_of[s], step_of[s]
        changed = (ranks[rows] < counts[k][:, None, None])[:, None]              # (B, 1, H, W)
        copies = np.where(changed, end[rows], start[rows])
        scores[rows, k] = _score(model, copies, targets[rows], score, batch)
    fractions = counts / hw
    return Curves(metric, fractions, scores, np.trapezoid(scores, fractions, axis=1))


def _road_curve(model, x, maps, targets, metric, o, clf, batch) -> Curves:
    fractions = np.asarray(o.get("fractions", FRACTIONS), dtype=np.float64)
    if fractions.ndim != 1 or fractions.size == 0 or fractions.min() < 0 or fractions.max() >= 1:
        raise ValueError(f"fractions must be a list of numbers in [0, 1), got {o.get('fractions')!r}")
    noise = check_real(o.get("noise", 0.01), "noise", minimum=0.0)
    std = noise / np.asarray(clf.normalizer.std, dtype=np.float64) if clf is not None else noise
    score = check_choice(o.get("score", "probability"), "score", ("probability", "logit"))
    rng = resolve_rng(o.get("rng"), o.get("seed"))
    n, hw = len(x), x.shape[2] * x.shape[3]
    ranks = _ranks(maps).reshape(n, *x.shape[2:])
    if metric == "road_lerf":
        ranks = hw - 1 - ranks                                                   # least relevant first
    counts = np.round(fractions * hw).astype(np.int64)
    scores = np.empty((n, len(fractions)))
    image_of, step_of = np.repeat(np.arange(n), len(fractions)), np.tile(np.arange(len(fractions)), n)
    for s in batches(len(image_of), batch):
        rows, k = image_of[s], step_of[s]
        removed = ranks[rows] < counts[k][:, None, None]                         # (B, H, W)
        filled = noisy_linear_imputation(x[rows], removed, std, rng).astype(x.dtype)
        scores[rows, k] = _score(model, filled, targets[rows], score, batch)
    return Curves(metric, fractions, scores, scores.mean(axis=1))


def _check_options(metric: str, options: dict) -> None:
    check_choice(metric, "metric", tuple(METRICS))
    unknown = sorted(set(options) - set(_OPTIONS[metric]))
    if unknown:
        raise TypeError(f"metric {metric!r} takes {', '.join(_OPTIONS[metric])}; got unexpected "
                        f"{', '.join(unknown)}")


def faithfulness_curves(model, images, maps, metric: str = "deletion", target=None, *,
                        batch_size: int | None = None, **options) -> Curves:
    """The curve behind a deletion, insertion or ROAD score (``metric`` one of "deletion",
    "insertion", "road_morf", "road_lerf"), for plotting: fractions (S,), scores (N, S), and
    the metric itself as ``auc`` (N,). Options as for :func:`faithfulness`."""
    check_choice(metric, "metric", _CURVES)
    _check_options(metric, options)
    network, x, clf = resolve(model, images)
    maps = _check_maps(maps, x)
    batch = batch_budget(x, batch_size)
    with evaluation_mode(network):
        targets = resolve_targets(network, x, target, batch)
        run = _deletion_curve if metric in ("deletion", "insertion") else _road_curve
        return run(network, x, maps, targets, metric, options, clf, batch)


# -- randomisation --------------------------------------------------------------------------------

def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each row pair of a, b (N, ...), ties given mean ranks;
    NaN where a row is constant."""
    ra, rb = (_mean_ranks(np.asarray(v, dtype=np.float64).reshape(len(v), -1)) for v in (a, b))
    ra, rb = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(axis=1) / np.where(denom > 0, denom, 1), np.nan)


def _mean_ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, axis=1, kind="stable")
    sorted_v = np.take_along_axis(v, order, axis=1)
    ranks = np.empty_like(v)
    for i in range(len(v)):                                   # one pass per image: run-length ties
        starts = np.flatnonzero(np.r_[True, sorted_v[i, 1:] != sorted_v[i, :-1]])
        ends = np.r_[starts[1:], v.shape[1]]
        mean_rank = np.repeat((starts + ends - 1) / 2.0, ends - starts)
        ranks[i, order[i]] = mean_rank
    return ranks


def _reinitialise(module, rng: np.random.Generator) -> None:
    """A layer's parameters as if freshly built: He-normal weights (ndim >= 2), zero biases,
    BN scale 1 and shift 0 (its running statistics are kept)."""
    is_bn = isinstance(module, (BatchNorm1d, BatchNorm2d))
    for key, value in module.params.items():
        if is_bn:
            module.params[key] = np.full_like(value, 1.0 if key == "weight" else 0.0)
        elif value.ndim >= 2:
            module.params[key] = he_normal(value.shape, rng, value.dtype)
        else:
            module.params[key] = np.zeros_like(value)


def _method_call(o: dict):
    method = o.get("method")
    if method is None:
        raise ValueError("this metric recomputes maps: pass method= (the name given to attribute), e.g. "
                         "method='gradient', and method_options= for its arguments")
    options = dict(o.get("method_options") or {})
    if not callable(method):
        return lambda net, x, targets: attribute(net, x, method, target=targets, **options)
    return lambda net, x, targets: method(net, x, targets, **options)


def randomisation_curve(model, images, maps, method, target=None, *, method_options: dict | None = None,
                        absolute: bool = True, rng=None, seed=None, batch_size: int | None = None
                        ) -> RandomisationCurve:
    """Adebayo et al.'s cascading randomisation: the parameterised layers are re-initialised one
    by one from the logits down (on a copy of the model); after each, ``method`` (a name for
    :func:`attribute`, or a callable fn(module, x, targets) -> maps) is run again for the same
    targets and compared with ``maps`` by Spearman rank correlation (of |.| with ``absolute``).
    """
    network, x, _ = resolve(model, images)
    maps = _check_maps(maps, x)
    generator = resolve_rng(rng, seed)
    explain = _method_call({"method": method, "method_options": method_options})
    with evaluation_mode(network):
        targets = resolve_targets(network, x, target, batch_budget(x, batch_size))
    randomised = copy.deepcopy(network)
    names = [n for n in leaf_layer_names(randomised) if randomised.get_module(n).params]
    reference = np.abs(maps) if absolute else maps
    done, correlations = [], []
    for name in reversed(names):
        _reinitialise(randomised.get_module(name), generator)
        done.append(name)
        other = np.asarray(explain(randomised, x, targets))
        correlations.append(spearman(reference, np.abs(other) if absolute else other))
    return RandomisationCurve(done, np.stack(correlations, axis=1))


# -- infidelity and sensitivity ---------------------------------------------------------------------

def _infidelity(network, x, maps, targets, o, batch) -> np.ndarray:
    samples = check_int(o.get("samples", 10), "samples", minimum=1)
    noise = check_real(o.get("noise", 0.1), "noise", minimum=0.0)
    score = check_choice(o.get("score", "logit"), "score", ("probability", "logit"))
    rng = resolve_rng(o.get("rng"), o.get("seed"))
    phi = maps[:, None] if maps.ndim == 3 else maps                              # (N, 1 or C, H, W)
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    clean = _score(network, x, targets, score, batch)
    dots, diffs = np.empty((len(x), samples)), np.empty((len(x), samples))
    image_of, sample_of = np.repeat(np.arange(len(x)), samples), np.tile(np.arange(samples), len(x))
    for s in batches(len(image_of), batch):
        rows, j = image_of[s], sample_of[s]
        pert = rng.standard_normal((len(rows),) + x.shape[1:]) * sigma[rows, None, None, None]
        dots[rows, j] = (pert * phi[rows]).reshape(len(rows), -1).sum(axis=1)
        perturbed = (x[rows] - pert).astype(x.dtype)
        diffs[rows, j] = clean[rows] - _score(network, perturbed, targets[rows], score, batch)
    if o.get("normalize", False):
        beta = np.divide((dots * diffs).sum(1), (dots * dots).sum(1), out=np.zeros(len(x)),
                         where=(dots * dots).sum(1) > 0)
        dots = beta[:, None] * dots
    return ((dots - diffs) ** 2).mean(axis=1)


def _sensitivity(network, x, maps, targets, o) -> np.ndarray:
    samples = check_int(o.get("samples", 10), "samples", minimum=1)
    radius = check_real(o.get("radius", 0.02), "radius", minimum=0.0)
    rng = resolve_rng(o.get("rng"), o.get("seed"))
    explain = _method_call(o)
    r = radius * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))[:, None, None, None]
    norm = np.sqrt((maps.astype(np.float64) ** 2).reshape(len(x), -1).sum(axis=1))
    norm = np.where(norm > 0, norm, 1.0)                                         # Captum: 0 -> 1
    worst = np.zeros(len(x))
    for _ in range(samples):
        noisy = (x + rng.uniform(-1.0, 1.0, x.shape) * r).astype(x.dtype)
        other = np.asarray(explain(network, noisy, targets), dtype=np.float64)
        change = np.sqrt(((other - maps) ** 2).reshape(len(x), -1).sum(axis=1)) / norm
        worst = np.maximum(worst, change)
    return worst


def faithfulness(model, images, maps, metric: str = "deletion", target=None, *,
                 batch_size: int | None = None, **options) -> np.ndarray:
    """One faithfulness score per image (N,) float64; ``METRICS[metric]["better"]`` says which
    way is better. Options (a metric refuses the others):

    - deletion / insertion: ``steps`` (50), ``baseline`` ("black"; "blur", "mean", a number or
      an array), ``blur_sigma`` (pixels), ``score`` ("probability" or "logit");
    - road_morf / road_lerf / road: ``fractions`` (0.1 .. 0.9), ``noise`` (0.01, pixel units
      with a Classifier, model units with a Module), ``score``, ``rng`` / ``seed``;
    - randomisation: ``method`` (required), ``method_options``, ``absolute`` (True), ``rng`` / ``seed``;
    - infidelity: ``samples`` (10), ``noise`` (0.1 of the range), ``normalize`` (False),
      ``score`` ("logit"), ``rng`` / ``seed``; ``maps`` may be (N, C, H, W) attributions;
    - sensitivity: ``method`` (required), ``method_options``, ``samples`` (10), ``radius``
      (0.02 of the range), ``rng`` / ``seed``.
    """
    _check_options(metric, options)
    if metric in _CURVES:
        return faithfulness_curves(model, images, maps, metric, target, batch_size=batch_size, **options).auc
    if metric == "road":
        generator = resolve_rng(options.get("rng"), options.get("seed"))
        shared = {k: v for k, v in options.items() if k not in ("rng", "seed")}
        morf, lerf = (faithfulness_curves(model, images, maps, m, target, batch_size=batch_size,
                                          rng=generator, **shared).auc for m in ("road_morf", "road_lerf"))
        return (lerf - morf) / 2
    if metric == "randomisation":
        curve = randomisation_curve(model, images, maps, options.get("method"), target,
                                    method_options=options.get("method_options"),
                                    absolute=options.get("absolute", True), rng=options.get("rng"),
                                    seed=options.get("seed"), batch_size=batch_size)
        return curve.correlations[:, -1]
    network, x, _ = resolve(model, images)
    maps = _check_maps(maps, x, channels=metric == "infidelity")
    batch = batch_budget(x, batch_size)
    with evaluation_mode(network):
        targets = resolve_targets(network, x, target, batch)
        if metric == "infidelity":
            return _infidelity(network, x, maps, targets, options, batch)
    return _sensitivity(network, x, maps, targets, options)
