"""Softmax cross-entropy, the classification loss f of notes §1.3."""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax", "SoftmaxCrossEntropy"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, stable by log-sum-exp: z - max - log sum exp(z - max)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) from logits (N, K)."""
    return np.exp(log_softmax(logits))


class SoftmaxCrossEntropy:
    """Mean over the batch of -log softmax(z)[y].

    ``forward(logits (N, K), targets (N,) ints)`` returns the scalar loss; ``backward()``
    returns dLoss/dlogits = (softmax(z) - onehot(y)) / N. With ``label_smoothing`` = e the
    target is (1 - e) * onehot + e / K.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def _target(self, targets: np.ndarray, n: int, k: int, dtype) -> np.ndarray:
        t = np.zeros((n, k), dtype=dtype)
        t[np.arange(n), targets] = 1.0
        if self.label_smoothing:
            t = t * (1.0 - self.label_smoothing) + self.label_smoothing / k
        return t

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> float:
        if logits.ndim != 2:
            raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
        targets = np.asarray(targets)
        n, k = logits.shape
        if targets.shape != (n,) or not np.issubdtype(targets.dtype, np.integer):
            raise ValueError(f"targets must be {n} integer class indices, got shape {targets.shape} "
                             f"of {targets.dtype}")
        if n and (targets.min() < 0 or targets.max() >= k):
            raise ValueError(f"targets must lie in [0, {k}), got values from {targets.min()} to {targets.max()}")
        logp = log_softmax(logits)
        self._cache = (logp, targets)
        if self.label_smoothing:
            return float(-(self._target(targets, n, k, logp.dtype) * logp).sum() / n)
        return float(-logp[np.arange(n), targets].mean())

    __call__ = forward

    def backward(self) -> np.ndarray:
        """dLoss/dlogits = (softmax(z) - target) / N."""
        logp, targets = self._cache
        n, k = logp.shape
        grad = np.exp(logp)
        if self.label_smoothing:
            grad -= self._target(targets, n, k, grad.dtype)
        else:
            grad[np.arange(n), targets] -= 1.0
        grad /= n
        return grad
