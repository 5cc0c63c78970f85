"""Relevance methods as backward rules on the layers we already have: LRP-epsilon, LRP-alpha-beta
(Bach et al. 2015) and DeepLIFT's rescale rule (Shrikumar et al. 2017).

These methods differ from the gradient only in what each layer sends back, so they are the
ordinary backward pass with some layers' ``backward`` switched, as
:func:`~convscope.visualize.probe.relu_rule` switches the ReLUs for deconvnet and guided
backprop. :func:`propagation_rule` does the switch for one ``with`` block: a forward hook
records each affected layer's input and output, and that layer instance's ``backward`` runs
the rule, which reuses the layer's own ``backward`` (its cached forward state: im2col columns,
max-pool switches, BN statistics) for every product with a weight transpose. Containers
(:class:`Sequential`, :class:`Residual`, :class:`Concat`) keep their backward: they route what
their children send back, so an addition passes its upstream signal to both paths (the
z-rule at an addition, with no epsilon there). No layer module is edited.

Everything runs in "gradient form", the form Captum's hooks use: the signal s sent back
through an activation a is its relevance divided by it, R(a) = a * s, so at the input the
attribution is x * s (LRP) or (x - baseline) * s (DeepLIFT's multipliers). The seed at the
logits is the one-hot target, so LRP starts from R = f_t(x), the target logit.

Rule tables (a layer type not listed raises TypeError naming it):

=====================  ==========================  =============================================
layer                  LRP (epsilon / alpha-beta)  DeepLIFT rescale
=====================  ==========================  =============================================
Conv2d, Linear         epsilon or alpha-beta rule  own backward (linear)
pools, BN, shortcuts   epsilon rule                own backward; max-pools: Captum's max rule
ReLU, Tanh, Sigmoid,   relevance passes through    rescale: dy * (y - y0) / (x - x0)
LeakyReLU, LRN
Flatten, Dropout,      own backward                own backward
Identity
Graph nodes: Add,      epsilon rule                own backward
Sub, ReduceMean/Sum
Clip, HardSigmoid,     relevance passes through    rescale
HardSwish, Gelu
Reshape, Transpose,    own backward                own backward
Slice, Pad, Cat,
Constant
=====================  ==========================  =============================================

Local response normalisation is not element-wise, so its rescale multiplier is an
approximation and DeepLIFT's summation-to-delta holds only approximately through it.
"""

from __future__ import annotations

import copy
import functools
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, CrossChannelPool, Dropout, Flatten,
                      GlobalAvgPool2d, Identity, LeakyReLU, Linear, LocalResponseNorm, MaxPool2d, Module,
                      ReLU, Sigmoid, Tanh, ZeroPadShortcut)
from ..layers.elementwise import Add, Constant, Sub
from ..layers.pointwise import Clip, Gelu, HardSigmoid, HardSwish
from ..layers.reduce import ReduceMean, ReduceSum
from ..layers.shape_ops import Cat, Pad, Reshape, Slice, Transpose
from ..validation import check_real
from .core import batches
from .probe import evaluation_mode, logit_gradient

__all__ = ["RULES", "propagation_rule", "Relevance", "lrp", "deeplift"]

RULES = ("lrp_epsilon", "lrp_alpha_beta", "deeplift")

_WEIGHTED = (Conv2d, Linear)
# Imported graphs (convscope.onnx) add sums and means (linear: the epsilon rule splits a sum's
# relevance by each input's share, z_i / z), element-wise activations, and layers that only move
# values around (their own backward moves relevance the same way); a Constant is a source whose
# relevance, like a bias's, is not passed on.
_LINEAR_NO_WEIGHT = (AvgPool2d, GlobalAvgPool2d, MaxPool2d, CrossChannelPool, BatchNorm1d, BatchNorm2d,
                     ZeroPadShortcut, Add, Sub, ReduceMean, ReduceSum)
_ACTIVATIONS = (ReLU, Tanh, Sigmoid, LeakyReLU, LocalResponseNorm, Clip, HardSigmoid, HardSwish, Gelu)
_PASS = (Flatten, Dropout, Identity, Reshape, Transpose, Slice, Pad, Cat, Constant)
_MAX_POOLS = (MaxPool2d, CrossChannelPool)


