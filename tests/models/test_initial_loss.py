"""Every model of the zoo starts training near a loss of ln K.

The first training batch (training mode: dropout on, batch statistics) of random normalised
images with random labels should cost about ln 10 = 2.303 with 10 classes: the output layer
starts with small weights (``models._small.OUTPUT_INIT``), so the logits start near equal.
He-scaled output layers started LeNet-5 at 3.3-9.9 and the CIFAR ResNets at up to 12 here;
now every model is within 0.06 of ln 10 on these batches.
"""

import numpy as np
import pytest

from convscope.layers import AuxiliaryClassifier, log_softmax
from convscope.models import available_models, build_model

CLASSES, BATCH, SEEDS = 10, 8, (0, 1, 2)
TOLERANCE = 0.15     # |first loss - ln 10|; He-initialised output layers missed it by 0.27-7.9


def first_batch_loss(model, seed: int) -> float:
    data = np.random.default_rng(1000 + seed)
    x = data.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)   # normalised images
    y = data.integers(0, CLASSES, BATCH)
    logits = model.train().forward(x).astype(np.float64)
    return float(-log_softmax(logits)[np.arange(BATCH), y].mean())


@pytest.mark.parametrize("name", available_models())
def test_first_loss_is_near_ln_classes(name):
    losses = [first_batch_loss(build_model(name, num_classes=CLASSES, in_channels=1, input_size=(28, 28),
                                           rng=np.random.default_rng(seed)), seed)
              for seed in SEEDS]
    assert all(abs(loss - np.log(CLASSES)) < TOLERANCE for loss in losses), \
        f"{name}: first losses {np.round(losses, 3)}, ln {CLASSES} = {np.log(CLASSES):.3f}"


def test_googlenet_auxiliary_heads_start_near_ln_classes():
    model = build_model("googlenet", num_classes=CLASSES, in_channels=1, input_size=(28, 28),
                        rng=np.random.default_rng(0), aux_logits=True)
    first_batch_loss(model, 0)
    y = np.random.default_rng(7).integers(0, CLASSES, BATCH)
    heads = [m for _, m in model.named_modules() if isinstance(m, AuxiliaryClassifier)]
    assert len(heads) == 2
    for head in heads:
        loss = -log_softmax(head.logits.astype(np.float64))[np.arange(BATCH), y].mean()
        assert abs(loss - np.log(CLASSES)) < TOLERANCE
