"""What travels with an exported model besides its graph: ``metadata_props`` keys, as JSON.

=========================  ==============================================================
key                        value (JSON text)
=========================  ==============================================================
``convscope.normalizer``   ``{"mean": [...], "std": [...]}``, one number per channel, in
                           [0, 1] pixel units: the model's input is (x / 255 - mean) / std
``convscope.class_names``  ``["cat", "dog", ...]``, one string per output
``convscope.preprocess``   ``{"resize": 256, "crop": true}`` or ``{}``: how images of another
                           size reach the input size (``Classifier.meta["preprocess"]``)
``convscope.input_shape``  ``[C, H, W]``, one image's shape (the graph's input has a dynamic
                           batch axis, ``[N, C, H, W]``)
``convscope.model``        the registry name the network was built as (``"resnet18"``), a
                           plain string
``convscope.version``      the convscope version that wrote the file, a plain string
=========================  ==============================================================

:func:`read_metadata` reads them back from an untrusted file: each value at most
:data:`MAX_VALUE_CHARS` characters, parsed as JSON with the nesting bounded, checked for its
expected type; anything malformed is an :class:`~convscope.onnx.errors.OnnxImportError`.
"""

from __future__ import annotations

import json

from .errors import OnnxImportError

__all__ = ["KEYS", "PREFIX", "write_metadata", "read_metadata", "MAX_VALUE_CHARS"]

PREFIX = "convscope."
KEYS = ("normalizer", "class_names", "preprocess", "input_shape", "model", "version")
_JSON_KEYS = ("normalizer", "class_names", "preprocess", "input_shape")
MAX_VALUE_CHARS = 16 << 20        # 100,000 class names are ~3 MB of JSON
_MAX_DEPTH = 4                    # the deepest value ({"mean": [...]}) nests 2 levels


def write_metadata(values: dict) -> dict[str, str]:
    """``{"convscope.<key>": text}`` for the keys present in ``values`` (see the table)."""
    out = {}
    for key in KEYS:
        if values.get(key) is not None:
            value = values[key]
            out[PREFIX + key] = json.dumps(value) if key in _JSON_KEYS else str(value)
    return out


def _depth(text: str) -> int:
    """Deepest [ / { nesting of JSON ``text``, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > _MAX_DEPTH:
                return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


_KINDS = {"normalizer": dict, "class_names": list, "preprocess": dict, "input_shape": list}


def read_metadata(props) -> dict:
    """The convscope keys of a model's ``metadata_props`` (a list of key/value entries), parsed
    and type-checked; other keys are ignored."""
    out = {}
    for entry in props:
        if not entry.key.startswith(PREFIX) or entry.key[len(PREFIX):] not in KEYS:
            continue
        key, text = entry.key[len(PREFIX):], entry.value
        if len(text) > MAX_VALUE_CHARS:
            raise OnnxImportError(f"metadata {entry.key!r} has {len(text)} characters, more than "
                                  f"{MAX_VALUE_CHARS}")
        if key not in _JSON_KEYS:
            out[key] = text
            continue
        if _depth(text) > _MAX_DEPTH:
            raise OnnxImportError(f"metadata {entry.key!r} nests deeper than {_MAX_DEPTH} levels")
        try:
            value = json.loads(text)
        except ValueError as err:
            raise OnnxImportError(f"metadata {entry.key!r} is not valid JSON: {str(err)[:100]}") from None
        if not isinstance(value, _KINDS[key]):
            raise OnnxImportError(f"metadata {entry.key!r} must be a JSON {_KINDS[key].__name__}, "
                                  f"got {type(value).__name__}")
        out[key] = value
    return out
