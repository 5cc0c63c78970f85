"""Each §3 technique run on a checkpoint: the figures and the numbers behind them.

The CLI (``convscope visualize TECHNIQUE``) writes them as PNG files and ``TECHNIQUE.json``;
the HTML report embeds them. A technique is a function ``run_X(ctx) -> Output`` over a
:class:`Context` holding the model, its normalisation and the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data import Dataset, Normalizer
from ..layers import Conv2d, Module
from . import render
from .probe import feature_layer, layers_of_type

__all__ = ["Context", "Output", "TECHNIQUES", "run_technique", "jsonable"]


@dataclass
class Context:
    """What every technique needs. ``images``: indices into the test split to explain."""

    model: Module
    normalizer: Normalizer
    data: Dataset
    class_names: list[str]
    images: list[int]
    layer: str | None = None
    unit: int | None = None
    target: int | None = None
    seed: int = 0
    sample: int = 1000                 # test images used for statistics (sparsity, dissection)
    steps: int | None = None           # optimisation steps of actmax / inversion (None: their defaults)
    progress: bool = True

    def x(self, indices) -> np.ndarray:
        """Test images ``indices`` in model space (N, C, H, W) float32."""
        return self.normalizer(self.data.test_images[np.asarray(indices)])

    def steps_option(self) -> dict:
        return {} if self.steps is None else {"steps": self.steps}

    def query(self) -> np.ndarray:
        return self.x(self.images)

    def sample_indices(self) -> np.ndarray:
        return np.arange(min(self.sample, len(self.data.test_images)))

    def label(self, k: int) -> str:
        return self.class_names[k] if 0 <= k < len(self.class_names) else str(k)


class _Identity:
    """A stand-in normalizer for inputs that are already in model space."""

    def __call__(self, x):
        return x


@dataclass
class Output:
    """Figures (file stem -> matplotlib Figure) and JSON-able numbers of one technique."""

    figures: dict = field(default_factory=dict)
    numbers: dict = field(default_factory=dict)
    caption: str = ""


def _convs(model: Module) -> list[str]:
    convs = layers_of_type(model, Conv2d)
    if not convs:
        raise ValueError("the model has no convolution layer; choose a layer with --layer")
    return convs


def _first_conv(model: Module) -> str:
    return _convs(model)[0]


def _last_conv(model: Module) -> str:
    return _convs(model)[-1]


def _titles(ctx: Context, prefix: str = "") -> list[str]:
    return [f"{prefix}#{i} ({ctx.label(int(ctx.data.test_labels[i]))})" for i in ctx.images]


def run_filters(ctx: Context) -> Output:
    from .features import filter_grid
    grid = filter_grid(ctx.model, ctx.layer)
    fig = render.image_grid(grid.tiles, [f"{i}" for i in range(len(grid.tiles))],
                            title=f"filters of {grid.layer} {tuple(grid.weights.shape)}", ncols=min(8, len(grid.tiles)))
    norms = np.sqrt((grid.weights.astype(np.float64) ** 2).reshape(len(grid.weights), -1).sum(axis=1))
    return Output({"filters": fig}, {"layer": grid.layer, "weight_shape": list(grid.weights.shape),
                                     "filter_norms": norms.tolist()},
                  "First-layer filters, each scaled to its own range (edge and blob detectors).")


def run_activations(ctx: Context) -> Output:
    from .features import feature_maps, sparsity
    layer = ctx.layer or _first_conv(ctx.model)
    maps = feature_maps(ctx.model, ctx.query(), layer)
    figures = {}
    if maps.ndim == 4:
        for i, index in enumerate(ctx.images[:4]):
            figures[f"activations_{index}"] = render.image_grid(
                maps[i], [f"ch {c}" for c in range(len(maps[i]))], title=f"{layer} on test image #{index}",
                colorbar=True, cmap="viridis")
    rows = sparsity(ctx.model, ctx.x(ctx.sample_indices()))
    figures["sparsity"] = render.bar_chart([r.layer for r in rows], [r.fraction_zero for r in rows],
                                           "fraction of zero activations by depth", "fraction zero")
    return Output(figures, {"layer": layer, "map_shape": list(maps.shape[1:]),
                            "sparsity": [{"layer": r.layer, "type": r.type, "fraction_zero": float(r.fraction_zero)}
                                         for r in rows]},
                  "Feature maps of a layer, and how sparse the responses become with depth.")


def run_neighbors(ctx: Context, k: int = 5, train_sample: int = 10000) -> Output:
    from .neighbors import nearest_neighbors, translation_example
    data = ctx.data
    n = min(train_sample, len(data.train_images))
    train_x = ctx.normalizer(data.train_images[:n])
    query = ctx.query()
    labels = data.test_labels[np.asarray(ctx.images)]
    result = nearest_neighbors(ctx.model, train_x, data.train_labels[:n], query, labels, layer=ctx.layer, k=k)
    panels, titles = [], []
    for q, index in enumerate(ctx.images):
        panels.append(query[q])
        titles.append(f"query #{index}")
        for kind, idx in (("feat", result.feature_indices[q]), ("pix", result.pixel_indices[q])):
            for j in idx:
                panels.append(train_x[j])
                titles.append(f"{kind} {ctx.label(int(data.train_labels[j]))}")
    fig = render.image_grid(render.to_display(np.stack(panels)), titles, ncols=1 + 2 * k,
                            title=f"nearest training images: feature space ({result.layer}) | pixel space")
    shift = translation_example(ctx.model, query, shift=3, layer=ctx.layer)
    numbers = {"layer": result.layer, "k": k, "train_images_searched": n,
               "feature_agreement": _float(result.feature_agreement), "pixel_agreement": _float(result.pixel_agreement),
               "feature_neighbors": result.feature_indices.tolist(), "pixel_neighbors": result.pixel_indices.tolist(),
               "translation": jsonable(shift)}
    return Output({"neighbors": fig}, numbers,
                  "Label agreement of the k nearest training images in feature space vs pixel space; a shifted "
                  "image stays near its original in feature space.")


def run_deconv(ctx: Context) -> Output:
    from .deconv import deconv
    layer = ctx.layer or _last_conv(ctx.model)
    query = ctx.query()
    result = deconv(ctx.model, query, layer, unit=ctx.unit)
    panels = np.concatenate([render.to_display(query), render.to_display(result.projections)])
    titles = _titles(ctx) + [f"unit {int(u)}" for u in result.units]
    fig = render.image_grid(panels, titles, ncols=len(ctx.images),
                            title=f"deconvnet projections of the strongest activation in {layer}")
    return Output({"deconv": fig}, {"layer": layer, "units": np.asarray(result.units).tolist(),
                                    "positions": None if result.positions is None else np.asarray(result.positions).tolist(),
                                    "activations": np.asarray(result.activations).tolist()},
                  "Zeiler & Fergus deconvnet: one activation projected back to pixel space.")


def run_actmax(ctx: Context) -> Output:
    from ..progress import Progress
    from .actmax import activation_maximization
    layer = ctx.layer if ctx.layer is not None else ""
    if ctx.unit is not None or ctx.target is not None:
        units = [ctx.unit if ctx.unit is not None else ctx.target]
    else:
        units = list(range(len(ctx.class_names))) if layer == "" else list(range(8))
    shape = ctx.data.input_shape
    images, numbers = [], []
    bar = Progress(len(units), "actmax", unit="unit", enabled=ctx.progress)
    for unit in units:
        result = activation_maximization(ctx.model, layer, unit, shape, seed=ctx.seed, normalizer=ctx.normalizer,
                                         **ctx.steps_option())
        images.append(result.image)
        numbers.append({"unit": int(unit), "activation": float(result.activation)})
        bar.update(1)
    bar.close()
    what = "class" if layer == "" else f"{layer} unit"
    titles = [f"{ctx.label(u) if layer == '' else u}: {n['activation']:.1f}" for u, n in zip(units, numbers)]
    fig = render.image_grid(render.to_display(np.stack(images)), titles,
                            title=f"activation maximisation ({what}; seed {ctx.seed})")
    return Output({"actmax": fig}, {"layer": layer or "logits", "seed": ctx.seed, "units": numbers},
                  "Inputs synthesised by gradient ascent to excite one unit, with image priors.")


def run_saliency(ctx: Context) -> Output:
    from .attribution import grad_cam, integrated_gradients, occlusion
    from .saliency import gradient_saliency, guided_backprop, normalize_map, smoothgrad
    query = ctx.query()
    target = ctx.target
    layer = ctx.layer or _last_conv(ctx.model)
    rng = np.random.default_rng(ctx.seed)
    ig = integrated_gradients(ctx.model, query, target)
    cam = grad_cam(ctx.model, query, layer, target)
    methods = {
        "gradient": gradient_saliency(ctx.model, query, target),
        "guided backprop": normalize_map(guided_backprop(ctx.model, query, target), "abs"),
        "SmoothGrad": normalize_map(smoothgrad(ctx.model, query, target, rng=rng), "abs"),
        "integrated gradients": normalize_map(ig.attributions, "abs"),
        f"Grad-CAM {layer}": cam.upsampled,
        "occlusion": occlusion(ctx.model, query, target),
    }
    figures = {}
    for i, index in enumerate(ctx.images):
        gray = render.to_display(query[i:i + 1].mean(axis=1, keepdims=True))[0]     # maps are one-channel
        panels = [gray] + [normalize_map(m[i:i + 1], "abs")[0] for m in methods.values()]
        figures[f"saliency_{index}"] = render.image_grid(
            np.stack(panels), [f"#{index}"] + list(methods), ncols=len(panels), cmap="inferno", colorbar=True,
            title=f"attribution for test image #{index} ({ctx.label(int(ctx.data.test_labels[index]))})")
    numbers = {"images": ctx.images, "grad_cam_layer": layer,
               "integrated_gradients_completeness_gap": np.asarray(ig.completeness_gap).tolist(),
               "integrated_gradients_score_difference": (np.asarray(ig.scores) - np.asarray(ig.baseline_scores)).tolist()}
    return Output(figures, numbers,
                  "Gradient saliency, guided backprop, SmoothGrad, integrated gradients, Grad-CAM and occlusion.")


def run_inversion(ctx: Context) -> Output:
    from ..training import predict
    from .inversion import invert
    layer = ctx.layer or feature_layer(ctx.model)
    query = ctx.query()
    result = invert(ctx.model, query, layer, seed=ctx.seed, normalizer=ctx.normalizer, **ctx.steps_option())
    predicted = predict(ctx.model, result.images, _Identity(), 256).argmax(axis=1)
    panels = np.concatenate([render.to_display(query), render.to_display(result.images)])
    titles = _titles(ctx) + [f"{ctx.label(int(p))} err {e:.2f}" for p, e in zip(predicted, result.relative_error)]
    fig = render.image_grid(panels, titles, ncols=len(ctx.images), title=f"inverting the code of {layer}")
    labels = ctx.data.test_labels[np.asarray(ctx.images)]
    return Output({"inversion": fig}, {"layer": layer, "relative_error": np.asarray(result.relative_error).tolist(),
                                       "reconstruction_class": predicted.tolist(),
                                       "same_class_fraction": float(np.mean(predicted == labels))},
                  "Mahendran & Vedaldi: images reconstructed from a layer's representation alone.")


def run_dissect(ctx: Context, units: int = 8, top: int = 6) -> Output:
    from .dissect import dissect
    layer = ctx.layer or _last_conv(ctx.model)
    idx = ctx.sample_indices()
    x = ctx.x(idx)
    result = dissect(ctx.model, x, layer, labels=ctx.data.test_labels[idx], top=top)
    rows = result.rows()
    shown = rows[:units] if ctx.unit is None else [r for r in rows if r["unit"] == ctx.unit]
    panels, titles = [], []
    for row in shown:
        for rank, j in enumerate(result.top_indices[row["unit"]][:top]):
            panels.append(x[j])
            titles.append(f"unit {row['unit']}" if rank == 0 else "")
    figures = {"dissect_top_images": render.image_grid(render.to_display(np.stack(panels)), titles, ncols=top,
                                                       title=f"images that excite units of {layer} most")}
    if getattr(result, "class_means", None) is not None:
        figures["dissect_selectivity"] = render.matrix_plot(
            np.asarray(result.class_means)[: max(units, len(shown))], [r["unit"] for r in rows[:max(units, len(shown))]],
            [ctx.label(int(c)) for c in result.classes], f"mean activation per class, {layer}", "class", "unit",
            annotate=False)
    return Output(figures, {"layer": layer, "images": len(idx), "units": jsonable(rows)},
                  "Semantic interpretation of units: top images and class selectivity.")


def _float(value):
    return None if value is None else float(value)


def jsonable(value):
    """Dataclasses, NumPy arrays and scalars -> plain JSON types."""
    import dataclasses
    if dataclasses.is_dataclass(value):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None                          # JSON has no NaN: an undefined number (e.g. a dead unit's selectivity)
    return value


TECHNIQUES = {"filters": run_filters, "activations": run_activations, "neighbors": run_neighbors,
              "deconv": run_deconv, "actmax": run_actmax, "saliency": run_saliency, "inversion": run_inversion,
              "dissect": run_dissect}


def run_technique(name: str, ctx: Context) -> Output:
    if name not in TECHNIQUES:
        raise ValueError(f"unknown technique {name!r}; choose one of {', '.join(TECHNIQUES)} or report")
    return TECHNIQUES[name](ctx)
