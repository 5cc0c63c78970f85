"""``convscope visualize``: every technique from the CLI on LeNet-5, a residual model and an RGB model,
and the HTML report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convscope.cli.main import main

from convscope.data import Dataset
from ondisk import dataset_arrays, write_cifar_dir, write_idx_dir

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
    written = [line.removeprefix("wrote ") for line in captured.out.splitlines()]
    assert written == numbers["figures"] + [str(out / f"{technique}.json")]       # every file is named
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


@pytest.mark.parametrize("technique, layer, match", [
    ("filters", None, r"--unit 99999 is out of range: layer 'conv1' has 6 filters \(0\.\.5\)"),
    ("activations", None, r"--unit 99999 is out of range: layer 'conv1' has 6 channels \(0\.\.5\)"),
    ("deconv", None, r"--unit 99999 is out of range: layer 'conv2' has 16 channels \(0\.\.15\)"),
    ("actmax", None, r"--unit 99999 is out of range: the logits have 10 classes \(0\.\.9\)"),
    ("actmax", "fc1", r"--unit 99999 is out of range: layer 'fc1' has 120 features \(0\.\.119\)"),
    ("dissect", None, r"--unit 99999 is out of range: layer 'conv2' has 16 units \(0\.\.15\)"),
])
def test_an_out_of_range_unit_is_refused_by_every_technique_that_takes_one(technique, layer, match, lenet_ckpt,
                                                                           tmp_path, capsys):
    argv = ["visualize", technique, "--checkpoint", str(lenet_ckpt), "--out", str(tmp_path), "--unit", "99999",
            "--quiet", *(["--layer", layer] if layer else [])]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and re.search(match, err[0]), err


@pytest.mark.parametrize("technique, argv, match", [
    ("saliency", ["--unit", "3"], "--unit 3: saliency takes no unit"),
    ("inversion", ["--unit", "0"], "--unit 0: inversion takes no unit"),
    ("filters", ["--class", "3"], "--class 3: filters takes no class"),
    ("saliency", ["--seed", "-1"], "--seed: must be a non-negative integer, got -1"),
    ("filters", ["--unit", "-2"], "--unit: must be a non-negative integer, got -2"),
    ("saliency", ["--images", "-1"], r"--images -1 is out of range: the test split has 200 images \(0\.\.199\)"),
    ("saliency", ["--class", "12"], r"--class 12 is out of range: the model has 10 classes \(0\.\.9\)"),
    ("saliency", ["--layer", "conv9"], "--layer 'conv9': no layer named 'conv9'; known layers: conv1"),
])
def test_flag_mistakes_name_the_flag_and_the_value(technique, argv, match, lenet_ckpt, tmp_path, capsys):
    code = main(["visualize", technique, "--checkpoint", str(lenet_ckpt), "--out", str(tmp_path), "--quiet", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and re.search(match, err[0]), err


def test_out_naming_an_existing_file_is_one_line(lenet_ckpt, tmp_path, capsys):
    taken = tmp_path / "figures"
    taken.write_text("not a directory")
    code = main(["visualize", "filters", "--checkpoint", str(lenet_ckpt), "--out", str(taken), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0] and "is a file" in err[0], err
    assert taken.read_text() == "not a directory"


def test_default_images_are_of_several_classes_on_a_class_ordered_split(lenet_ckpt, mnist, tmp_path, capsys):
    """A test split sorted by class: the default images are the first of each of four classes."""
    order = np.argsort(mnist.test_labels[:300], kind="stable")
    ordered = Dataset("sorted", mnist.train_images[:64], mnist.train_labels[:64],
                      mnist.test_images[:300][order], mnist.test_labels[:300][order], mnist.class_names)
    write_idx_dir(tmp_path / "sorted", dataset_arrays(ordered), gz=True)
    numbers = _visualize_default(capsys, lenet_ckpt, tmp_path / "out", "--data", str(tmp_path / "sorted"))
    labels = ordered.test_labels[numbers["images"]]
    assert len(numbers["images"]) == 4 and labels.tolist() == [0, 1, 2, 3]
    assert numbers["images"] == [int(np.flatnonzero(ordered.test_labels == c)[0]) for c in range(4)]


def _visualize_default(capsys, ckpt, out, *extra):
    code = main(["visualize", "deconv", "--checkpoint", str(ckpt), "--out", str(out), "--quiet", *extra])
    assert code == 0, capsys.readouterr().err
    return json.loads((out / "deconv.json").read_text())


def test_images_may_be_files_instead_of_test_indices(lenet_ckpt, mnist, tmp_path, capsys):
    from PIL import Image
    digits = []
    for i in (0, 1):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(np.kron(mnist.test_images[i, 0], np.ones((2, 2), dtype=np.uint8))).save(path)  # 56 px
        digits.append(str(path))
    out = tmp_path / "out"
    code = main(["visualize", "saliency", "--checkpoint", str(lenet_ckpt), "--images", ",".join(digits),
                 "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    numbers = json.loads((out / "saliency.json").read_text())
    assert numbers["images"] == digits and numbers["true_classes"] is None
    assert sorted(p.rsplit("/", 1)[-1] for p in numbers["figures"]) == ["saliency_0_digit0.png", "saliency_1_digit1.png"]
    code = main(["visualize", "saliency", "--checkpoint", str(lenet_ckpt), "--images", f"0,{digits[0]}",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not both" in err[0], err
