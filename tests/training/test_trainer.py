"""The training loop end to end on a slice of MNIST: learning, reloading, divergence, resuming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convscope.data import Dataset
from convscope.models import build_model
from convscope.training import TrainConfig, Trainer, TrainingDiverged, load_checkpoint, predict


def _lenet(seed=0):
    return build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(seed))


def test_a_few_hundred_steps_learn_and_the_checkpoint_reloads(mnist_small, tmp_path):
    config = TrainConfig(epochs=4, batch_size=32, lr=0.05)        # 4 x 64 = 256 steps
    trainer = Trainer(_lenet(), mnist_small, config, tmp_path, progress=False)
    metrics = trainer.fit()
    assert metrics["test_accuracy"] > 0.8                           # chance is 0.1
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4]
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"]
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == metrics["test_accuracy"] and on_disk["model"] == "lenet5"
    for key in ("train_loss", "train_accuracy", "test_accuracy", "seconds"):
        assert all(key in entry for entry in on_disk["history"])
    loaded, meta = load_checkpoint(tmp_path / "model.npz")
    normalizer = trainer.normalizer
    images = mnist_small.test_images
    np.testing.assert_array_equal(predict(loaded, images, normalizer), predict(trainer.model, images, normalizer))
    assert meta["class_names"] == mnist_small.class_names


def test_divergence_stops_before_overwriting_anything(mnist_small, tmp_path):
    small = mnist_small.limit(256)
    Trainer(_lenet(), small, TrainConfig(epochs=1, batch_size=64), tmp_path, progress=False).fit()
    saved = {name: (tmp_path / name).read_bytes() for name in ("model.npz", "checkpoint.npz", "metrics.json")}
    model = _lenet(1)
    model.get_module("fc3").params["bias"][:] = np.nan              # the loss is NaN at once
    trainer = Trainer(model, small, TrainConfig(epochs=2, batch_size=64), tmp_path, progress=False)
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, batch 1"):
        trainer.fit()
    assert {name: (tmp_path / name).read_bytes() for name in saved} == saved


def test_a_large_learning_rate_diverges_with_a_clear_message(mnist_small):
    trainer = Trainer(_lenet(), mnist_small.limit(512), TrainConfig(epochs=2, batch_size=64, lr=1e9),
                      progress=False)
    with pytest.raises(TrainingDiverged, match="try a lower learning rate"):
        trainer.fit()


class _Stop(Exception):
    pass


def test_resumed_run_equals_an_uninterrupted_one(mnist_small, tmp_path):
    data = Dataset("slice", mnist_small.train_images[:384], mnist_small.train_labels[:384],
                   mnist_small.test_images[:100], mnist_small.test_labels[:100], mnist_small.class_names)
    config = dict(epochs=3, batch_size=64, translate=2, seed=7)
    full = Trainer(_lenet(), data, TrainConfig(**config), tmp_path / "full", progress=False)
    full.fit()

    cut = Trainer(_lenet(), data, TrainConfig(**config), tmp_path / "cut", progress=False)
    real_epoch = cut.train_epoch

    def killed_in_second_epoch(epoch, bar=None):
        if epoch == 1:
            raise _Stop
        return real_epoch(epoch, bar)

    cut.train_epoch = killed_in_second_epoch
    with pytest.raises(_Stop):
        cut.fit()
    assert not (tmp_path / "cut" / "model.npz").exists()
    resumed = Trainer.resume(tmp_path / "cut", data, progress=False)
    assert resumed.start_epoch == 1
    metrics = resumed.fit()
    assert len(metrics["history"]) == 3
    for name, value in full.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value, err_msg=name)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=-1), dict(lr=float("nan")),
                                 dict(schedule="linear"), dict(label_smoothing=1.5)])
def test_bad_configs_are_refused(mnist_small, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Trainer(_lenet(), mnist_small, TrainConfig(**bad), progress=False)


def test_pca_colour_needs_rgb(mnist_small):
    with pytest.raises(ValueError, match="RGB"):
        Trainer(_lenet(), mnist_small, TrainConfig(pca_color=0.1), progress=False)


def test_auxiliary_classifiers_add_their_weighted_losses(mnist_small, monkeypatch):
    """GoogLeNet with aux_logits: the step's loss is main + 0.3 * (aux1 + aux2), and the side
    heads learn (they receive gradients); evaluation ignores them."""
    from convscope.layers import SoftmaxCrossEntropy

    seen = []
    original = SoftmaxCrossEntropy.forward

    def spy(self, logits, targets):
        value = original(self, logits, targets)
        seen.append((logits.shape, value))
        return value

    monkeypatch.setattr(SoftmaxCrossEntropy, "forward", spy)
    model = build_model("googlenet", 10, 1, (28, 28), rng=np.random.default_rng(0), aux_logits=True)
    before = {k: v.copy() for k, v in model.named_parameters().items() if k.startswith("aux")}
    trainer = Trainer(model, mnist_small.limit(16), TrainConfig(epochs=1, batch_size=16), progress=False)
    metrics = trainer.fit()                                           # one step
    (_, main), (_, aux1), (_, aux2) = seen[:3]
    assert metrics["history"][0]["train_loss"] == pytest.approx(main + 0.3 * (aux1 + aux2), rel=1e-6)
    after = model.named_parameters()
    assert set(before) >= {"aux1.head.fc2.weight", "aux2.head.conv.weight"}
    assert all(not np.array_equal(before[k], after[k]) for k in before)
    model.eval()
    model.forward(trainer.normalizer(mnist_small.test_images[:4]))
    assert model.get_module("aux1").logits is None
