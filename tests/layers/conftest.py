"""Fixtures shared by the layer tests: an explicit generator and an optional PyTorch."""

import numpy as np
import pytest


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id, so every test (and parameter set) is reproducible."""
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(request.node.nodeid))
    return np.random.default_rng(seed)


@pytest.fixture
def torch():
    """PyTorch, single-threaded; the test is skipped when it is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch
