"""Attribution methods side by side, as ``convscope visualize`` runs them: their maps at the CLI's
settings (:func:`attribution_maps`, shared by ``saliency`` and ``faithfulness``) and how
faithful each map is (:func:`faithfulness_output`): deletion, insertion and ROAD scores per
image, the curves behind them, and figures of the three.

Every method goes through the front door, ``attribute(clf, images, method, ...)``, with the
photo-size settings of :mod:`~convscope.visualize.techniques` (SmoothGrad's samples,
occlusion's window, RISE's masks); integrated gradients is
:func:`~convscope.visualize.attribution.integrated_gradients` (the trapezoid rule, so its
completeness gap is reported). "random" is the baseline map, uniform noise drawn from
``--seed``: a method that does not beat it is not faithful to the model. All methods explain
the same classes, the predicted ones or ``--class``.

The maps scored are the signed ones, channels summed (``attribute``'s default
``reduce="sum"``): pixels are removed or inserted most positive first (ties in pixel order),
the probability of the explained class is the score, deletion and insertion start from / fill
with black, and the ROAD curves of each method share one generator seeded with ``--seed``
(as ``faithfulness(metric="road", seed=...)``), so every method sees the same imputation noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers import softmax
from . import render
from .attribution import IGResult, integrated_gradients
from .context import RANDOM, Context, Output
from .core import batch_limit, last_block
from .display import normalize_map
from .faithfulness import METRICS, faithfulness_curves
from .methods import METHODS, attribute, reduce_channels

__all__ = ["Attributions", "attribution_maps", "method_label", "faithfulness_output", "FAITHFULNESS_METHODS",
           "FAITHFULNESS_METRICS"]

FAITHFULNESS_METHODS = ("gradient", "input_x_gradient", "integrated_gradients", "grad_cam", "occlusion", RANDOM)
FAITHFULNESS_METRICS = ("deletion", "insertion", "road")
_LABELS = {"guided_backprop": "guided backprop", "smoothgrad": "SmoothGrad", "integrated_gradients":
           "integrated gradients", "input_x_gradient": "input x gradient", "grad_cam": "Grad-CAM",
           "guided_grad_cam": "guided Grad-CAM", "lrp_epsilon": "LRP-epsilon", "lrp_alpha_beta": "LRP-alpha-beta",
           "deeplift": "DeepLIFT", "rise": "RISE", "grad_cam_plus_plus": "Grad-CAM++", "xgrad_cam": "XGrad-CAM",
           "layer_cam": "LayerCAM", "hires_cam": "HiResCAM", "score_cam": "Score-CAM", "ablation_cam": "Ablation-CAM",
           "eigen_cam": "Eigen-CAM", RANDOM: "random (baseline)"}
_CURVES = {"deletion": ("deletion",), "insertion": ("insertion",), "road_morf": ("road_morf",),
           "road_lerf": ("road_lerf",), "road": ("road_morf", "road_lerf")}      # metric -> the curves behind it
_X_LABELS = {"deletion": "fraction of pixels removed (set to black)", "insertion": "fraction of pixels inserted "
             "onto black", "road_morf": "fraction imputed, most relevant first", "road_lerf": "fraction imputed, "
             "least relevant first", "road": "fraction imputed (MoRF solid, LeRF dashed)"}


def method_label(name: str, layer: str | None = None) -> str:
    """How a method is called in figures: "guided backprop", "Grad-CAM conv2", ..."""
    text = _LABELS.get(name, name.replace("_", " "))
    return f"{text} {layer}" if layer and name in METHODS and METHODS[name].layer else text


def _reads_layer(name: str) -> bool:
    return name != RANDOM and METHODS[name].layer


def _options(ctx: Context, name: str, settings: dict) -> dict:
    """The method's options at the CLI's settings (the costly counts shrink for photos)."""
    if name == "smoothgrad":
        return {"samples": settings["smoothgrad_samples"]}
    if name == "occlusion" and settings["occlusion_fraction"]:
        side = max(4, min(ctx.clf.input_shape[1:]) // settings["occlusion_fraction"])
        return {"window": side, "stride": max(1, side // 2)}
    if name == "rise" and settings["rise_masks"]:
        return {"masks": settings["rise_masks"]}
    if name == "integrated_gradients":
        return {"steps": settings["ig_steps"], "rule": "trapezoid"}
    return {}


@dataclass
class Attributions:
    """``maps``: method -> its raw attributions (N, C, H, W), (N, 1, H, W) for map methods and
    "random"; ``targets`` (N,) the classes explained; ``probabilities`` (N, K); ``layer`` the
    layer the CAM methods read (None when none is chosen); ``options`` what each method ran
    with; ``ig`` integrated gradients' result when it was chosen (its completeness gap)."""

    maps: dict
    targets: np.ndarray
    probabilities: np.ndarray
    layer: str | None
    options: dict
    ig: IGResult | None = None


