"""Checkpoints: one .npz holding the weights (PyTorch's dotted names) and a JSON config.

The config records how to rebuild the model (its registry name and arguments), the input
normalisation and the class names, so ``load_checkpoint(path)`` needs nothing but the
file. Files are written atomically: to a temporary file in the same directory, flushed to
disk, then renamed over the target, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..io import atomic_write, atomic_write_bytes, atomic_write_text
from ..layers import Module
from ..models import build_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "atomic_write_bytes", "atomic_write_text", "FORMAT"]

FORMAT = "convscope-checkpoint"
_CONFIG_KEY = "__config__"


class CheckpointError(ValueError):
    """A file that is not a readable convscope checkpoint."""


def save_checkpoint(path, model: Module, meta: dict, extra_arrays: dict | None = None) -> None:
    """Write model weights and buffers plus ``meta`` (JSON-able) atomically to ``path``.

    ``model.config`` (set by :func:`convscope.models.build_model`) is stored as ``meta["model"]``.
    ``extra_arrays`` (optimizer state) are stored under "optim/<name>".
    """
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError("model has no .config; build it with convscope.models.build_model")
    arrays = {name: np.ascontiguousarray(value) for name, value in model.state_dict().items()}
    for name, value in (extra_arrays or {}).items():
        arrays[f"optim/{name}"] = np.asarray(value)
    full = {"format": FORMAT, "version": 1, **meta, "model": config}
    arrays[_CONFIG_KEY] = np.array(json.dumps(full))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, arrays) of a checkpoint file, every array read; CheckpointError if unreadable."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        hint = path / "model.npz"
        raise CheckpointError(f"checkpoint '{path}' is a directory"
                              + (f"; did you mean '{hint}'?" if hint.exists() else ""))
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise CheckpointError(f"'{path}' is not a readable convscope checkpoint "
                              f"(a truncated or foreign file?): {err}") from None
    if _CONFIG_KEY not in arrays:
        raise CheckpointError(f"'{path}' is an .npz file but not a convscope checkpoint "
                              f"(it has no {_CONFIG_KEY} entry)")
    try:
        config = json.loads(str(arrays.pop(_CONFIG_KEY)))
    except ValueError as err:
        raise CheckpointError(f"'{path}': its config is not valid JSON: {err}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or "model" not in config:
        raise CheckpointError(f"'{path}' is not a convscope checkpoint (unknown format)")
    return config, arrays


def load_checkpoint(path) -> tuple[Module, dict]:
    """Rebuild the model stored in ``path``; returns (model in eval mode, config)."""
    config, arrays = read_checkpoint(path)
    mc = config["model"]
    try:
        model = build_model(mc["name"], num_classes=mc["num_classes"], in_channels=mc["in_channels"],
                            input_size=tuple(mc["input_size"]), **mc.get("options", {}))
        model.load_state_dict({k: v for k, v in arrays.items() if not k.startswith("optim/")})
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"'{path}' does not hold a model convscope can rebuild: {err}") from None
    model.eval()
    config["optim_state"] = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
    return model, config