# -- the LRP rules ------------------------------------------------------------------------------

def _lrp_epsilon(module, own, state, dy, *, epsilon, **_):
    """LRP-epsilon (Bach et al. 2015, eq. 58; Montavon et al. 2019 eq. 3):
    R_j = sum_k x_j w_jk / (z_k + eps sign(z_k)) R_k, with z_k the layer's output (biases
    included) and sign(0) = +1 as in Captum. In gradient form R_k = z_k s_k, so
    s_in = W^T (z * s / (z + eps sign z)), the layer's own backward of the rescaled signal."""
    z = state["y"]
    stab = np.where(z >= 0, z.dtype.type(epsilon), z.dtype.type(-epsilon))
    return own(dy * (z / (z + stab)))


def _twin(module: Module, weight: np.ndarray) -> Module:
    """A copy of a Conv2d / Linear with ``weight`` and no bias (own caches, no hooks)."""
    twin = copy.copy(module)                      # __getstate__ leaves the forward hooks out
    twin.__dict__.pop("backward", None)           # the class's backward, not the rule
    twin.params, twin.grads = {"weight": weight}, {}
    twin.need_input_grad = True
    return twin


def _lrp_alpha_beta(module, own, state, dy, *, alpha, beta, **_):
    """LRP-alpha-beta (Bach et al. 2015, eq. 60): with z_jk = x_j w_jk,
    R_j = sum_k (alpha z_jk^+ / z_k^+ - beta z_jk^- / z_k^-) R_k, z_k^+- = sum_j z_jk^+-
    (biases left out, so relevance is conserved exactly when alpha - beta = 1).

    Signed inputs split as x = x+ + x- and W = W+ + W-: z^+ = W+ x+ + W- x-, z^- = W- x+ + W+ x-.
    With s+ = alpha R / z^+ and s- = beta R / z^- (0 where the denominator vanishes), the
    signal sent back is W+^T s+ - W-^T s- where x > 0 and W-^T s+ - W+^T s- where x < 0.
    """
    x, z = state["x"], state["y"]
    w = module.params["weight"]
    pos, neg = _twin(module, np.maximum(w, 0)), _twin(module, np.minimum(w, 0))
    xp, xn = np.maximum(x, 0), np.minimum(x, 0)
    signed = bool((x < 0).any())
    zp, zn = pos.forward(xp), neg.forward(xp)                      # W+ x+, W- x+
    if signed:
        zp, zn = zp + neg.forward(xn), zn + pos.forward(xn)        # + W- x-, + W+ x-
    relevance = z * dy                                             # R_k
    sp = np.divide(alpha * relevance, zp, out=np.zeros_like(relevance), where=zp > 0)
    sn = np.divide(beta * relevance, zn, out=np.zeros_like(relevance), where=zn < 0)
    back_pos = pos.backward(sp) - neg.backward(sn)                 # for x > 0
    if not signed:
        return back_pos
    back_neg = neg.backward(sp) - pos.backward(sn)                 # for x < 0
    return np.where(x < 0, back_neg, back_pos)


def _lrp_pass(module, own, state, dy, **_):
    """Activations pass relevance on unchanged (Bach et al. 2015; Captum's ReLU / Tanh rule):
    R(x) = R(y), so in gradient form s_x = s_y * y / x (0 where x = 0); for ReLU s_y * [x > 0]."""
    x = state["x"]
    if isinstance(module, ReLU):
        return dy * (x > 0)
    y = state["y"]
    return dy * np.divide(y, x, out=np.zeros_like(y), where=x != 0)


# -- the DeepLIFT rules --------------------------------------------------------------------------

def _paired(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the input half, the reference half) of a batch that stacks x over its baseline."""
    half = len(a) // 2
    return a[:half], a[half:]


def _rescale(module, own, state, dy, *, eps, **_):
    """DeepLIFT's rescale rule (Shrikumar et al. 2017, eq. 3-4 and §3.5.1): the multiplier
    m = dy (y - y0) / (x - x0), or the gradient where |x - x0| < eps (Captum's convention)."""
    x, x0 = _paired(state["x"])
    y, y0 = _paired(state["y"])
    dx, dyo = np.concatenate([x - x0] * 2), np.concatenate([y - y0] * 2)
    close = np.abs(dx) < eps
    return np.where(close, own(dy), dy * dyo / np.where(close, 1, dx))


def _deeplift_max(module, own, state, dy, *, eps, **_):
    """Max-pooling under DeepLIFT, as Captum's ``maxpool`` rule: with m = max(y, y0) the output
    difference y - y0 is split into (m - y0), sent to the input's arg-max, and (y - m), sent to
    the reference's arg-max; the summed signal over (x - x0) is the multiplier (the gradient
    where |x - x0| < eps). The layer's own backward routes each half to its own arg-max."""
    x, x0 = _paired(state["x"])
    y, y0 = _paired(state["y"])
    m = np.maximum(y, y0)
    routed = own(dy * np.concatenate([m - y0, y - m]))
    top, bottom = _paired(routed)
    total = np.concatenate([top + bottom] * 2)
    dx = np.concatenate([x - x0] * 2)
    close = np.abs(dx) < eps
    return np.where(close, own(dy), total / np.where(close, 1, dx))


def _rule_for(module: Module, rule: str):
    """The rule function for one leaf layer, or None to keep its own backward."""
    if isinstance(module, _PASS):
        return None
    if rule == "deeplift":
        if isinstance(module, _MAX_POOLS) and getattr(module, "mode", "max") == "max":
            return _deeplift_max
        if isinstance(module, _ACTIVATIONS):
            return _rescale
        if isinstance(module, _WEIGHTED + _LINEAR_NO_WEIGHT):
            return None
    else:
        if isinstance(module, _WEIGHTED):
            return _lrp_alpha_beta if rule == "lrp_alpha_beta" else _lrp_epsilon
        if isinstance(module, _LINEAR_NO_WEIGHT):
            return _lrp_epsilon
        if isinstance(module, _ACTIVATIONS):
            return _lrp_pass
    raise TypeError(f"{rule} has no backward rule for layer type {type(module).__name__}; supported: "
                    f"{', '.join(t.__name__ for t in _WEIGHTED + _LINEAR_NO_WEIGHT + _ACTIVATIONS + _PASS)}")


@contextmanager
def _rule_backward(module: Module, fn) -> Iterator[None]:
    """Inside the block ``module.backward(dy)`` is ``fn(module, own_backward, state, dy)``, with
    ``state`` the input "x" and output "y" of the module's last forward."""
    state: dict = {}

    def record(m, x, y):
        state["x"], state["y"] = x, y

    own, saved = module.backward, module.__dict__.get("backward")
    module.backward = lambda dy: fn(module, own, state, dy)
    try:
        with module.register_forward_hook(record):
            yield
    finally:
        if saved is None:
            del module.backward
        else:
            module.backward = saved


@contextmanager
def propagation_rule(model: Module, rule: str, *, epsilon: float = 1e-2, alpha: float = 1.0,
                     beta: float = 0.0, eps: float = 1e-10) -> Iterator[None]:
    """Switch ``model``'s backward pass to ``rule`` (one of :data:`RULES`) inside the block.

    ``epsilon`` is LRP-epsilon's stabiliser (also used, at 1e-9, by alpha-beta for the layers
    without weights); ``alpha`` and ``beta`` are LRP-alpha-beta's (alpha - beta must be 1);
    ``eps`` is DeepLIFT's threshold below which |x - x0| counts as zero. For DeepLIFT the
    forward pass must stack each input over its baseline, (2B, C, H, W), as :func:`deeplift`
    does. Enter it before any probe (``logit_gradient``), so that probes wrap the rules.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    epsilon = check_real(epsilon, "epsilon", minimum=0.0)
    alpha, beta = check_real(alpha, "alpha"), check_real(beta, "beta", minimum=0.0)
    if rule == "lrp_alpha_beta" and abs(alpha - beta - 1) > 1e-12:
        raise ValueError(f"alpha - beta must be 1 (relevance conservation), got alpha={alpha}, beta={beta}")
    options = dict(epsilon=epsilon if rule == "lrp_epsilon" else 1e-9, alpha=alpha, beta=beta, eps=eps)
    with ExitStack() as stack:
        for _, module in model.named_modules():
            if module.children():
                continue                            # containers route their children's signals
            fn = _rule_for(module, rule)
            if fn is not None:
                stack.enter_context(_rule_backward(module, functools.partial(_call, fn, options)))
        yield


def _call(fn, options, module, own, state, dy):
    return fn(module, own, state, dy, **options)


# -- the two methods ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Relevance:
    """What :func:`lrp` and :func:`deeplift` return.

    ``attributions`` (N, C, H, W), signed; ``scores`` (N,) the target logit f(x);
    ``baseline_scores`` (N,) f(baseline) (DeepLIFT) or zeros (LRP); ``delta`` (N,)
    sum(attributions) - (scores - baseline_scores), the conservation error; ``targets`` (N,).
    """

    attributions: np.ndarray
    scores: np.ndarray
    baseline_scores: np.ndarray
    delta: np.ndarray
    targets: np.ndarray


def _result(attributions, scores, baseline_scores, targets) -> Relevance:
    total = attributions.reshape(len(attributions), -1).sum(axis=1, dtype=np.float64)
    return Relevance(attributions, scores, baseline_scores, total - (scores - baseline_scores), targets)


def lrp(model: Module, x: np.ndarray, targets: np.ndarray, rule: str = "epsilon", *, epsilon: float = 1e-2,
        alpha: float = 1.0, beta: float = 0.0, batch_size: int = 64) -> Relevance:
    """Layer-wise relevance propagation of the target logit, x (N, C, H, W) in model space,
    ``targets`` (N,) int. ``rule`` "epsilon" or "alpha_beta" (see :func:`propagation_rule`).

    The relevance starts as R = f_t(x) at the logits and ends as x * s at the input; it is
    conserved layer by layer up to what epsilon and the biases absorb (exactly, for epsilon = 0
    rules with zero biases; alpha-beta conserves with any bias). One forward and one backward
    pass per batch.
    """
    if rule not in ("epsilon", "alpha_beta"):
        raise ValueError(f"rule must be 'epsilon' or 'alpha_beta', got {rule!r}")
    out, scores = [], []
    with evaluation_mode(model), propagation_rule(model, f"lrp_{rule}", epsilon=epsilon, alpha=alpha, beta=beta):
        for s in batches(len(x), batch_size):
            grad, logits = logit_gradient(model, x[s], targets[s])
            out.append(x[s] * grad)
            scores.append(logits[np.arange(len(grad)), targets[s]])
    scores = np.concatenate(scores).astype(np.float64)
    return _result(np.concatenate(out), scores, np.zeros_like(scores), targets)


def deeplift(model: Module, x: np.ndarray, targets: np.ndarray, baseline: np.ndarray, *,
             eps: float = 1e-10, batch_size: int = 64) -> Relevance:
    """DeepLIFT with the rescale rule (Shrikumar et al. 2017) of the target logit.

    x and ``baseline`` (N, C, H, W) in model space. Each batch runs forward once on x stacked
    over its baseline (2B images: the reference activations are cached beside the input's) and
    backward once, seeded with the target on both halves as Captum does; the attribution is
    (x - x0) * m with m the input half's multipliers. Summation-to-delta:
    sum(attributions) = f_t(x) - f_t(x0), up to float rounding (see ``delta``).
    """
    out, scores, base_scores = [], [], []
    with evaluation_mode(model), propagation_rule(model, "deeplift", eps=eps):
        for s in batches(len(x), max(1, batch_size // 2)):
            xb, bb, tb = x[s], baseline[s], targets[s]
            grad, logits = logit_gradient(model, np.concatenate([xb, bb]), np.concatenate([tb, tb]))
            out.append((xb - bb) * grad[:len(xb)])
            rows = np.arange(len(xb))
            scores.append(logits[rows, tb])
            base_scores.append(logits[len(xb) + rows, tb])
    return _result(np.concatenate(out), np.concatenate(scores).astype(np.float64),
                   np.concatenate(base_scores).astype(np.float64), targets)