def attribution_maps(ctx: Context, names, settings: dict) -> Attributions:
    """Each method of ``names`` on the chosen images, explaining ``ctx.target`` or each image's
    predicted class; ``settings`` as :data:`~convscope.visualize.techniques.SMALL_SETTINGS`.
    Each method with randomness gets its own generator seeded with ``ctx.seed``, so a map does
    not depend on which other methods were chosen."""
    raw = ctx.raw()
    reads = any(_reads_layer(n) for n in names)
    if ctx.layer is not None and not reads:
        raise ValueError(f"--layer {ctx.layer!r}: none of the methods chosen ({', '.join(names)}) reads a layer; "
                         f"the CAM methods and guided_grad_cam do")
    layer = None if not reads else ctx.layer if ctx.layer is not None else last_block(ctx.model)
    logits = ctx.clf.logits(raw, batch_size=batch_limit(ctx.clf.input_shape, 64, forward_only=True))
    targets = logits.argmax(axis=1) if ctx.target is None else np.full(len(logits), ctx.target)
    maps, options, ig = {}, {}, None
    for name in names:
        options[name] = _options(ctx, name, settings)
        rng = np.random.default_rng(ctx.seed)
        if name == RANDOM:
            maps[name] = rng.random((len(targets), 1) + tuple(ctx.clf.input_shape[1:]))       # (N, 1, H, W)
        elif name == "integrated_gradients":
            ig = integrated_gradients(ctx.clf, raw, targets, steps=settings["ig_steps"])
            maps[name] = ig.attributions
        else:
            maps[name] = attribute(ctx.clf, raw, name, targets, layer if _reads_layer(name) else None,
                                   reduce="none", rng=rng, **options[name])
    return Attributions(maps, targets, softmax(logits.astype(np.float64)), layer, options, ig)


# -- faithfulness -----------------------------------------------------------------------------------

def _curve_options(curve: str, settings: dict, rng: np.random.Generator) -> dict:
    if curve in ("deletion", "insertion"):
        return {"steps": settings["deletion_steps"]}
    fractions = {} if settings["road_fractions"] is None else {"fractions": settings["road_fractions"]}
    return {"rng": rng, **fractions}


def _score(ctx: Context, maps: np.ndarray, targets: np.ndarray, metrics, settings: dict) -> dict:
    """metric -> {"better", "mean", "per_image", "curves": {curve: {"fractions", "scores"}}} for one
    map (N, H, W)."""
    raw, curves = ctx.raw(), {}
    rng = np.random.default_rng(ctx.seed)                            # shared by this map's ROAD curves
    for curve in ("deletion", "insertion", "road_morf", "road_lerf"):
        if any(curve in _CURVES[m] for m in metrics):
            curves[curve] = faithfulness_curves(ctx.clf, raw, maps, curve, targets,
                                                **_curve_options(curve, settings, rng))
    entries = {}
    for metric in metrics:
        if metric == "road":
            per_image = (curves["road_lerf"].auc - curves["road_morf"].auc) / 2          # (LeRF - MoRF) / 2
        else:
            per_image = curves[metric].auc
        shown = {c: {"fractions": curves[c].fractions.tolist(), "scores": curves[c].scores.tolist()}
                 for c in _CURVES[metric]}
        entries[metric] = {"better": METRICS[metric]["better"], "mean": float(np.mean(per_image)),
                           "per_image": per_image.tolist(), "curves": shown}
    return entries


