"""``convscope.train``: library policy (learning rates, limits), run directories, the returned Classifier."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import convscope
from convscope.training import DEFAULT_LR, RunDirError, TrainConfig, Trainer, TrainingDiverged
from convscope.models import build_model


def test_learning_rate_defaults_per_optimizer():
    assert TrainConfig().resolved().lr == DEFAULT_LR["sgd"] == 0.05
    assert TrainConfig(optimizer="adam").resolved().lr == 1e-3
    assert TrainConfig(optimizer="adamw", lr=0.01).resolved().lr == 0.01


def test_trainer_honours_the_limits_and_records_them(mnist_small, tmp_path):
    model = build_model("lenet5", rng=np.random.default_rng(0))
    trainer = Trainer(model, mnist_small, TrainConfig(epochs=1, limit=300, test_limit=100, optimizer="adam"),
                      tmp_path, progress=False)
    assert trainer.optimizer.lr == pytest.approx(1e-3)           # Adam's own default, not SGD's 0.05
    metrics = trainer.fit()
    assert metrics["train_images"] == 300 and metrics["test_images"] == 100
    assert json.loads((tmp_path / "metrics.json").read_text())["train_images"] == 300
    assert sum(metrics["confusion_matrix"], []).count(0) < 100 and np.sum(metrics["confusion_matrix"]) == 100


def test_train_returns_a_classifier_and_writes_the_run(mnist_dir, tmp_path):
    out = tmp_path / "x"
    clf = convscope.train("lenet5", data=str(mnist_dir), epochs=1, limit=256, seed=0, progress=False, out=out)
    assert isinstance(clf, convscope.Classifier) and not clf.model.training
    assert clf.class_names == [str(k) for k in range(10)] and clf.input_shape == (1, 28, 28)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "metrics.json", "model.npz"]
    again = convscope.load(out)
    images = np.zeros((2, 28, 28), np.uint8)
    np.testing.assert_array_equal(again.predict(images), clf.predict(images))
    saved = clf.save(tmp_path / "copy.npz")
    np.testing.assert_array_equal(convscope.load(saved).predict(images), clf.predict(images))


def test_a_directory_that_holds_a_run_is_refused_unless_overwritten(mnist_dir, tmp_path):
    out = tmp_path / "run"
    quick = dict(data=str(mnist_dir), epochs=1, limit=128, test_limit=64, progress=False)
    convscope.train(out=out, seed=0, **quick)
    first = (out / "model.npz").read_bytes()
    with pytest.raises(RunDirError, match="already holds a run.*--overwrite"):
        convscope.train(out=out, seed=1, **quick)
    assert (out / "model.npz").read_bytes() == first                   # untouched
    convscope.train(out=out, seed=1, overwrite=True, **quick)
    assert (out / "model.npz").read_bytes() != first
    with pytest.raises(RunDirError, match="is a file"):
        convscope.train(out=out / "model.npz", **quick)


def test_bad_options_are_refused_before_any_work(mnist_dir):
    with pytest.raises(ValueError, match="translate 1000 is too large for 28x28"):
        convscope.train(data=str(mnist_dir), translate=1000, progress=False)
    with pytest.raises(ValueError, match="seed must be"):
        convscope.train(data=str(mnist_dir), seed=-1, progress=False)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        convscope.train(data=str(mnist_dir), optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="resume continues a run with its saved settings; drop --epochs"):
        convscope.train(resume="anything", epochs=3)


def test_divergence_says_truthfully_what_the_directory_holds(mnist_dir, tmp_path):
    from convscope.training import read_checkpoint
    with pytest.raises(TrainingDiverged) as err:
        convscope.train(data=str(mnist_dir), epochs=3, limit=256, lr=1e6, progress=False, out=tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoint.npz"
    if ckpt.exists():                       # the message names the epoch the file really holds
        held = len(read_checkpoint(ckpt)[0]["history"])
        assert f"checkpoint.npz' holds epoch {held} of 3" in str(err.value)
    else:
        assert "nothing was saved" in str(err.value)
    assert not (tmp_path / "a" / "model.npz").exists()


def test_diverged_weights_are_never_saved(mnist_small, tmp_path):
    """A step that leaves NaN weights at the end of an epoch must not become the checkpoint."""
    model = build_model("lenet5", rng=np.random.default_rng(0))
    trainer = Trainer(model, mnist_small.limit(64), TrainConfig(epochs=2, batch_size=64), tmp_path, progress=False)
    step = trainer.optimizer.step

    def poisoned_step():
        step()
        model.named_parameters()["conv1.weight"][0, 0, 0, 0] = np.nan

    trainer.optimizer.step = poisoned_step
    with pytest.raises(TrainingDiverged, match="conv1.weight became non-finite.*nothing was saved"):
        trainer.fit()
    assert not (tmp_path / "checkpoint.npz").exists()


def test_files_honour_the_umask(mnist_dir, tmp_path):
    old = os.umask(0o022)
    try:
        convscope.train(data=str(mnist_dir), epochs=1, limit=64, test_limit=32, progress=False, out=tmp_path / "r")
    finally:
        os.umask(old)
    for name in ("model.npz", "metrics.json", "checkpoint.npz"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o644


def test_a_second_concurrent_run_in_one_directory_is_refused(tmp_path):
    from convscope.training import RunLock
    with RunLock(tmp_path):
        child = subprocess.run([sys.executable, "-c", "import sys; from convscope.training import RunLock\n"
                                f"RunLock({str(tmp_path)!r}).acquire()"], capture_output=True, text=True)
        assert child.returncode != 0 and "in use by another convscope run" in child.stderr
    RunLock(tmp_path).acquire()                              # released: free again


def test_ctrl_c_says_what_was_saved_and_how_to_resume(mnist_dir, tmp_path):
    script = tmp_path / "train.py"
    script.write_text("import sys\nfrom convscope.cli.main import main\n"
                      f"sys.exit(main(['train', '--data', {str(mnist_dir)!r}, '--epochs', '50', '--limit', '512', "
                      f"'--test-limit', '64', '--quiet', '--out', {str(tmp_path / 'run')!r}]))\n")
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "run" / "checkpoint.npz"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert ckpt.exists(), "no epoch finished in time"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted during epoch" in lines[0], err
    assert "checkpoint.npz' holds epoch" in lines[0] and f"convscope train --resume {tmp_path / 'run'}" in lines[0]
    assert not (tmp_path / "run" / ".convscope.lock").exists()
