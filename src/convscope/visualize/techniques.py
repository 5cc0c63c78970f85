"""Each §3 technique run on a classifier and its images: the figures and the numbers behind them.

The CLI (``convscope visualize TECHNIQUE``) writes them as PNG files and ``TECHNIQUE.json``;
the HTML report embeds them. A technique is a function ``run_X(ctx) -> Output`` over a
:class:`~convscope.visualize.context.Context`; each calls the library through its front
door, ``technique(ctx.clf, images)`` (test images as uint8 arrays, or image files), and labels
what its figures show: the classes explained and the true labels, the numbers under each
image and what they are. Only ``neighbors`` and ``dissect`` (and the sparsity part of
``activations``, which otherwise uses the chosen images) read the dataset.

Photo-sized models (inputs over 64 px, ImageNet's 224) get settings that keep one CLI run to
minutes on two cores (:data:`LARGE_SETTINGS`): integrated gradients with 16 steps (its
completeness gap is reported), SmoothGrad with 8 samples, occlusion with a 1/7-of-the-image
window slid by half of it (169 positions at 224), RISE with 256 masks, faithfulness curves of 16
deletion / insertion steps and ROAD at 25, 50 and 75 %, 4 actmax units, up to 200 training images
searched by the neighbours, a 1/8-of-the-image shift, and dissection figures for the first
64 units (all units are in its numbers; ``--unit`` shows any one); actmax and inversion take their
photo defaults (64 steps, jitter, zoom, blur; :func:`~convscope.visualize.actmax.defaults_for`).

``saliency`` and ``faithfulness`` run the attribution methods of ``--methods`` (any names of
:data:`~convscope.visualize.methods.METHODS`, or "random"; defaults :data:`SALIENCY_METHODS` and
:data:`~convscope.visualize.comparison.FAITHFULNESS_METHODS`) through
:mod:`~convscope.visualize.comparison`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import jsonable
from . import render
from .context import Context, Output
from .core import batch_limit, feature_layer, first_conv, last_conv
from .display import normalize_map, to_display, to_pixels
from .probe import output_shape_of

__all__ = ["TECHNIQUES", "UNIT_TECHNIQUES", "CLASS_TECHNIQUES", "METHOD_TECHNIQUES", "METRIC_TECHNIQUES",
           "SALIENCY_METHODS", "run_technique"]

UNIT_TECHNIQUES = ("filters", "activations", "deconv", "actmax", "dissect")     # those that take --unit
CLASS_TECHNIQUES = ("actmax", "saliency", "faithfulness")                       # those that take --class
METHOD_TECHNIQUES = ("saliency", "faithfulness")                                # those that take --methods
METRIC_TECHNIQUES = ("faithfulness",)                                           # those that take --metrics
SALIENCY_METHODS = ("gradient", "guided_backprop", "smoothgrad", "integrated_gradients", "grad_cam", "occlusion")
PAGE = 16                      # units per figure of the dissection
# Photo-sized models (see the module docstring): what each costly choice becomes, per image.
SMALL_SETTINGS = dict(ig_steps=50, smoothgrad_samples=25, occlusion_fraction=None, rise_masks=None, actmax_units=8,
                      train_sample=10000, shift_fraction=None, dissect_units_shown=None, deletion_steps=50,
                      road_fractions=None)
LARGE_SETTINGS = dict(ig_steps=16, smoothgrad_samples=8, occlusion_fraction=7, rise_masks=256, actmax_units=4,
                      train_sample=200, shift_fraction=8, dissect_units_shown=64, deletion_steps=16,
                      road_fractions=(0.25, 0.5, 0.75))


def _settings(ctx: Context) -> dict:
    return LARGE_SETTINGS if ctx.large else SMALL_SETTINGS


def _kind(shape: tuple[int, ...]) -> str:
    return "channels" if len(shape) == 3 else "features"


def _stem(ctx: Context, i: int) -> str:
    """The file-name part for the i-th chosen image: its test index, or "<i>_<file stem>"."""
    image = ctx.images[i]
    if not ctx.from_files:
        return str(image)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(image).stem)[:40]
    return f"{i}_{stem}"


def _described(ctx: Context, image) -> str:
    """"test image #3 (true 7)" or the photo's file name, for figure titles."""
    return ctx.name(image) if ctx.from_files else f"test image {ctx.title(image)}"


