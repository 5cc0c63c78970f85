"""Minibatch index arrays: in order, or shuffled by an explicit generator."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ..validation import check_int

__all__ = ["iterate_batches", "num_batches"]


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`iterate_batches` yields for ``n`` items."""
    n = check_int(n, "n", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(n: int, batch_size: int, rng: np.random.Generator | None = None,
                    drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index arrays (int64, (batch_size,)) covering ``range(n)`` once.

    With ``rng`` the order is ``rng.permutation(n)``; without, it is 0, 1, ..., n - 1. The
    last, shorter batch is yielded unless ``drop_last``. Arguments are checked at the call,
    not at the first ``next``.
    """
    n = check_int(n, "n", minimum=0)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    if rng is None:
        order = np.arange(n, dtype=np.int64)
    else:
        order = rng.permutation(n).astype(np.int64, copy=False)
    return _batches(order, batch_size, num_batches(n, batch_size, drop_last))


def _batches(order: np.ndarray, batch_size: int, count: int) -> Iterator[np.ndarray]:
    for b in range(count):
        yield order[b * batch_size:(b + 1) * batch_size]
