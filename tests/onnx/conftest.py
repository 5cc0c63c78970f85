"""Fixtures of the ONNX tests: torchvision exports, made once per session (exporting is the slow part)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import pytest

from onnx_helpers import SIDES, build_reference, require


@pytest.fixture(scope="session")
def torchvision_export(tmp_path_factory):
    """``export(arch, exporter, side=64)`` -> (path, x, torch logits), cached per session."""
    torch = require("torch")
    require("onnx")
    torch.set_num_threads(2)
    cache = {}
    root = tmp_path_factory.mktemp("torchvision_onnx")

    def export(arch: str, exporter: str, side: int | None = None):
        side = side or SIDES.get(arch, 64)
        key = (arch, exporter, side)
        if key not in cache:
            net = build_reference(arch, side)
            x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(1))
            path = root / f"{arch}_{exporter}_{side}.onnx"
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                logging.disable(logging.ERROR)
                try:
                    if exporter == "torchscript":
                        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["input"],
                                          output_names=["logits"], opset_version=17,
                                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
                    else:
                        torch.onnx.export(net, (x,), str(path), dynamo=True, input_names=["input"],
                                          output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("N")},))
                finally:
                    logging.disable(logging.NOTSET)
            with torch.no_grad():
                cache[key] = (path, x.numpy(), net(x).numpy(), net)
        return cache[key]
    return export

