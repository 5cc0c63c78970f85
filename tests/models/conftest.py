"""Fixtures for the model-zoo tests: an explicit generator, and the shared gradient checker.

``tests/layers/gradcheck.py`` is the one gradient-check helper; it is put on the import
path here so that ``from gradcheck import check_module_grads`` works from this directory too.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

_LAYER_TESTS = str(Path(__file__).resolve().parent.parent / "layers")
if _LAYER_TESTS not in sys.path:
    sys.path.insert(0, _LAYER_TESTS)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id, so every test (and parameter set) is reproducible."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(request.node.nodeid))
    return np.random.default_rng(seed)
