"""Fixtures of the explorer tests: a briefly trained LeNet-5 run, served once per session."""

from __future__ import annotations

import pytest

pytest.importorskip("PIL", reason="convscope explore needs Pillow (convscope[pictures])")

import convscope  # noqa: E402
from convscope.explore import Explorer  # noqa: E402
from explore_client import serving  # noqa: E402


@pytest.fixture(scope="session")
def lenet_run(tmp_path_factory):
    """A LeNet-5 run directory (model.npz, metrics.json) trained for three short epochs."""
    out = tmp_path_factory.mktemp("explore") / "lenet-run"
    convscope.train("lenet5", epochs=3, limit=2000, test_limit=500, progress=False, out=str(out))
    return out


@pytest.fixture(scope="session")
def lenet_clf(lenet_run):
    return convscope.load(lenet_run)


@pytest.fixture(scope="session")
def lenet(lenet_run, lenet_clf, mnist):
    """A Client of the LeNet-5 explorer (with MNIST and the run), shared by the session."""
    explorer = Explorer(lenet_clf, mnist, run_dir=lenet_run, sample=256)
    with serving(explorer) as client:
        yield client
