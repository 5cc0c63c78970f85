"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW, PyTorch's update rules.

An optimizer holds the model and, on each ``step()``, reads every parameter and its
gradient through the owning layer's ``params`` / ``grads`` dicts (so a replaced array is
picked up) and updates it in place. Its state (momenta) is keyed by the parameters'
dotted names, which is what a checkpoint stores to resume training exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..layers import Module

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "make_optimizer", "OPTIMIZERS", "adam_step"]


def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
              betas=(0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam update (Kingma & Ba, Algorithm 1), in place on ``p``, ``m`` and ``v``.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    p <- p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps), with t >= 1 the step count.
    Elementwise, so it serves a model's parameters and a batch of synthesised images alike.
    """
    b1, b2 = betas
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * (g * g)
    denom = np.sqrt(v / (1 - b2 ** t)) + eps
    p -= (lr / (1 - b1 ** t) * m / denom).astype(p.dtype, copy=False)


class Optimizer(ABC):
    """Base: a learning rate (set by a schedule before each step), per-parameter state."""

    def __init__(self, model: Module, lr: float, weight_decay: float = 0.0) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"optimizer needs a convscope Module, got {type(model).__name__}")
        if not lr > 0:
            raise ValueError(f"learning rate must be positive, got {lr!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}")
        self.model, self.lr, self.weight_decay = model, float(lr), float(weight_decay)
        self.state: dict[str, np.ndarray] = {}     # "<param name>.<slot>" -> array
        self.steps = 0
        self.frozen: set[str] = set()              # parameter names left unchanged (fine-tuning)

    def _slot(self, name: str, slot: str, like: np.ndarray) -> np.ndarray:
        key = f"{name}.{slot}"
        if key not in self.state:
            self.state[key] = np.zeros_like(like)
        return self.state[key]

    def step(self) -> None:
        self.steps += 1
        for name, module, key in self.model.parameter_slots():
            if key in module.grads and name not in self.frozen:
                self._update(name, module.params[key], module.grads[key])

    @abstractmethod
    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        """Update parameter ``p`` in place from its gradient ``g``."""

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**self.state, "__steps__": np.array(self.steps)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        state = dict(state)
        self.steps = int(state.pop("__steps__", 0))
        self.state = {k: np.array(v) for k, v in state.items()}


class SGD(Optimizer):
    """v = momentum * v + (g + wd * p); p -= lr * (g + momentum * v if nesterov else v)."""

    def __init__(self, model: Module, lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(model, lr, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _update(self, name, p, g):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = self._slot(name, "momentum", p)
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        p -= self.lr * g


class Adam(Optimizer):
    """Kingma & Ba: bias-corrected first and second moments; weight decay added to g (L2)."""

    decoupled = False

    def __init__(self, model: Module, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(model, lr, weight_decay)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas!r}")
        self.betas, self.eps = (float(b1), float(b2)), float(eps)

    def _update(self, name, p, g):
        if self.weight_decay and self.decoupled:
            p *= 1.0 - self.lr * self.weight_decay
        elif self.weight_decay:
            g = g + self.weight_decay * p
        adam_step(p, g, self._slot(name, "exp_avg", p), self._slot(name, "exp_avg_sq", p), self.steps,
                  self.lr, self.betas, self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * wd each step."""

    decoupled = True

    def __init__(self, model: Module, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(model, lr, betas, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, model: Module, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0, nesterov: bool = True) -> Optimizer:
    """Build an optimizer by name ("sgd", "adam", "adamw")."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if name == "sgd":
        return SGD(model, lr, momentum=momentum, nesterov=nesterov and momentum > 0,
                   weight_decay=weight_decay)
    return OPTIMIZERS[name](model, lr, weight_decay=weight_decay)
