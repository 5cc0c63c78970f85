"""The optional ``onnx`` dependency, loaded on first use, and the errors of the ONNX bridge."""

from __future__ import annotations

import importlib

__all__ = ["OnnxImportError", "OnnxExportError", "OnnxUnavailableError", "require_onnx", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "convscope[onnx]"'


class OnnxImportError(ValueError):
    """An ONNX file convscope cannot (or will not) import; the message is one line."""


class OnnxExportError(ValueError):
    """A model convscope cannot write as ONNX; the message is one line."""


class OnnxUnavailableError(ModuleNotFoundError):
    """The ``onnx`` package is not installed."""


def require_onnx():
    """The ``onnx`` module, or OnnxUnavailableError with the one-line install hint."""
    try:
        return importlib.import_module("onnx")
    except ModuleNotFoundError:
        raise OnnxUnavailableError(f"ONNX support needs the onnx package: {INSTALL_HINT}",
                                   name="onnx") from None
