"""Every attribution method behind one call, and the table of them.

::

    from convscope import visualize
    maps = visualize.attribute(clf, images, method="score_cam")          # (N, H, W)
    maps = visualize.attribute(clf, images, method="integrated_gradients",
                               noise_tunnel="smoothgrad", samples=16, seed=0)

``model`` is a Classifier with raw images or a Module with model-space floats (N, C, H, W)
(:func:`~convscope.visualize.core.resolve`). ``target`` None explains each image's predicted
class, an int one class for all, an int array (N,) one class each. ``layer`` (CAM methods and
guided Grad-CAM only) defaults to the last convolution. The score explained is the target
logit, except where a method's paper uses the softmax probability (occlusion, RISE,
Score-CAM). The map is (N, H, W) at the input's size: pixel methods reduce their (N, C, H, W)
attributions over channels by ``reduce`` ("sum": the signed sum, the default; "abs": the sum
of |.|; "max_abs": Simonyan et al.'s max of |.|; "none": the (N, C, H, W) array itself), and
map methods (CAMs, occlusion, RISE) count as one channel. :data:`METHODS` says, per method,
whether its map is signed, non-negative or rectified, and which options it takes.

Gradient methods (the ``tunnel`` column) can be wrapped in a noise tunnel
(``noise_tunnel`` "smoothgrad", "smoothgrad_sq" or "vargrad";
`perturbation.noise_tunnel`) with ``samples`` copies and Gaussian
``noise`` whose std is that fraction of each image's range; ``rng`` (a Generator) or ``seed``
draws it (RISE's masks too). Everything runs in evaluation mode in passes of at most
``batch_size`` images (originals, noisy, interpolated or masked copies alike; default: about
2^19 input values a pass, :func:`~convscope.visualize.perturbation.batch_budget`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_choice, check_int
from .cams import CAM_METHODS, class_activation_map
from .core import accumulate, batches, resolve, resolve_targets
from .occlusion import occlusion
from .perturbation import NOISE_TUNNELS, baseline_images, batch_budget, resolve_rng, rise
from .perturbation import noise_tunnel as _noise_tunnel
from .probe import evaluation_mode, logit_gradient
from .rules import deeplift, lrp

__all__ = ["Method", "METHODS", "REDUCTIONS", "INTEGRATIONS", "attribute", "reduce_channels",
           "integrated_gradients_path"]

REDUCTIONS = ("sum", "abs", "max_abs", "none")
INTEGRATIONS = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


@dataclass(frozen=True)
class Method:
    """One row of :data:`METHODS`: ``kind`` "pixel" ((N, C, H, W) attributions) or "map"
    ((N, H, W)); ``sign`` of the map ("signed", "non-negative", "rectified"); ``options`` the
    keyword arguments it takes; ``tunnel`` whether a noise tunnel may wrap it; ``layer`` whether
    it reads an inner layer; ``doc`` its definition."""

    name: str
    kind: str
    sign: str
    options: tuple[str, ...]
    tunnel: bool
    layer: bool
    doc: str


_CAM_DOCS = {
    "grad_cam": "Selvaraju et al. 2017: ReLU(sum_k mean_hw(dy/dA_k) A_k)",
    "grad_cam_plus_plus": "Chattopadhay et al. 2018: weights sum_hw alpha ReLU(dy/dA_k), alpha from g^2 and g^3",
    "xgrad_cam": "Fu et al. 2020: weights sum_hw (A_k / sum A_k) dy/dA_k",
    "layer_cam": "Jiang et al. 2021: ReLU(sum_k ReLU(dy/dA_k) . A_k), element-wise",
    "hires_cam": "Draelos & Carin 2020: ReLU(sum_k dy/dA_k . A_k), element-wise",
    "score_cam": "Wang et al. 2020: weights P(t | x masked by upsampled A_k) - P(t | baseline); forward only",
    "ablation_cam": "Desai & Ramaswamy 2020: weights (y - y with A_k zeroed) / y; forward only",
    "eigen_cam": "Muhammad & Yeasin 2020: A projected on its first principal direction; class-agnostic",
}


def _rows() -> list[Method]:
    pixel = [
        ("gradient", "signed", (), "Simonyan et al. 2014: d y_t / d x"),
        ("input_x_gradient", "signed", (), "Shrikumar et al. 2016: x * d y_t / d x"),
        ("guided_backprop", "signed", (), "Springenberg et al. 2015: ReLUs pass dy * [x > 0] * [dy > 0]"),
        ("deconvnet", "signed", (), "Zeiler & Fergus 2014: ReLUs pass max(dy, 0)"),
        ("integrated_gradients", "signed", ("baseline", "steps", "integration"),
         "Sundararajan et al. 2017: (x - b) * integral_0^1 grad f(b + a (x - b)) da"),
        ("deeplift", "signed", ("baseline",), "Shrikumar et al. 2017, rescale: (x - b) * multipliers"),
        ("lrp_epsilon", "signed", ("epsilon",), "Bach et al. 2015, eq. 58: z / (z + eps sign z) rule"),
        ("lrp_alpha_beta", "signed", ("alpha", "beta"), "Bach et al. 2015, eq. 60: alpha z+ / z+ - beta z- / z-"),
        ("smoothgrad", "signed", (), "Smilkov et al. 2017: the gradient under a noise tunnel (default smoothgrad)"),
    ]
    rows = [Method(n, "pixel", s, o, True, False, d) for n, s, o, d in pixel]
    rows.append(Method("guided_grad_cam", "pixel", "signed", ("upsample",), False, True,
                       "Selvaraju et al. 2017: guided backprop * upsampled Grad-CAM"))
    rows.append(Method("occlusion", "map", "signed", ("window", "stride", "fill"), False, False,
                       "Zeiler & Fergus 2014: mean drop of P(t) when a window covering the pixel is filled"))
    rows.append(Method("rise", "map", "non-negative", ("masks", "cells", "p", "baseline"), False, False,
                       "Petsiuk et al. 2018: sum_m P(t | x . M_m) M_m / (M p)"))
    for name in CAM_METHODS:
        options = ("upsample", "baseline") if name == "score_cam" else ("upsample",)
        sign = "signed" if name == "eigen_cam" else "rectified"
        rows.append(Method(name, "map", sign, options, False, True, _CAM_DOCS[name]))
    return rows


METHODS: dict[str, Method] = {m.name: m for m in _rows()}
"""Method name -> :class:`Method`: the names :func:`attribute` takes, with their conventions."""


# -- integrated gradients on any path rule -------------------------------------------------------

def _nodes(integration: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(alphas (M,), weights (M,)) of one quadrature on [0, 1], Captum's node placements.

    The trapezoid's weights are 1/(M-1) (halved at the ends), summing to 1; Captum's own
    trapezoid weights are 1/M (summing to (M-1)/M), so the two differ by that factor.
    """
    check_choice(integration, "integration", INTEGRATIONS)
    if integration == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (nodes + 1), 0.5 * weights
    if integration == "riemann_trapezoid":
        if steps < 2:
            raise ValueError(f"the trapezoid rule needs steps >= 2, got {steps}")
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[integration]
    return (np.arange(steps) + offset) / steps, np.full(steps, 1.0 / steps)


