"""A small LeNet-5 trained inside the test session on a slice of MNIST, for the §3 sanity tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from convscope.data import Dataset, Normalizer
from convscope.layers import Module
from convscope.models import build_model
from convscope.training import TrainConfig, Trainer


@dataclass
class Trained:
    model: Module
    normalizer: Normalizer
    data: Dataset
    x_test: np.ndarray          # (N, 1, 28, 28) float32, normalised test images
    y_test: np.ndarray          # (N,) int64
    test_accuracy: float


@pytest.fixture(scope="session")
def trained(mnist_small) -> Trained:
    """LeNet-5 after 3 epochs on 2,048 MNIST images (about 0.9 test accuracy; a few seconds)."""
    model = build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(0))
    trainer = Trainer(model, mnist_small, TrainConfig(epochs=3, batch_size=64), progress=False)
    metrics = trainer.fit()
    model.eval()
    x = trainer.normalizer(mnist_small.test_images)
    return Trained(model, trainer.normalizer, mnist_small, x, mnist_small.test_labels, metrics["test_accuracy"])
