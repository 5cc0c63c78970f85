"""``convscope visualize``: every technique from the CLI on LeNet-5, a residual model and an RGB model,
and the HTML report."""

from __future__ import annotations

import json
import re

import pytest

from convscope.cli.main import main

from ondisk import write_cifar_dir

pytest.importorskip("matplotlib")

TECHNIQUES = ["filters", "activations", "neighbors", "deconv", "actmax", "saliency", "inversion", "dissect"]
FAST = ["--images", "0,1", "--sample", "200", "--steps", "8", "--quiet"]


def _train(tmp_path_factory, name, data, model, *extra):
    out = tmp_path_factory.mktemp("viz") / name
    code = main(["train", "--model", model, "--data", str(data), "--epochs", "1", "--batch-size", "64",
                 "--quiet", "--out", str(out), *extra])
    assert code == 0
    return out / "model.npz"


@pytest.fixture(scope="module")
def lenet_ckpt(tmp_path_factory, mnist_dir):
    return _train(tmp_path_factory, "lenet", mnist_dir, "lenet5")


@pytest.fixture(scope="module")
def resnet_ckpt(tmp_path_factory, mnist_dir):
    return _train(tmp_path_factory, "resnet", mnist_dir, "resnet20", "--limit", "64")


@pytest.fixture(scope="module")
def rgb_ckpt(tmp_path_factory):
    data = tmp_path_factory.mktemp("cifar") / "cifar"
    write_cifar_dir(data, n_per_batch=16, n_test=12)
    return _train(tmp_path_factory, "rgb", data, "lenet5")


def _visualize(capsys, technique, ckpt, out, *extra):
    code = main(["visualize", technique, "--checkpoint", str(ckpt), "--out", str(out), *FAST, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    numbers = json.loads((out / f"{technique}.json").read_text())
    assert numbers["figures"], numbers
    for path in numbers["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return numbers


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_each_technique_on_lenet(technique, lenet_ckpt, tmp_path, capsys):
    extra = ["--class", "3"] if technique == "actmax" else []
    numbers = _visualize(capsys, technique, lenet_ckpt, tmp_path, *extra)
    assert numbers["technique"] == technique


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_each_technique_on_a_residual_model(technique, resnet_ckpt, tmp_path, capsys):
    extra = ["--class", "1"] if technique == "actmax" else []
    _visualize(capsys, technique, resnet_ckpt, tmp_path, *extra)


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_each_technique_on_an_rgb_model(technique, rgb_ckpt, tmp_path, capsys):
    extra = ["--class", "2"] if technique == "actmax" else []
    _visualize(capsys, technique, rgb_ckpt, tmp_path, *extra)


def test_report_is_one_self_contained_page(lenet_ckpt, tmp_path, capsys):
    assert main(["visualize", "report", "--checkpoint", str(lenet_ckpt), "--out", str(tmp_path), *FAST]) == 0
    page = (tmp_path / "report.html").read_text()
    for section in ["training"] + TECHNIQUES:
        assert f'id="{section}"' in page
    assert 'class="error"' not in page
    assert "src=\"http" not in page and "<script src" not in page          # nothing fetched from outside
    assert len(re.findall(r"data:image/png;base64,", page)) >= len(TECHNIQUES) + 2


@pytest.mark.parametrize("argv, match", [
    (["--layer", "conv9"], "conv9"), (["--images", "0,x"], "--images"), (["--images", "99999"], "out of range"),
    (["--class", "zebra"], "zebra"), (["--class", "12"], "out of range"),
])
def test_mistakes_are_one_line(argv, match, lenet_ckpt, tmp_path, capsys):
    code = main(["visualize", "saliency", "--checkpoint", str(lenet_ckpt), "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0], err