def integrated_gradients_path(model, x: np.ndarray, targets: np.ndarray, baseline: np.ndarray, *,
                              steps: int = 50, integration: str = "gausslegendre",
                              batch_size: int = 64) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017, eq. 1), (N, C, H, W) float64:
    (x - b) * sum_m w_m grad f_t(b + a_m (x - b)), with ``steps`` nodes a_m of ``integration``
    (:data:`INTEGRATIONS`; Gauss-Legendre by default, as Captum). N x steps gradient passes,
    ``batch_size`` points at a time. Call inside :func:`evaluation_mode`."""
    steps = check_int(steps, "steps", minimum=1)
    alphas, weights = _nodes(integration, steps)
    n, m = len(x), len(alphas)
    image_of, node_of = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    total = np.zeros((n, x[0].size), dtype=np.float64)
    for s in batches(n * m, batch_size):
        rows, k = image_of[s], node_of[s]
        a = alphas[k].astype(x.dtype)[:, None, None, None]
        grad, _ = logit_gradient(model, baseline[rows] + a * (x[rows] - baseline[rows]), targets[rows])
        accumulate(total, rows, weights[k, None] * grad.reshape(len(rows), -1))
    delta = x.reshape(n, -1).astype(np.float64) - baseline.reshape(n, -1)
    return (delta * total).reshape(x.shape)


# -- the runners ---------------------------------------------------------------------------------

@dataclass
class _Run:
    model: object
    x: np.ndarray
    clf: object
    targets: np.ndarray
    layer: str | None
    rng: np.random.Generator
    batch: int
    options: dict

    def baseline(self) -> np.ndarray:
        return baseline_images(self.options.get("baseline"), self.x, self.clf)


def _gradient_fn(run: _Run, rule: str = "gradient", times_input: bool = False):
    def fn(x, targets, rows):
        out = []
        for s in batches(len(x), run.batch):
            grad, _ = logit_gradient(run.model, x[s], targets[s], rule)
            out.append(x[s] * grad if times_input else grad)
        return np.concatenate(out)
    return fn


def _pixel_fn(name: str, run: _Run):
    """fn(x (B, C, H, W), targets (B,), rows (B,)) -> attributions (B, C, H, W) for a gradient method."""
    o = run.options
    if name in ("gradient", "smoothgrad"):
        return _gradient_fn(run)
    if name == "input_x_gradient":
        return _gradient_fn(run, times_input=True)
    if name == "guided_backprop":
        return _gradient_fn(run, "guided")
    if name == "deconvnet":
        return _gradient_fn(run, "deconvnet")
    if name in ("integrated_gradients", "deeplift"):
        base = run.baseline()
        if name == "deeplift":
            return lambda x, t, rows: deeplift(run.model, x, t, base[rows], batch_size=run.batch).attributions
        kw = {k: o[k] for k in ("steps", "integration") if k in o}
        return lambda x, t, rows: integrated_gradients_path(run.model, x, t, base[rows], batch_size=run.batch, **kw)
    if name == "lrp_epsilon":
        kw = {k: o[k] for k in ("epsilon",) if k in o}
        return lambda x, t, rows: lrp(run.model, x, t, "epsilon", batch_size=run.batch, **kw).attributions
    kw = {k: o[k] for k in ("alpha", "beta") if k in o}
    return lambda x, t, rows: lrp(run.model, x, t, "alpha_beta", batch_size=run.batch, **kw).attributions


def _map(name: str, run: _Run) -> np.ndarray:
    """(N, 1, H, W) for the map methods, (N, C, H, W) for guided Grad-CAM."""
    o, up = run.options, run.options.get("upsample", "bilinear")
    if name == "occlusion":
        kw = {k: o[k] for k in ("window", "stride", "fill") if k in o}
        return occlusion(run.model, run.x, run.targets, batch_size=run.batch, **kw)[:, None]
    if name == "rise":
        kw = {k: o[k] for k in ("masks", "cells", "p") if k in o}
        return rise(run.model, run.x, run.targets, baseline=run.baseline(), rng=run.rng,
                    batch_size=run.batch, **kw)[:, None]
    cam_method = "grad_cam" if name == "guided_grad_cam" else name
    base = run.baseline() if name == "score_cam" else None
    cam = class_activation_map(run.model, run.x, run.targets, cam_method, run.layer, upsample_mode=up,
                               baseline=base, batch_size=run.batch).upsampled
    if name != "guided_grad_cam":
        return cam[:, None]
    guided = _gradient_fn(run, "guided")(run.x, run.targets, None)
    return guided * cam[:, None]


def reduce_channels(raw: np.ndarray, reduce: str = "sum") -> np.ndarray:
    """Attributions (N, C, H, W) -> a map (N, H, W): "sum" (signed), "abs" (sum of |.|),
    "max_abs" (max of |.|); "none" returns ``raw`` unchanged."""
    check_choice(reduce, "reduce", REDUCTIONS)
    if reduce == "none":
        return raw
    if reduce == "sum":
        return raw.sum(axis=1)
    if reduce == "abs":
        return np.abs(raw).sum(axis=1)
    return np.abs(raw).max(axis=1)


def _check_call(spec: Method, layer, options: dict, tunnel) -> None:
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        takes = ", ".join(spec.options) or "no method options"
        raise TypeError(f"method {spec.name!r} takes {takes}; got unexpected {', '.join(unknown)}")
    if layer is not None and not spec.layer:
        raise ValueError(f"method {spec.name!r} reads no inner layer; drop layer={layer!r}")
    if tunnel is not None:
        check_choice(tunnel, "noise_tunnel", NOISE_TUNNELS)
        if not spec.tunnel:
            tunnelled = ", ".join(n for n, m in METHODS.items() if m.tunnel)
            raise ValueError(f"a noise tunnel wraps gradient methods ({tunnelled}), not {spec.name!r}")


def attribute(model, images, method: str = "gradient", target=None, layer: str | None = None, *,
              reduce: str = "sum", noise_tunnel: str | None = None, samples: int = 25, noise: float = 0.15,
              rng: np.random.Generator | None = None, seed: int | None = None, batch_size: int | None = None,
              **options) -> np.ndarray:
    """Attribution maps (N, H, W) of ``method`` (a name in :data:`METHODS`) at the input's size,
    float in the model's dtype; with ``reduce="none"`` the (N, C, H, W) attributions (C = 1
    for map methods). See the module docstring for every argument; ``options`` are the
    method's own (:attr:`Method.options`), e.g. ``baseline`` ("mean", "black", "blur", a
    number or an array in model space; default model-space zeros), ``steps`` and
    ``integration`` for integrated gradients, ``epsilon``, ``alpha`` / ``beta`` for LRP,
    ``window`` / ``stride`` / ``fill`` for occlusion, ``masks`` / ``cells`` / ``p`` for RISE,
    ``upsample`` ("bilinear" or "nearest") for CAMs.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    spec = METHODS[method]
    check_choice(reduce, "reduce", REDUCTIONS)
    _check_call(spec, layer, options, noise_tunnel)
    network, x, clf = resolve(model, images)
    generator = resolve_rng(rng, seed)
    batch = batch_budget(x, batch_size)
    if method == "smoothgrad" and noise_tunnel is None:
        noise_tunnel = "smoothgrad"
    with evaluation_mode(network):
        targets = resolve_targets(network, x, target, batch)
        run = _Run(network, x, clf, targets, layer, generator, batch, options)
        if spec.kind == "map" or method == "guided_grad_cam":
            raw = _map(method, run)
        else:
            fn = _pixel_fn(method, run)
            if noise_tunnel is None:
                raw = fn(x, targets, np.arange(len(x)))
            else:
                raw = _noise_tunnel(fn, x, targets, noise_tunnel, samples, noise, generator, batch)
    return reduce_channels(np.asarray(raw), reduce).astype(x.dtype, copy=False)