def faithfulness_output(ctx: Context, settings: dict) -> Output:
    """The ``faithfulness`` technique: ``ctx.methods`` (default :data:`FAITHFULNESS_METHODS`) scored
    by ``ctx.metrics`` (default :data:`FAITHFULNESS_METRICS`) on the chosen images."""
    from ..progress import Progress
    names = ctx.methods or FAITHFULNESS_METHODS
    metrics = ctx.metrics or FAITHFULNESS_METRICS
    found = attribution_maps(ctx, names, settings)
    scores = {}
    bar = Progress(len(names), "faithfulness", unit="method", enabled=ctx.progress)
    for name in names:
        scores[name] = _score(ctx, reduce_channels(found.maps[name], "sum"), found.targets, metrics, settings)
        bar.update(1)
    bar.close()
    labels = {name: method_label(name, found.layer) for name in names}
    figures = {"faithfulness_curves": _curves_figure(scores, labels, metrics, len(ctx.images)),
               "faithfulness_table": _table_figure(scores, labels, metrics, len(ctx.images)),
               "faithfulness_maps": _maps_figure(ctx, found, labels)}
    numbers = {"methods": list(names), "explained_classes": found.targets.tolist(),
               "true_classes": ctx.true_labels(), "cam_layer": found.layer, "method_options": found.options,
               "metrics": {m: {"better": METRICS[m]["better"], "doc": METRICS[m]["doc"]} for m in metrics},
               "settings": {"map": "signed, channels summed; pixels taken most positive first",
                            "score": "probability of the explained class", "baseline": "black",
                            "deletion_steps": settings["deletion_steps"],
                            "road_fractions": settings["road_fractions"] or "0.1 .. 0.9", "road_noise": 0.01,
                            "seed": ctx.seed},
               "scores": scores}
    table = "; ".join(f"{labels[n]} " + " / ".join(f"{scores[n][m]['mean']:.3f}" for m in metrics) for n in names)
    heads = " / ".join(f"{m} ({METRICS[m]['better']} is better)" for m in metrics)
    caption = (f"How faithful each map is to the model, on {len(ctx.images)} image(s): {heads}, means: {table}. "
               f"The random map is the baseline; a method that does not beat it is not faithful here.")
    return Output(figures, numbers, caption)


# -- figures ------------------------------------------------------------------------------------------

def _colours(names) -> dict:
    cycle = render.pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    others = [n for n in names if n != RANDOM]
    colours = {n: cycle[i % len(cycle)] for i, n in enumerate(others)}
    colours[RANDOM] = "0.45"                                          # the baseline in gray
    return colours


def _curves_figure(scores: dict, labels: dict, metrics, count: int):
    """One panel per metric, one line per method: the mean score over the images at each fraction."""
    plt = render.pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6), squeeze=False)
    colours = _colours(scores)
    for ax, metric in zip(axes[0], metrics):
        for name, entry in scores.items():
            for curve, style in zip(_CURVES[metric], ("-", "--")):
                c = entry[metric]["curves"][curve]
                ax.plot(c["fractions"], np.mean(c["scores"], axis=0), style, color=colours[name], lw=1.2,
                        label=labels[name] if style == "-" else None)
        ax.set_title(f"{metric}: {METRICS[metric]['better']} is better", fontsize=9)
        ax.set_xlabel(_X_LABELS[metric], fontsize=7)
        ax.set_ylabel(f"P(explained class), mean of {count}", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=7, frameon=False)
    fig.suptitle("faithfulness curves: the mean score of the explained class as pixels are removed, inserted or "
                 "imputed in each map's order", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _table_figure(scores: dict, labels: dict, metrics, count: int):
    """The mean scores as a table, the best of each column in bold."""
    plt = render.pyplot()
    names = list(scores)
    values = np.array([[scores[n][m]["mean"] for m in metrics] for n in names])             # (methods, metrics)
    fig, ax = plt.subplots(figsize=(2.2 + 1.5 * len(metrics), 0.5 + 0.28 * (len(names) + 1)))
    ax.axis("off")
    heads = [f"{m} ({'lower' if METRICS[m]['better'] == 'lower' else 'higher'} better)" for m in metrics]
    table = ax.table([[f"{v:.3f}" for v in row] for row in values], rowLabels=[labels[n] for n in names],
                     colLabels=heads, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    for j, metric in enumerate(metrics):
        best = int(np.argmin(values[:, j]) if METRICS[metric]["better"] == "lower" else np.argmax(values[:, j]))
        table[best + 1, j].get_text().set_fontweight("bold")
    ax.set_title(f"faithfulness, mean over {count} image(s); the best of each column in bold", fontsize=9)
    fig.tight_layout()
    return fig


def _maps_figure(ctx: Context, found: Attributions, labels: dict):
    """The maps scored, one row per image: signed, channels summed, each scaled by its max |value|."""
    pictures = render.pictures(ctx.pictures())
    panels = []
    for i, image in enumerate(ctx.images):
        panels.append(render.Panel(pictures[i], f"{ctx.name(image)}: class {ctx.label(int(found.targets[i]))}",
                                   picture=True))
        panels += [render.Panel(normalize_map(reduce_channels(m[i:i + 1], "sum"), "signed")[0], labels[name],
                                cmap="bwr", vmin=-1, vmax=1) for name, m in found.maps.items()]
    return render.panel_grid(panels, ncols=1 + len(found.maps), colorbar=True,
                             title="the maps scored: signed (red for the class, blue against), channels summed, "
                                   "scaled per map")
