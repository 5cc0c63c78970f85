"""Checkpoints: one .npz holding the weights (PyTorch's dotted names) and a JSON config.

The config records how to rebuild the model (its registry name and arguments), the input
normalisation and the class names, so ``load_checkpoint(path)`` needs nothing but the
file. Files are written atomically: to a temporary file in the same directory, flushed to
disk, then renamed over the target, so a crash never leaves a half-written checkpoint.

A checkpoint is untrusted input. It is read with :func:`convscope.io.read_npz` (sizes
checked before anything is allocated, never unpickled); its config is parsed only if it is
at most 16 Mi characters and 64 levels deep, and checked by :func:`check_config` before any
model is built. The model is then built under :func:`convscope.layers.shapes_only` (no
memory) and every array's name, shape and kind compared with it; only then is the real
model built and loaded. The bounds, generous for any image classifier:

- ``num_classes`` in 1..100,000 (ImageNet-21k has 21,841 classes);
- ``in_channels`` in 1..64 (grey, RGB, RGBA, multispectral);
- ``input_size`` (H, W), each in 1..4096 (the ImageNet networks take 224);
- integer ``options`` (layer widths) up to 65,536 in size (VGG's widest layer has 4096 units);
- a ``"graph"`` model (an imported network) has exactly one option, ``graph``, its JSON spec,
  checked by :func:`convscope.layers.check_graph_spec` (bounded node count, known layer types
  only, every argument's type and range) before anything is built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..data.normalize import Normalizer
from ..io import NpzError, atomic_write, atomic_write_bytes, atomic_write_text, read_npz
from ..layers import Module, check_graph_spec, shapes_only
from ..models import available_models, build_model
from ..validation import check_int

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "check_config", "check_resumable", "atomic_write_bytes", "atomic_write_text", "FORMAT"]

FORMAT = "convscope-checkpoint"
VERSION = 1
_CONFIG_KEY = "__config__"
_OPTIM = "optim/"
MAX_CLASSES, MAX_CHANNELS, MAX_SIDE = 100_000, 64, 4096     # see the module docstring
_MAX_CONFIG_CHARS = 16 << 20       # a real config is a few KB (100,000 class names: ~3 MB)
_MAX_DEPTH = 64                    # a real config nests 3 levels (history -> epoch -> value)
_MAX_OPTION_ITEMS = 64             # mlp's hidden=(512, 256) is the longest list option
_MAX_OPTION_INT = 1 << 16          # layer widths: VGG's 4096 is the widest; some layers allocate their
                                   # biases even under shapes_only, so a width is bounded before building
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")     # a zip's first local header, or an empty zip
_LOOKS_LIKE = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"\x80", "a pickle"),
               (b"\x93NUMPY", "a single .npy array"), (b"\x1f\x8b", "a gzip file"))
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")     # +1 / -1 as int8
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SCALARS = (str, int, float, bool, type(None))
_SPEC_MODELS = ("graph",)          # registered but not in the zoo: built from model.options.graph


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
        arrays[f"{_OPTIM}{name}"] = np.asarray(value)
    full = {"format": FORMAT, "version": VERSION, **meta, "model": config}
    arrays[_CONFIG_KEY] = np.array(json.dumps(full))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, arrays) of a checkpoint file, every array read; CheckpointError if unreadable.

    The config has passed :func:`check_config`; the arrays are not yet compared with the model
    (:func:`load_checkpoint` does that).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    if path.is_dir():
        hint = path / "model.npz"
        raise CheckpointError(f"checkpoint '{path}' is a directory"
                              + (f"; did you mean '{hint}'?" if hint.exists() else ""))
    _refuse_non_npz(path)
    try:
        arrays = read_npz(path)
    except NpzError as err:
        raise CheckpointError(str(err)) from None
    if _CONFIG_KEY not in arrays:
        raise CheckpointError(f"'{path}' is an .npz file but not a convscope checkpoint "
                              f"(it has no {_CONFIG_KEY} entry)")
    config = _parse_config(arrays.pop(_CONFIG_KEY), path)
    check_config(config, path)
    return config, arrays


def load_checkpoint(path) -> tuple[Module, dict]:
    """Rebuild the model stored in ``path``; returns (model in eval mode, config).

    ``config["optim_state"]`` holds the optimizer arrays (see :func:`check_resumable`).
    """
    config, arrays = read_checkpoint(path)
    weights = {k: v for k, v in arrays.items() if not k.startswith(_OPTIM)}
    with shapes_only():                  # shapes and dtypes only: no memory, whatever the config says
        expected = _build(config, path).state_dict()
    _compare_weights(weights, expected, config["model"]["name"], path)
    model = _build(config, path)
    try:
        model.load_state_dict(weights)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"'{path}' does not hold a model convscope can rebuild: {err}") from None
    model.eval()
    config["optim_state"] = {k[len(_OPTIM):]: v for k, v in arrays.items() if k.startswith(_OPTIM)}
    return model, config


def check_config(config, path) -> None:
    """CheckpointError (one line naming ``path`` and the key) unless ``config`` is well formed.

    Required: ``format``, ``version`` and ``model`` (a registered ``name``, ``num_classes``,
    ``in_channels``, ``input_size`` within the module's bounds, ``options`` of JSON scalars or
    short lists of them). Checked when present: ``normalizer`` (one finite mean and one
    positive std per channel), ``class_names`` (one string per class), ``input_shape`` (the
    model's), ``data`` (a string), ``train`` (a dict) and ``history`` (a list).
    """
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a convscope checkpoint (unknown format)")
    version = _require(config, "version", path)
    if version != VERSION or isinstance(version, bool):
        raise CheckpointError(f"'{path}' is a version {_short(version)} checkpoint; this convscope reads "
                              f"version {VERSION} (written by a newer or foreign tool?)")
    mc = _require(config, "model", path, dict)
    name = _require(mc, "name", path, str, "model.name")
    if name not in available_models() and name not in _SPEC_MODELS:
        raise CheckpointError(f"'{path}' holds an unknown model {_short(name)}; known models: "
                              f"{', '.join(available_models())}")
    classes = _checked_int(path, _require(mc, "num_classes", path, name="model.num_classes"),
                           "model.num_classes", MAX_CLASSES)
    channels = _checked_int(path, _require(mc, "in_channels", path, name="model.in_channels"),
                            "model.in_channels", MAX_CHANNELS)
    size = _require(mc, "input_size", path, list, "model.input_size")
    if len(size) != 2:
        raise CheckpointError(f"'{path}': model.input_size must be [H, W], got {_short(size)}")
    for side, what in zip(size, ("H", "W")):
        _checked_int(path, side, f"model.input_size {what}", MAX_SIDE)
    options = mc.get("options", {})
    if not isinstance(options, dict):
        raise CheckpointError(f"'{path}': model.options must be a JSON object, got {_short(options)}")
    scalar_options = options if name != "graph" else {}      # a graph's one option is its spec
    if name == "graph":
        _check_graph_options(options, path)
    for key, value in scalar_options.items():
        items = value if isinstance(value, list) and len(value) <= _MAX_OPTION_ITEMS else [value]
        if not all(isinstance(v, _SCALARS) and not (isinstance(v, int) and abs(v) > _MAX_OPTION_INT)
                   for v in items):
            raise CheckpointError(f"'{path}': model.options[{_short(key)}] must be a number (integers up to "
                                  f"{_MAX_OPTION_INT}), string, bool, null or a short list of them, "
                                  f"got {_short(value)}")
    if "normalizer" in config:
        _check_normalizer(config["normalizer"], channels, path)
    if "class_names" in config:
        names = _require(config, "class_names", path, list)
        if len(names) != classes or not all(isinstance(n, str) for n in names):
            raise CheckpointError(f"'{path}': class_names must be {classes} strings, one per class "
                                  f"of the model, got {len(names)} entries")
    if "input_shape" in config and config["input_shape"] != [channels, *size]:
        raise CheckpointError(f"'{path}': input_shape {_short(config['input_shape'])} does not match "
                              f"the model's {[channels, *size]}")
    for key, kind in (("data", str), ("train", dict), ("history", list)):
        if key in config:
            _require(config, key, path, kind)


def check_resumable(config: dict, path) -> None:
    """CheckpointError (one line) unless ``config`` can continue a run: it has the training
    options (``train``, JSON scalars), the ``history`` (one dict of scalars per epoch), the
    ``normalizer`` and, when ``config`` comes from :func:`load_checkpoint`, optimizer state
    whose arrays match the model's parameters.
    """
    why = f"'{path}' cannot be resumed"
    for key, what in (("train", "training options"), ("history", "training history"),
                      ("normalizer", "input normalizer")):
        if key not in config:
            raise CheckpointError(f"{why}: it has no {what} (written by an older or foreign tool?)")
    check_config(config, path)
    for key, value in config["train"].items():
        if not isinstance(value, _SCALARS):
            raise CheckpointError(f"{why}: its training option {_short(key)} is {_short(value)}, not a plain value")
    limit = config["train"].get("limit")
    if limit is not None:
        _checked_int(path, limit, "train.limit", None)
    for i, entry in enumerate(config["history"]):
        if not isinstance(entry, dict) or not all(isinstance(v, _SCALARS) for v in entry.values()):
            raise CheckpointError(f"{why}: history entry {i} is {_short(entry)}, not a dict of numbers")
    if "optim_state" in config:
        _check_optim_state(config, path, why)


# -- helpers ----------------------------------------------------------------------------
def _refuse_non_npz(path: Path) -> None:
    """CheckpointError naming what ``path`` looks like, unless it starts like a zip archive."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise CheckpointError(f"checkpoint '{path}' cannot be read: {err.strerror}") from None
    if head[:4] in _ZIP_STARTS:
        return
    looks = next((what for magic, what in _LOOKS_LIKE if head.startswith(magic)),
                 "an empty file" if not head else None)
    raise CheckpointError(f"'{path}' is not a readable convscope checkpoint (not an .npz file"
                          + (f"; it looks like {looks})" if looks else ")"))


def _parse_config(raw: np.ndarray, path: Path) -> dict:
    """The JSON config held in the 0-d unicode array ``raw``, size and nesting bounded first."""
    if raw.dtype.kind != "U" or raw.shape != ():
        raise CheckpointError(f"'{path}': its {_CONFIG_KEY} entry is not a JSON string "
                              f"(dtype {raw.dtype.str}, shape {raw.shape})")
    if raw.dtype.itemsize // 4 > _MAX_CONFIG_CHARS:
        raise CheckpointError(f"'{path}': its config has {raw.dtype.itemsize // 4} characters, more "
                              f"than the {_MAX_CONFIG_CHARS} a checkpoint's config may have")
    text = str(raw[()])
    depth = _nesting_depth(text)
    if depth > _MAX_DEPTH:
        raise CheckpointError(f"'{path}': its config nests {depth} levels deep, more than {_MAX_DEPTH} "
                              f"(not a convscope config)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"'{path}': its config is not valid JSON: {str(err)[:200]}") from None


def _nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON ``text`` outside strings (checked before parsing)."""
    outside = _JSON_STRING.sub("", text).encode("utf-8", "replace")
    steps = np.frombuffer(outside.translate(_BRACKET_STEPS, _NOT_BRACKETS), dtype=np.int8)
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def _require(d: dict, key: str, path, kind: type | None = None, name: str | None = None):
    """``d[key]``, or a CheckpointError naming the missing (or mistyped) key and the file."""
    name = name or key
    if key not in d:
        raise CheckpointError(f"'{path}': its config has no {name!r} (a damaged or foreign checkpoint?)")
    value = d[key]
    if kind is not None and not isinstance(value, kind):
        raise CheckpointError(f"'{path}': {name} must be a {'JSON object' if kind is dict else kind.__name__}"
                              f", got {_short(value)}")
    return value


def _checked_int(path, value, name: str, maximum: int | None) -> int:
    try:
        return check_int(value, name, minimum=1, maximum=maximum)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"'{path}': {err}") from None


def _check_normalizer(value, channels: int, path) -> None:
    if not isinstance(value, dict) or "mean" not in value or "std" not in value:
        raise CheckpointError(f"'{path}': normalizer must be a dict with 'mean' and 'std', got {_short(value)}")
    for key in ("mean", "std"):
        seq = value[key]
        if not (isinstance(seq, list) and len(seq) == channels and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in seq)):
            raise CheckpointError(f"'{path}': normalizer.{key} must be {channels} numbers, one per input "
                                  f"channel, got {_short(seq)}")
    try:
        Normalizer(value["mean"], value["std"])
    except ValueError as err:
        raise CheckpointError(f"'{path}': normalizer: {err}") from None


def _check_graph_options(options: dict, path) -> None:
    """A graph model's options: exactly ``{"graph": spec}``, the spec well formed."""
    if set(options) != {"graph"}:
        raise CheckpointError(f"'{path}': a graph model's options must be exactly {{'graph': spec}}, "
                              f"got the keys {_short(sorted(options))}")
    try:
        check_graph_spec(options["graph"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"'{path}': model.options.graph: {err}") from None


def _build(config: dict, path) -> Module:
    mc = config["model"]
    try:
        return build_model(mc["name"], num_classes=mc["num_classes"], in_channels=mc["in_channels"],
                           input_size=tuple(mc["input_size"]), **mc.get("options", {}))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"'{path}' does not hold a model convscope can rebuild: {err}") from None
    except MemoryError:
        raise CheckpointError(f"'{path}': not enough memory to build its {mc['name']} model") from None


def _compare_weights(weights: dict, expected: dict, model_name: str, path) -> None:
    """CheckpointError naming the first missing or unexpected array, then the first mis-shaped
    or mis-typed one (names first, as :meth:`Module.load_state_dict` does)."""
    for key in expected:
        if key not in weights:
            raise CheckpointError(f"'{path}': weight '{key}' of the {model_name} model is missing "
                                  f"from the file")
    for key in weights:
        if key not in expected:
            raise CheckpointError(f"'{path}' holds an unexpected array '{key}' "
                                  f"(not a weight of the {model_name} model)")
    for key, want in expected.items():
        got = weights[key]
        if got.shape != want.shape:
            raise CheckpointError(f"'{path}': weight '{key}' has shape {got.shape} in the file but "
                                  f"the {model_name} model needs {want.shape}")
        if got.dtype.kind != want.dtype.kind:
            raise CheckpointError(f"'{path}': weight '{key}' is {got.dtype} in the file but the "
                                  f"{model_name} model needs {want.dtype}")


def _check_optim_state(config: dict, path, why: str) -> None:
    """The optimizer arrays: ``__steps__`` plus "<parameter>.<slot>" shaped like the parameter."""
    state = config["optim_state"]
    steps = state.get("__steps__")
    if steps is None:
        raise CheckpointError(f"{why}: it holds no optimizer state (a final model.npz rather than "
                              f"a checkpoint.npz?)")
    if steps.shape != () or steps.dtype.kind not in "iu" or int(steps) < 0:
        raise CheckpointError(f"{why}: its optimizer step count is {steps.dtype} {steps.shape}, "
                              f"not a count")
    with shapes_only():
        params = _build(config, path).named_parameters()
    for key, value in state.items():
        if key == "__steps__":
            continue
        param, _, slot = key.rpartition(".")
        if param not in params or not slot:
            raise CheckpointError(f"{why}: optimizer state '{key}' belongs to no parameter of the "
                                  f"{config['model']['name']} model")
        if value.shape != params[param].shape or value.dtype.kind != "f":
            raise CheckpointError(f"{why}: optimizer state '{key}' is {value.dtype} {value.shape}; "
                                  f"its parameter is {params[param].dtype} {params[param].shape}")


def _short(value) -> str:
    """``repr(value)``, cut to a readable length for an error message."""
    if isinstance(value, (list, dict)) and len(value) > 8:
        return f"a {'list' if isinstance(value, list) else 'dict'} of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
