"""Checkpoints: round trip, atomic writes, and clear errors for files that are not checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.models import build_model
from convscope.training import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from convscope.training import checkpoint as checkpoint_module


def _model(seed=0):
    return build_model("lenet5", num_classes=10, in_channels=1, input_size=(28, 28),
                       rng=np.random.default_rng(seed))


def test_round_trip_rebuilds_the_same_model(tmp_path):
    model = _model()
    path = tmp_path / "model.npz"
    save_checkpoint(path, model, {"class_names": list("0123456789")})
    loaded, config = load_checkpoint(path)
    assert config["model"]["name"] == "lenet5" and config["class_names"] == list("0123456789")
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    x = np.random.default_rng(1).normal(size=(4, 1, 28, 28)).astype(np.float32)
    model.eval()
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert not loaded.training


def test_optimizer_arrays_are_kept_apart(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, _model(), {}, {"fc1.weight/momentum": np.ones((120, 400))})
    _, config = load_checkpoint(path)
    assert list(config["optim_state"]) == ["fc1.weight/momentum"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    save_checkpoint(path, _model(0), {})
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _model(1), {})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.95])
def test_truncated_checkpoint_is_refused(tmp_path, cut):
    good = tmp_path / "model.npz"
    save_checkpoint(good, _model(), {})
    data = good.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match="truncated.npz"):
        load_checkpoint(bad)


def test_files_that_are_not_checkpoints(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=r"not a readable convscope checkpoint \(not an .npz file\)"):
        read_checkpoint(text)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not a convscope checkpoint"):
        read_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "run").mkdir()
    save_checkpoint(tmp_path / "run" / "model.npz", _model(), {})
    with pytest.raises(CheckpointError, match="did you mean"):
        read_checkpoint(tmp_path / "run")


def test_checkpoint_with_wrong_weights_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    model = _model()
    save_checkpoint(path, model, {})
    config, arrays = read_checkpoint(path)
    arrays["fc1.weight"] = arrays["fc1.weight"][:, :10]
    bad = tmp_path / "bad.npz"
    np.savez(bad, __config__=np.array(__import__("json").dumps(config)), **arrays)
    with pytest.raises(CheckpointError, match="fc1.weight"):
        load_checkpoint(bad)
