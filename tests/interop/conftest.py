"""Fixtures of the interop tests: a photo and a torchvision ResNet-18's weights on disk.

This file puts ``tests/interop/`` on ``sys.path`` for ``from torch_reference import ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> Path:
    """A colour photo of another size than 224: matplotlib's sample of Grace Hopper (512x600) when
    installed, else a synthetic scene drawn with NumPy, saved as JPEG."""
    try:
        import matplotlib.cbook
        path = Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
        if path.is_file():
            return path
    except (ImportError, OSError, ValueError):
        pass
    from PIL import Image
    yy, xx = np.mgrid[0:300, 0:400]
    scene = np.stack([(xx * 255 // 400), (yy * 255 // 300), ((xx + yy) % 256)], axis=-1).astype(np.uint8)
    scene[100:200, 150:260] = (220, 40, 40)                    # a red box on a gradient
    path = tmp_path_factory.mktemp("photo") / "scene.jpg"
    Image.fromarray(scene).save(path, quality=92)
    return path


@pytest.fixture(scope="session")
def resnet18_file(tmp_path_factory):
    """(torchvision ResNet-18 with random weights, its state_dict in torch's zip format)."""
    pytest.importorskip("torch")
    from torch_reference import random_torchvision, save_state
    net = random_torchvision("resnet18", seed=1)
    return net, save_state(net, tmp_path_factory.mktemp("weights") / "resnet18.pth", "zip")
