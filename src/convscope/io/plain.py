"""Results (dataclasses, NumPy arrays and scalars) as plain JSON types."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["jsonable"]


def jsonable(value):
    """Dataclasses, dicts, sequences, NumPy arrays and scalars -> plain JSON types.

    A non-finite float becomes None: JSON has no NaN, and an undefined number (a dead unit's
    selectivity, say) is better written as null than as an invalid file.

    >>> jsonable({"a": np.arange(3), "b": np.float32(0.5), "c": float("nan")})
    {'a': [0, 1, 2], 'b': 0.5, 'c': None}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