def _picture_titles(ctx: Context) -> list[str]:
    return [ctx.title(i) for i in ctx.images]


def run_filters(ctx: Context) -> Output:
    from .features import filter_grid
    grid = filter_grid(ctx.clf, ctx.layer)
    unit = ctx.check_unit(grid.layer, len(grid.weights), "filters")
    shown = range(len(grid.tiles)) if unit is None else [unit]
    fig = render.image_grid(grid.tiles[list(shown)], [f"filter {i}" for i in shown], picture=True,
                            title=f"filters of {grid.layer} {tuple(grid.weights.shape)}, each scaled to its own range",
                            ncols=min(8, len(shown)))
    norms = np.sqrt((grid.weights.astype(np.float64) ** 2).reshape(len(grid.weights), -1).sum(axis=1))
    return Output({"filters": fig}, {"layer": grid.layer, "weight_shape": list(grid.weights.shape),
                                     "filter_norms": norms.tolist(), "shown": list(shown)},
                  "First-layer filters, each scaled to its own range (edge and blob detectors).")


def run_activations(ctx: Context) -> Output:
    from .features import feature_maps, sparsity
    layer = ctx.layer if ctx.layer is not None else first_conv(ctx.model)
    maps = feature_maps(ctx.clf, ctx.raw(), layer)
    unit = ctx.check_unit(layer, maps.shape[1], _kind(maps.shape[1:]))
    figures = {}
    channels = range(maps.shape[1]) if unit is None else [unit]
    if maps.ndim == 4:
        for i, image in enumerate(ctx.images[:4]):
            shown = list(channels)[:64]                                   # a 2048-channel map: the first 64
            figures[f"activations_{_stem(ctx, i)}"] = render.image_grid(
                maps[i, shown], [f"ch {c}" for c in shown], colorbar=True, cmap="viridis",
                title=f"{layer} on {_described(ctx, image)}"
                      + (f" (channels 0-{shown[-1]} of {maps.shape[1]})" if len(shown) < len(channels) else ""))
    else:
        shown = maps[:, list(channels)[:64]]
        figures["activations"] = render.matrix_plot(shown, [ctx.name(i) for i in ctx.images], list(channels)[:64],
                                                    f"{layer} activations", "feature", "image",
                                                    annotate=shown.size <= 100)
    if ctx.has_data:
        rows, over = sparsity(ctx.clf, ctx.raw(ctx.sample_indices())), f"{len(ctx.sample_indices())} test images"
    else:
        rows, over = sparsity(ctx.clf, ctx.raw()), f"the {len(ctx.images)} image(s) shown (no dataset given)"
    figures["sparsity"] = render.bar_chart([r.layer for r in rows], [r.fraction_zero for r in rows],
                                           f"fraction of zero activations by depth, over {over}", "fraction zero")
    return Output(figures, {"layer": layer, "map_shape": list(maps.shape[1:]), "unit": unit,
                            "sparsity": [{"layer": r.layer, "type": r.type, "fraction_zero": float(r.fraction_zero)}
                                         for r in rows]},
                  "Feature maps of a layer, and how sparse the responses become with depth.")


