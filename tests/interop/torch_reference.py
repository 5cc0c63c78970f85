"""torchvision reference networks with random weights and their state_dicts on disk in every format.

Nothing is downloaded: the networks come from torchvision's own definitions
(``tests/torchvision_models.py``) built on the ``meta`` device and filled with seeded random
values, He-scaled weights and randomised batch-norm statistics (so that evaluation-mode BN,
with its running mean and variance, is what is compared). Every test here skips cleanly
without torch (import this module after ``pytest.importorskip("torch")``).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch

from torchvision_models import torchvision_model

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
FORMATS = ("zip", "legacy", "wrapped", "safetensors")


def random_torchvision(arch: str, seed: int = 0, **kwargs):
    """torchvision's ``arch`` in eval mode with seeded random weights and BN statistics, built
    without running torchvision's (slow, for VGG) initialisers."""
    with torch.device("meta"):
        net = torchvision_model(arch, **kwargs)
    net = net.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=gen)
                module.bias.uniform_(-0.2, 0.2, generator=gen)
                module.running_mean.normal_(0.0, 0.2, generator=gen)
                module.running_var.uniform_(0.5, 2.0, generator=gen)
                module.num_batches_tracked.fill_(100)
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=gen)
    return net.eval()


def save_state(net, path: Path, fmt: str) -> Path:
    """``net.state_dict()`` written as ``fmt``: torch's zip or legacy format, wrapped in
    {"state_dict": ..., "epoch": ...}, or safetensors."""
    state = net.state_dict()
    if fmt == "zip":
        torch.save(state, path)
    elif fmt == "legacy":
        torch.save(state, path, _use_new_zipfile_serialization=False)
    elif fmt == "wrapped":
        torch.save({"state_dict": state, "epoch": 90, "best_acc1": 0.7, "arch": "x"}, path)
    elif fmt == "safetensors":
        path = save_safetensors(state, path.with_suffix(".safetensors"))
    else:
        raise ValueError(fmt)
    return path


_ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
              torch.bool: "BOOL"}


def save_safetensors(tensors: dict, path: Path, metadata: dict | None = None) -> Path:
    """``tensors`` (name -> torch tensor) as a .safetensors file: with the safetensors package when it
    is installed (the reference writer), else written here from the format's description (an
    8-byte header length, the JSON header, the raw little-endian bytes)."""
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        header, chunks, offset = {}, [], 0
        for name, t in tensors.items():
            raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
            header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape),
                            "data_offsets": [offset, offset + len(raw)]}
            chunks.append(raw)
            offset += len(raw)
        if metadata:
            header["__metadata__"] = metadata
        text = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))
        return path
    save_file(tensors, str(path), metadata=metadata)
    return path


def torch_logits(net, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def assert_close_logits(got: np.ndarray, want: np.ndarray, rel: float = 1e-4) -> None:
    """Within ``rel`` of the largest logit (float32 sums in two orders of summation)."""
    assert got.shape == want.shape
    err = float(np.abs(got - want).max() / np.abs(want).max())
    assert err <= rel, f"relative error {err:.2e}"


def torchvision_preprocess(path, normalize: bool = True) -> np.ndarray:
    """torchvision's ImageNet eval transform on a PIL image: Resize(256) (bilinear, antialiased as
    PIL does), CenterCrop(224), ToTensor, Normalize; (1, 3, 224, 224) float32."""
    from PIL import Image
    img = Image.open(path).convert("RGB")
    w, h = img.size
    size = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)       # (h, w)
    img = img.resize((size[1], size[0]), Image.BILINEAR)
    top, left = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    x = np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255.0
    if normalize:
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return x.transpose(2, 0, 1)[None].astype(np.float32)
