"""Argument checks for the whole library, one argument order everywhere: ``(value, name, ...)``.

Each returns the value in its plain Python form and raises ``TypeError`` (wrong kind) or
``ValueError`` (right kind, wrong value) with a message that names the argument and the
value received, e.g. ``steps must be an integer >= 1, got 0``. NumPy is the only import, so
every layer of the package can use it.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

__all__ = ["check_int", "check_real", "check_probability", "check_bool", "check_choice",
           "check_float_images", "is_int"]


def is_int(value) -> bool:
    """True for Python and NumPy integers, False for bools (which are ints to Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in {minimum}..{maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum] (either bound optional).

    >>> check_int(3, "steps", minimum=1)
    3
    >>> check_int(0, "steps", minimum=1)
    Traceback (most recent call last):
    ValueError: steps must be an integer >= 1, got 0
    """
    if not is_int(value):
        raise TypeError(f"{name} must be an integer{_bounds(minimum, maximum)}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{_bounds(minimum, maximum)}, got {value!r}")
    return int(value)


def check_real(value, name: str, minimum: float | None = None, maximum: float | None = None, *,
               strict: bool = False) -> float:
    """``value`` as a finite float in [minimum, maximum] (``strict``: the open interval)."""
    if not (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    low_bad = minimum is not None and (value <= minimum if strict else value < minimum)
    high_bad = maximum is not None and (value >= maximum if strict else value > maximum)
    if not math.isfinite(value) or low_bad or high_bad:
        op_low, op_high = (">", "<") if strict else (">=", "<=")
        parts = [f"{op_low} {minimum}" if minimum is not None else "",
                 f"{op_high} {maximum}" if maximum is not None else ""]
        bound = " and ".join(p for p in parts if p)
        raise ValueError(f"{name} must be a finite number{' ' + bound if bound else ''}, got {value!r}")
    return value


def check_probability(value, name: str, *, allow_one: bool = False) -> float:
    """A probability in [0, 1) (or [0, 1] with ``allow_one``)."""
    value = check_real(value, name)
    if not (0.0 <= value < 1.0 or (allow_one and value == 1.0)):
        raise ValueError(f"{name} must be a probability in [0, {'1]' if allow_one else '1)'}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value, name: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``; ValueError listing them otherwise."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_float_images(x, name: str = "x") -> np.ndarray:
    """``x`` itself if it is a float array (N, C, H, W) with N >= 1, in model space."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a float array (N, C, H, W) in model space, got {got} "
                        f"(raw images go through a Classifier: clf.preprocess(images))")
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got shape {x.shape}")
    return x