def run_neighbors(ctx: Context, k: int = 5, train_sample: int | None = None, shift: int | None = None) -> Output:
    from .neighbors import nearest_neighbors, shift_images, translation_example
    data = ctx.dataset("neighbors (a search of the training images)")
    settings = _settings(ctx)
    n = min(settings["train_sample"] if train_sample is None else train_sample, len(data.train_images))
    if shift is None:
        fraction = settings["shift_fraction"]
        shift = 3 if fraction is None else max(3, ctx.clf.input_shape[2] // fraction)
    result = nearest_neighbors(ctx.clf, data.train_images[:n], data.train_labels[:n], ctx.raw(),
                               ctx.true_labels() if ctx.same_classes() else None, layer=ctx.layer, k=k)

    def train_pictures(idx):
        return ctx.clf.pixels(data.train_images[idx]).astype(np.float32) / 255.0

    query = ctx.pictures()
    panels, titles = [], []
    for q, image in enumerate(ctx.images):
        panels.append(query[q])
        true = ctx.true_label(image)
        titles.append(f"query {ctx.name(image)}" + ("" if true is None else f" ({true})"))
        for kind, idx in (("feat", result.feature_indices[q]), ("pix", result.pixel_indices[q])):
            panels.extend(train_pictures(idx))
            titles += [f"{kind}: {ctx.data_label(int(data.train_labels[j]))}" for j in idx]
    if result.feature_agreement is None:
        agreement = "(no label agreement: the queries have no labels in the dataset's classes)"
    else:
        agreement = (f"label agreement of the {k} nearest: feature space {result.feature_agreement:.2f}, "
                     f"pixel space {result.pixel_agreement:.2f}")
    fig = render.image_grid(render.pictures(np.stack(panels)), titles, ncols=1 + 2 * k, picture=True,
                            title=f"nearest of {n} training images: {k} in feature space ({result.layer}) | "
                                  f"{k} in pixel space\n{agreement}")
    reference = ctx.raw(ctx.sample_indices()[:200])
    moved = translation_example(ctx.clf, ctx.raw(), shift, layer=ctx.layer, reference=reference)
    shifted = shift_images(query, shift)
    panels = [p for pair in zip(render.pictures(query), render.pictures(shifted)) for p in pair]
    titles = []
    for q, image in enumerate(ctx.images):
        titles += [ctx.name(image), f"shifted {shift} px\npixel {moved.pixel_relative[q]:.2f}, "
                                    f"feature {moved.feature_relative[q]:.2f}"]
    translation = render.image_grid(
        np.stack(panels), titles, ncols=min(8, len(panels)), picture=True, cell=2.0,
        title=f"a shifted image against the typical distance between two test images (1 = as far as another "
              f"image):\nmedian pixel {moved.pixel_relative_median:.2f}, feature ({moved.layer}) "
              f"{moved.feature_relative_median:.2f}")
    numbers = {"layer": result.layer, "k": k, "train_images_searched": n,
               "feature_agreement": result.feature_agreement, "pixel_agreement": result.pixel_agreement,
               "feature_neighbors": result.feature_indices, "pixel_neighbors": result.pixel_indices,
               "translation": moved}
    return Output({"neighbors": fig, "translation": translation}, jsonable(numbers),
                  "Label agreement of the k nearest training images in feature space vs pixel space; a shifted "
                  "image stays near its original in feature space.")


def run_deconv(ctx: Context) -> Output:
    from .deconv import deconv
    layer = ctx.layer if ctx.layer is not None else last_conv(ctx.model)
    shape = output_shape_of(ctx.model, layer, ctx.clf.input_shape)
    unit = ctx.check_unit(layer, shape[0], _kind(shape))
    result = deconv(ctx.clf, ctx.raw(), layer, unit=unit)
    where = ([f" at ({r}, {c})" for r, c in result.positions] if result.positions is not None
             else [""] * len(ctx.images))
    panels = render.pictures(ctx.pictures()) + list(to_display(result.projections))
    titles = _picture_titles(ctx) + [f"unit {int(u)}{w}\nactivation {a:.2f}"
                                     for u, w, a in zip(result.units, where, result.activations)]
    fig = render.image_grid(np.stack(panels), titles, ncols=len(ctx.images), picture=True,
                            title=f"deconvnet projections of the strongest activation in {layer} "
                                  f"(each scaled to its own range)")
    return Output({"deconv": fig}, jsonable({"layer": layer, "units": result.units, "positions": result.positions,
                                             "activations": result.activations}),
                  "Zeiler & Fergus deconvnet: one activation projected back to pixel space.")


def run_actmax(ctx: Context) -> Output:
    from ..progress import Progress
    from .actmax import activation_maximization
    layer = ctx.layer if ctx.layer is not None else ""
    shape = output_shape_of(ctx.model, layer, ctx.clf.input_shape)
    kind = "classes" if layer == "" else _kind(shape)
    ctx.check_unit(layer, shape[0], kind)
    if ctx.unit is not None:
        units = [ctx.unit]
    elif ctx.target is not None:
        if layer != "":
            raise ValueError(f"--class is for the logits; to maximise a unit of {layer!r} give --unit")
        units = [ctx.target]
    elif layer == "" and shape[0] > 10:                          # ImageNet's 1000 classes: a few, spread out
        units = sorted({int(u) for u in np.linspace(0, shape[0] - 1, _settings(ctx)["actmax_units"])})
    else:
        units = list(range(shape[0] if layer == "" else min(_settings(ctx)["actmax_units"], shape[0])))
    images, numbers = [], []
    bar = Progress(len(units), "actmax", unit="unit", enabled=ctx.progress)
    for unit in units:
        result = activation_maximization(ctx.clf, layer, unit, seed=ctx.seed, **ctx.steps_option())
        images.append(result.image)
        numbers.append({"unit": int(unit), "activation": float(result.activation)})
        bar.update(1)
    bar.close()
    what = "class score (logit)" if layer == "" else f"mean activation of the {layer} unit"
    titles = [f"{'class ' + ctx.label(u) if layer == '' else 'unit ' + str(u)}: activation {n['activation']:.1f}"
              for u, n in zip(units, numbers)]
    fig = render.image_grid(render.pictures(to_pixels(np.stack(images), ctx.clf.normalizer)), titles, picture=True,
                            title=f"activation maximisation (seed {ctx.seed}); activation = the {what} on the image")
    return Output({"actmax": fig}, {"layer": layer or "logits", "seed": ctx.seed, "units": numbers},
                  "Inputs synthesised by gradient ascent to excite one unit, with image priors.")


def run_saliency(ctx: Context) -> Output:
    from .comparison import attribution_maps, method_label
    names = ctx.methods or SALIENCY_METHODS
    settings = _settings(ctx)
    found = attribution_maps(ctx, names, settings)
    pictures = render.pictures(ctx.pictures())
    figures = {}
    for i, image in enumerate(ctx.images):
        explained = int(found.targets[i])
        how = "chosen with --class" if ctx.target is not None else "the predicted class"
        panels = [render.Panel(pictures[i], ctx.name(image), picture=True)]
        panels += [render.Panel(normalize_map(m[i:i + 1], "abs")[0], method_label(name, found.layer), cmap="inferno",
                                vmin=0, vmax=1) for name, m in found.maps.items()]
        true = ctx.true_label(image)
        what = ctx.name(image) if true is None else f"test image {ctx.name(image)}: true class {true}"
        figures[f"saliency_{_stem(ctx, i)}"] = render.panel_grid(
            panels, ncols=len(panels), colorbar=True,
            title=f"{what}; explaining class {ctx.label(explained)} ({how}, p = "
                  f"{found.probabilities[i, explained]:.2f}); |attribution| scaled per map")
    numbers = {"images": ctx.images, "methods": list(names), "grad_cam_layer": found.layer,
               "explained_classes": found.targets, "true_classes": ctx.true_labels(),
               "method_options": found.options}
    if "smoothgrad" in names:
        numbers["smoothgrad_samples"] = settings["smoothgrad_samples"]
    if "occlusion" in names:
        numbers["occlusion"] = found.options["occlusion"] or "default (1/14 of the image, stride half of it)"
    if found.ig is not None:
        numbers.update({"integrated_gradients_steps": settings["ig_steps"],
                        "integrated_gradients_completeness_gap": found.ig.completeness_gap,
                        "integrated_gradients_score_difference": found.ig.scores - found.ig.baseline_scores})
    return Output(figures, jsonable(numbers),
                  ", ".join(method_label(n, found.layer) for n in names) + ": each map's |attribution|, scaled "
                  "per map.")


def run_faithfulness(ctx: Context) -> Output:
    from .comparison import faithfulness_output
    return faithfulness_output(ctx, _settings(ctx))


def run_inversion(ctx: Context) -> Output:
    from .inversion import invert
    layer = ctx.layer if ctx.layer is not None else feature_layer(ctx.model)
    result = invert(ctx.clf, ctx.raw(), layer, seed=ctx.seed, **ctx.steps_option())
    predicted = ctx.clf.predict(result.images, model_space=True,
                                batch_size=batch_limit(ctx.clf.input_shape, 64, forward_only=True)).argmax(axis=1)
    panels = render.pictures(ctx.pictures()) + render.pictures(to_pixels(result.images, ctx.clf.normalizer))
    rebuilt = [f"seen as {ctx.label(int(p))}\nrel. error {e:.2f}" if np.isfinite(e) else
               f"seen as {ctx.label(int(p))}\ncode all zero" for p, e in zip(predicted, result.relative_error)]
    fig = render.image_grid(np.stack(panels), _picture_titles(ctx) + rebuilt, ncols=len(ctx.images), picture=True,
                            title=f"images rebuilt from their code at {layer}; rel. error = "
                                  f"|code(rebuilt) - code(original)| / |code(original)|")
    labels = ctx.true_labels()                                   # None for photos
    same = float(np.mean(predicted == labels)) if labels is not None and ctx.same_classes() else None
    return Output({"inversion": fig}, jsonable({"layer": layer, "relative_error": result.relative_error,
                                                "reconstruction_class": predicted, "same_class_fraction": same}),
                  "Mahendran & Vedaldi: images reconstructed from a layer's representation alone.")


def _unit_label(ctx: Context, row: dict) -> str:
    if "selectivity" not in row:                                    # a sample of one class: no selectivity
        return f"unit {row['unit']}: top response {row['top_activation']:.2f}"
    sel = f"sel. {row['selectivity']:.2f}" if np.isfinite(row["selectivity"]) else "sel. undefined"
    return f"unit {row['unit']}: prefers {ctx.data_label(row['preferred_class'])}, {sel}"


def run_dissect(ctx: Context, top: int = 6) -> Output:
    from .dissect import dissect
    layer = ctx.layer if ctx.layer is not None else last_conv(ctx.model)
    unit = ctx.check_unit(layer, output_shape_of(ctx.model, layer, ctx.clf.input_shape)[0], "units")
    data = ctx.dataset("dissect (unit statistics over test images)")
    idx = ctx.sample_indices()
    labels = data.test_labels[idx]
    result = dissect(ctx.clf, ctx.raw(idx), layer, labels=labels if len(np.unique(labels)) > 1 else None,
                     top=min(top, len(idx)))
    rows = result.rows()
    limit = _settings(ctx)["dissect_units_shown"]
    shown = rows[:limit] if unit is None else [rows[unit]]          # (--unit picks any of them)
    pictures = render.pictures(ctx.pictures(idx))
    figures = {}
    for page, start in enumerate(range(0, len(shown), PAGE), start=1):
        part = shown[start:start + PAGE]
        labels = [_unit_label(ctx, r) for r in part]
        stem = "dissect_top_images" if len(shown) <= PAGE else f"dissect_top_images_{page}"
        figures[stem] = render.mosaic([[pictures[j] for j in result.top_indices[r["unit"]]] for r in part], labels,
                                      title=f"test images that excite units of {layer} most (units {part[0]['unit']}"
                                            f"-{part[-1]['unit']} of {len(rows)}; sel. = class selectivity)")
    units = [r["unit"] for r in shown] if result.class_means is not None else []
    for page, start in enumerate(range(0, len(units), 4 * PAGE), start=1):
        part = units[start:start + 4 * PAGE]
        stem = "dissect_selectivity" if len(units) <= 4 * PAGE else f"dissect_selectivity_{page}"
        figures[stem] = render.matrix_plot(result.class_means[part], part,
                                           [ctx.data_label(int(c)) for c in result.classes],
                                           f"mean response per class, {layer}", "class", "unit", annotate=False)
    return Output(figures, {"layer": layer, "images": len(idx), "units": jsonable(rows)},
                  "Semantic interpretation of units: top images and class selectivity.")


TECHNIQUES = {"filters": run_filters, "activations": run_activations, "neighbors": run_neighbors,
              "deconv": run_deconv, "actmax": run_actmax, "saliency": run_saliency,
              "faithfulness": run_faithfulness, "inversion": run_inversion, "dissect": run_dissect}


def run_technique(name: str, ctx: Context) -> Output:
    if name not in TECHNIQUES:
        raise ValueError(f"unknown technique {name!r}; choose one of {', '.join(TECHNIQUES)} or report")
    return TECHNIQUES[name](ctx)
