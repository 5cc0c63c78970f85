"""Fine-tuning (``convscope.train(init=...)`` / ``convscope train --init``): a new head, frozen layers,
the checkpoint's preprocessing, photos of any size cropped as the preset says."""

from __future__ import annotations

import numpy as np
import pytest

import convscope
from convscope import Classifier
from convscope.cli.main import main


def _digit_folder(root, mnist, classes=(0, 1, 2), per_class=24):
    Image = pytest.importorskip("PIL.Image")
    for k in classes:
        (root / f"digit{k}").mkdir(parents=True)
        for j, index in enumerate(np.flatnonzero(mnist.train_labels == k)[:per_class]):
            Image.fromarray(mnist.train_images[index, 0]).save(root / f"digit{k}" / f"{j:03d}.png")
    return root


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("base") / "lenet"
    convscope.train("lenet5", data=str(mnist_dir), epochs=1, limit=256, test_limit=64, progress=False, out=out)
    return out


def test_a_new_head_frozen_layers_and_the_checkpoint_preprocessing(lenet_run, mnist, tmp_path):
    folder = _digit_folder(tmp_path / "three", mnist)
    start = convscope.load(lenet_run)
    clf = convscope.train(init=lenet_run, data=str(folder), epochs=1, batch_size=16, freeze="conv2",
                          progress=False, out=tmp_path / "tuned")
    assert clf.class_names == ["digit0", "digit1", "digit2"] and clf.num_classes == 3
    assert clf.normalizer.to_dict() == start.normalizer.to_dict()          # the checkpoint's, not the folder's
    before, after = start.model.state_dict(), clf.model.state_dict()
    for name in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
        np.testing.assert_array_equal(after[name], before[name])            # frozen
    assert not np.array_equal(after["fc1.weight"], before["fc1.weight"])   # trained
    assert after["fc3.weight"].shape == (3, before["fc3.weight"].shape[1])  # the new head
    reloaded = convscope.load(tmp_path / "tuned")
    assert reloaded.meta["init"] == str(lenet_run) and reloaded.class_names == clf.class_names
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        convscope.train(init=lenet_run, data=str(folder), epochs=1, freeze="conv9", progress=False)
    with pytest.raises(ValueError, match="drop --model"):
        convscope.train("vgg11", init=lenet_run, data=str(folder), progress=False)


def test_photos_of_any_size_follow_the_preset(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    base = Classifier.untrained("resnet18", num_classes=5, input_shape=(3, 96, 96), rng=rng)
    base.meta["preprocess"] = {"resize": 110, "crop": True}
    base = Classifier(base.model, base.normalizer, base.class_names, base.input_shape, base.meta)
    ck = base.save(tmp_path / "base.npz")
    for k, (h, w) in enumerate([(120, 160), (150, 112)]):
        (tmp_path / "photos" / f"class{k}").mkdir(parents=True)
        for j in range(7):
            Image.fromarray(rng.integers(0, 256, (h + j, w, 3), dtype=np.uint8)).save(
                tmp_path / "photos" / f"class{k}" / f"{j}.jpg")
    code = main(["train", "--init", str(ck), "--data", str(tmp_path / "photos"), "--epochs", "1",
                 "--batch-size", "4", "--quiet", "--out", str(tmp_path / "tuned")])
    assert code == 0
    clf = convscope.load(tmp_path / "tuned")
    assert clf.input_shape == (3, 96, 96) and clf.num_classes == 2 and clf.meta["preprocess"]["resize"] == 110
    photo = tmp_path / "photos" / "class0" / "0.jpg"
    assert clf.predict([photo]).shape == (1, 2)
