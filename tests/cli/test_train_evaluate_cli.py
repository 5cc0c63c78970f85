"""``convscope train`` and ``convscope evaluate``: the happy path, resuming, and one clear line per mistake."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest

from convscope.cli.main import main
from convscope.data import Dataset

from ondisk import dataset_arrays, write_cifar_dir, write_idx, write_idx_dir

QUICK = ["--epochs", "1", "--batch-size", "64", "--quiet"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def expect_error(capsys, *argv, match):
    """The command fails with exit status 2 and exactly one stderr line containing ``match``."""
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("runs") / "lenet"
    assert main(["train", "--data", str(mnist_dir), *QUICK, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_train_writes_model_and_metrics(run_dir, mnist_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["model"] == "lenet5" and metrics["data"] == str(mnist_dir)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert len(metrics["history"]) == 2
    for entry in metrics["history"]:
        assert {"train_loss", "train_accuracy", "test_accuracy", "seconds"} <= set(entry)
    assert metrics["test_accuracy"] == metrics["history"][-1]["test_accuracy"]
    assert (run_dir / "model.npz").is_file() and (run_dir / "checkpoint.npz").is_file()


def test_evaluate_prints_tables_and_json(run_dir, capsys):
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", run_dir / "model.npz")
    assert code == 0 and "test accuracy" in out and "per-class accuracy" in out and "true \\ predicted" in out
    code, out, _ = run_cli(capsys, "evaluate", "--checkpoint", run_dir / "model.npz", "--json")
    report = json.loads(out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert report["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert np.asarray(report["confusion_matrix"]).sum() == report["test_images"] == 200


def test_train_with_limit_and_augmentation(mnist_dir, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "train", "--data", mnist_dir, *QUICK, "--limit", 128, "--translate", 2,
                           "--optimizer", "adam", "--out", tmp_path / "run")
    assert code == 0 and "test accuracy" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_images"] == 128 and metrics["config"]["translate"] == 2
    assert metrics["config"]["optimizer"] == "adam" and metrics["config"]["lr"] == 1e-3


def test_googlenet_with_auxiliary_classifiers_trains_and_evaluates(mnist_dir, tmp_path, capsys):
    out = tmp_path / "aux"
    code, _, _ = run_cli(capsys, "train", "--model", "googlenet", "--aux-logits", "--data", mnist_dir,
                         *QUICK, "--limit", 64, "--out", out)
    assert code == 0
    weights = np.load(out / "model.npz")
    assert "aux1.head.fc2.weight" in weights.files and "aux2.head.conv.weight" in weights.files
    code, text, _ = run_cli(capsys, "evaluate", "--checkpoint", out / "model.npz", "--json")
    assert code == 0
    assert json.loads(text)["test_accuracy"] == json.loads((out / "metrics.json").read_text())["test_accuracy"]
    expect_error(capsys, "train", "--aux-logits", "--data", mnist_dir, *QUICK, match="--model googlenet")


def test_resume_continues_a_stopped_run(run_dir, mnist_dir, tmp_path, capsys):
    stopped = tmp_path / "stopped"
    shutil.copytree(run_dir, stopped)
    (stopped / "model.npz").unlink()
    code, _, _ = run_cli(capsys, "train", "--resume", stopped, "--quiet")
    assert code == 0
    np.testing.assert_array_equal(np.load(stopped / "model.npz")["fc3.weight"],
                                  np.load(run_dir / "model.npz")["fc3.weight"])
    expect_error(capsys, "train", "--resume", stopped, "--epochs", "3", match="drop --epochs")
    expect_error(capsys, "train", "--resume", tmp_path / "nowhere", match="does not exist")


# -- one clear line for each mistake -----------------------------------------------------------------------

def test_missing_data_directory(tmp_path, capsys):
    expect_error(capsys, "train", "--data", tmp_path / "nope", *QUICK, match=str(tmp_path / "nope"))


def test_data_directory_missing_a_file(mnist_dir, tmp_path, capsys):
    data = shutil.copytree(mnist_dir, tmp_path / "partial")
    (data / "t10k-labels-idx1-ubyte.gz").unlink()
    expect_error(capsys, "train", "--data", data, *QUICK, match="t10k-labels-idx1-ubyte")


def test_truncated_gzip_file(mnist_dir, tmp_path, capsys):
    data = shutil.copytree(mnist_dir, tmp_path / "truncated")
    path = data / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    expect_error(capsys, "train", "--data", data, *QUICK, match="train-images-idx3-ubyte")


def test_corrupt_gzip_file(mnist_dir, tmp_path, capsys):
    data = shutil.copytree(mnist_dir, tmp_path / "corrupt")
    path = data / "train-labels-idx1-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[20:60] = bytes(40)
    path.write_bytes(bytes(raw))
    line = expect_error(capsys, "train", "--data", data, *QUICK, match="train-labels-idx1-ubyte")
    assert "gzip" in line


def test_truncated_raw_idx_file(mnist, tmp_path, capsys):
    data = tmp_path / "raw"
    write_idx_dir(data, dataset_arrays(Dataset("raw", mnist.train_images[:64], mnist.train_labels[:64],
                                               mnist.test_images[:32], mnist.test_labels[:32], mnist.class_names)))
    path = data / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    expect_error(capsys, "train", "--data", data, *QUICK, match="t10k-images-idx3-ubyte")


def test_wrong_magic_number(mnist_dir, tmp_path, capsys):
    data = shutil.copytree(mnist_dir, tmp_path / "magic")
    path = data / "train-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[0:4] = b"\x12\x34\x08\x03"
    path.write_bytes(gzip.compress(bytes(raw)))
    line = expect_error(capsys, "train", "--data", data, *QUICK, match="train-images-idx3-ubyte")
    assert "IDX" in line


def test_label_and_image_counts_disagree(mnist_dir, tmp_path, capsys):
    data = shutil.copytree(mnist_dir, tmp_path / "counts")
    write_idx(data / "train-labels-idx1-ubyte.gz", np.zeros(500, np.uint8), gz=True)
    line = expect_error(capsys, "train", "--data", data, *QUICK, match="500")
    assert "512" in line


def test_unknown_model_lists_the_known_ones(mnist_dir, capsys):
    line = expect_error(capsys, "train", "--model", "lenet7", "--data", mnist_dir, *QUICK, match="lenet7")
    assert "lenet5" in line and "mlp" in line


@pytest.mark.parametrize("argv, match", [
    (["--epochs", "0"], "--epochs"), (["--epochs", "-3"], "--epochs"), (["--epochs", "ten"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-1"], "--batch-size"),
    (["--lr", "-0.1"], "--lr"), (["--lr", "nan"], "--lr"), (["--limit", "0"], "--limit"),
])
def test_non_positive_numbers(argv, match, capsys):
    expect_error(capsys, "train", *argv, match=match)


def test_checkpoint_that_is_not_one(tmp_path, capsys):
    fake = tmp_path / "model.npz"
    fake.write_text("not a checkpoint")
    expect_error(capsys, "evaluate", "--checkpoint", fake, match="not a readable convscope checkpoint")
    expect_error(capsys, "evaluate", "--checkpoint", tmp_path / "missing.npz", match="does not exist")


def test_truncated_checkpoint(run_dir, tmp_path, capsys):
    cut = tmp_path / "cut.npz"
    cut.write_bytes((run_dir / "model.npz").read_bytes()[:3000])
    expect_error(capsys, "evaluate", "--checkpoint", cut, match="cut.npz")


def test_data_whose_channels_do_not_fit_the_model(run_dir, tmp_path, capsys):
    data = tmp_path / "cifar"
    write_cifar_dir(data)
    line = expect_error(capsys, "evaluate", "--checkpoint", run_dir / "model.npz", "--data", data,
                        match="3x32x32")
    assert "1x28x28" in line


def test_data_whose_size_does_not_fit_the_model(run_dir, mnist, tmp_path, capsys):
    small = mnist.train_images[:40, :, 4:24, 4:24]
    data = tmp_path / "small"
    write_idx_dir(data, dataset_arrays(Dataset("small", small, mnist.train_labels[:40], small[:20],
                                               mnist.train_labels[:20], mnist.class_names)))
    expect_error(capsys, "evaluate", "--checkpoint", run_dir / "model.npz", "--data", data, match="1x20x20")
    tiny = mnist.train_images[:40, :, :8, :8]
    data = tmp_path / "tiny"
    write_idx_dir(data, dataset_arrays(Dataset("tiny", tiny, mnist.train_labels[:40], tiny[:20],
                                               mnist.train_labels[:20], mnist.class_names)))
    expect_error(capsys, "train", "--data", data, *QUICK, match="8x8")


def test_divergence_keeps_the_existing_checkpoint(run_dir, mnist_dir, tmp_path, capsys):
    out = shutil.copytree(run_dir, tmp_path / "existing")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = expect_error(capsys, "train", "--data", mnist_dir, *QUICK, "--lr", "1e9", "--out", out, "--overwrite",
                        match="loss became")
    assert "still holds the earlier run, unchanged" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    expect_error(capsys, "train", "--data", mnist_dir, *QUICK, "--out", out, match="already holds a run")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_without_out_each_run_gets_a_fresh_directory(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    name = mnist_dir.name
    for expected in (f"lenet5-{name}", f"lenet5-{name}-2"):
        code, out, _ = run_cli(capsys, "train", "--model", "LeNet5", "--data", mnist_dir, *QUICK, "--limit", 64,
                               "--test-limit", 32)
        assert code == 0 and str(tmp_path / "runs" / expected / "model.npz") not in out
        assert f"runs/{expected}/model.npz" in out and f"runs/{expected}/checkpoint.npz" in out
        metrics = json.loads((tmp_path / "runs" / expected / "metrics.json").read_text())
        assert metrics["model"] == "lenet5" and metrics["test_images"] == 32 and metrics["train_images"] == 64


def test_help_texts_print_percent_signs_once(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "99.0% test accuracy" in out and "%%" not in out


def test_unknown_model_suggests_the_closest_name(mnist_dir, capsys):
    line = expect_error(capsys, "train", "--model", "resnet5", "--data", mnist_dir, *QUICK, match="resnet5")
    assert "did you mean" in line


@pytest.mark.parametrize("flag, value, match", [("--seed", "-1", "--seed"), ("--translate", "1000", "translate 1000")])
def test_out_of_range_training_flags_are_named(mnist_dir, capsys, flag, value, match):
    expect_error(capsys, "train", "--data", mnist_dir, *QUICK, flag, value, match=match)
