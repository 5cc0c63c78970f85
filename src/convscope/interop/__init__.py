"""Weights from elsewhere: PyTorch / safetensors state_dicts of torchvision models, read without torch.

The front door::

    import convscope
    clf = convscope.interop.import_torchvision("resnet50.pth", "resnet50")   # a Classifier
    clf.top(["photo.jpg"], k=5)                # ImageNet class names and probabilities
    clf.save("resnet50.npz")                   # an ordinary checkpoint: every command takes it

- :func:`read_state_dict`: the arrays of a ``torch.save`` file (zip or legacy format, the
  state_dict itself or a dict holding it under "state_dict" or "model") or of a
  ``.safetensors`` file, by name, as NumPy arrays. Nothing in the file is ever executed
  (:mod:`.torchfile`, :mod:`.safetensors`).
- :func:`import_torchvision`: those arrays renamed onto the zoo's architecture
  (:mod:`.torchvision`), with a preprocessing preset (:mod:`.presets`).
- :func:`imagenet_preset`: torchvision's ImageNet preprocessing and class names, for any
  importer (the ONNX one too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import WeightsError
from .presets import PRESETS, imagenet_class_names, imagenet_preset, plain_preset
from .torchvision import TORCHVISION_MODELS, build_from_state_dict

__all__ = ["WeightsError", "read_state_dict", "import_torchvision", "imagenet_preset", "imagenet_class_names",
           "TORCHVISION_MODELS", "PRESETS", "weights_format"]

_WRAPPER_KEYS = ("state_dict", "model")


def weights_format(path) -> str:
    """"torch-zip", "torch-legacy" or "safetensors", from the file's first bytes; WeightsError otherwise."""
    from .safetensors import is_safetensors
    from .torchfile import is_legacy_torch, is_torch_zip
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise WeightsError(f"'{path}' cannot be read: {err.strerror or err}") from None
    if is_torch_zip(head):
        return "torch-zip"
    if is_legacy_torch(head):
        return "torch-legacy"
    if is_safetensors(head):
        return "safetensors"
    looks = "an empty file" if not head else ("text" if all(32 <= b < 127 or b in b"\t\r\n" for b in head)
                                             else "something else")
    raise WeightsError(f"'{path}' is not a weights file torch.save or safetensors writes (it looks like {looks})")


def read_state_dict(path, *, max_bytes: int = 4 << 30) -> dict[str, np.ndarray]:
    """name -> array of the state_dict in ``path`` (see the module docstring), read without torch.

    A ``"module."`` prefix on every name (``nn.DataParallel``) is removed. WeightsError, one
    line naming the file, for anything unreadable, hostile or not a state_dict.
    """
    from .torchfile import describe_error, materialize, read_torch_file
    path = Path(path)
    kind = weights_format(path)
    try:
        if kind == "safetensors":
            from .safetensors import read_safetensors
            state = read_safetensors(path, max_bytes=max_bytes)
        else:
            obj, reader = read_torch_file(path, max_bytes=max_bytes)
            try:
                chosen = _state_of(obj, path)
            except BaseException:
                reader.close()
                raise
            state = materialize(chosen, reader)
    except Exception as err:
        described = describe_error(err, path)
        if described is None:
            raise
        raise described from None
    if not state:
        raise WeightsError(f"'{path}' holds no tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _state_of(obj, path: Path) -> dict:
    """The state_dict in what torch.save wrote: the object itself or its "state_dict" / "model" entry."""
    from .torchfile import Tensor

    def is_state(d) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(k, str) and isinstance(v, Tensor)
                                                       for k, v in d.items())
    if is_state(obj):
        return obj
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if is_state(obj.get(key)):
                return obj[key]
    what = f"a dict with keys {sorted(map(str, obj))[:6]}" if isinstance(obj, dict) else f"a {type(obj).__name__}"
    raise WeightsError(f"'{path}' holds {what}, not a state_dict (a dict of tensors by name) nor a dict "
                       f"with one under {' or '.join(repr(k) for k in _WRAPPER_KEYS)}")


def import_torchvision(weights_path, model: str, *, num_classes: int | None = None, preset: str = "imagenet"):
    """A :class:`~convscope.Classifier` holding torchvision ``model``'s weights from ``weights_path``.

    ``model``: one of :data:`TORCHVISION_MODELS` (any case). ``num_classes`` None: read from
    the output layer's weight. ``preset`` "imagenet": torchvision's ImageNet preprocessing
    (:func:`imagenet_preset`) and, for 1000 classes, the ImageNet class names (other counts
    get "0".."K-1"); "none": mean 0 / std 1 on the 0..1 scale and classes "0".."K-1". The
    model takes 3 x 224 x 224 inputs and runs in eval mode; its logits are torchvision's for
    the same input. ``clf.save(path)`` writes it as an ordinary checkpoint.
    """
    from ..classifier import Classifier
    from ..validation import check_choice, check_int
    check_choice(preset, "preset", PRESETS)
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", minimum=1, maximum=100_000)
    path = Path(weights_path)
    state = read_state_dict(path)
    network = build_from_state_dict(state, model, num_classes, source=f"'{path}'")
    name = network.config["name"]
    classes = network.config["num_classes"]
    if preset == "imagenet":
        settings = imagenet_preset(name)
        if classes != len(settings["class_names"]):
            settings["class_names"] = [str(k) for k in range(classes)]
    else:
        settings = plain_preset(classes)
    meta = {"preprocess": settings["preprocess"],
            "imported": {"from": str(path), "format": weights_format(path), "torchvision": name, "preset": preset}}
    if not settings["preprocess"]:
        meta.pop("preprocess")
    return Classifier(network, settings["normalizer"], settings["class_names"], settings["input_shape"], meta)
