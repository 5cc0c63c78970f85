"""Argument checks shared by the visualisation techniques: each names the value received."""

from __future__ import annotations

import numpy as np

from ..layers import Module

__all__ = ["check_model", "check_images", "check_int", "check_real"]


def check_model(model) -> Module:
    if not isinstance(model, Module):
        raise TypeError(f"model must be a convscope Module, got {type(model).__name__}")
    return model


def check_images(x, name: str = "x") -> np.ndarray:
    """``x`` itself if it is a float array (N, C, H, W) with N >= 1; TypeError/ValueError otherwise."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a float array (N, C, H, W) in model space, got {got}")
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got shape {x.shape}")
    return x


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int; TypeError unless an int, ValueError if below ``minimum``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def check_real(value, name: str, minimum: float | None = None) -> float:
    """``value`` as a finite float; TypeError unless a real number, ValueError if below ``minimum``."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value) or (minimum is not None and value < minimum):
        bound = "finite" if minimum is None else f"finite and at least {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return float(value)
