"""A small LeNet-5 Classifier trained inside the test session on a slice of MNIST, for the §3 tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from convscope import Classifier
from convscope.data import Dataset
from convscope.models import build_model
from convscope.training import TrainConfig, Trainer


@dataclass
class Trained:
    """The session's :class:`~convscope.Classifier` and the data it was trained and tested on.

    ``model`` and ``normalizer`` are the classifier's own (for the advanced, model-space form).
    """

    clf: Classifier
    data: Dataset
    x_test: np.ndarray          # (N, 1, 28, 28) float32, the test images in model space
    y_test: np.ndarray          # (N,) int64
    test_accuracy: float

    @property
    def model(self):
        return self.clf.model

    @property
    def normalizer(self):
        return self.clf.normalizer


@pytest.fixture(scope="session")
def trained(mnist_small) -> Trained:
    """LeNet-5 after 3 epochs on 2,048 MNIST images (about 0.9 test accuracy; a few seconds)."""
    model = build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(0))
    trainer = Trainer(model, mnist_small, TrainConfig(epochs=3, batch_size=64), progress=False)
    metrics = trainer.fit()
    clf = Classifier(trainer.model, trainer.normalizer, mnist_small.class_names, mnist_small.input_shape,
                     {"data": "mnist-small"})
    x = clf.preprocess(mnist_small.test_images)
    return Trained(clf, mnist_small, x, mnist_small.test_labels, metrics["test_accuracy"])


@pytest.fixture(scope="session")
def clf(trained) -> Classifier:
    """The trained LeNet-5 as users hold it: ``convscope.load`` gives the same kind of object."""
    return trained.clf
