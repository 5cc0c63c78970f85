"""``convscope import`` and ``convscope predict``, and an imported network through the other commands."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convscope.cli.main import main

torch = pytest.importorskip("torch")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def imported(resnet18_file, tmp_path_factory):
    """The random-weight torchvision ResNet-18, imported by the CLI as an ImageNet checkpoint."""
    _, weights = resnet18_file
    out = tmp_path_factory.mktemp("imported") / "resnet18.npz"
    assert main(["import", str(weights), "--model", "resnet18", "--out", str(out)]) == 0
    return out


def test_import_writes_a_checkpoint_every_command_takes(imported, capsys):
    code, out, err = _run(capsys, "summary", "--checkpoint", imported, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["total_params"] == 11_689_512 and summary["input_shape"] == [3, 224, 224]


def test_predict_names_imagenet_classes_with_probabilities(imported, photo, capsys):
    code, out, err = _run(capsys, "predict", "--checkpoint", imported, photo, photo, "--top", "3", "--json")
    assert code == 0, err
    predictions = json.loads(out)["predictions"]
    assert [p["image"] for p in predictions] == [str(photo)] * 2
    top = predictions[0]["top"]
    assert [set(t) for t in top] == [{"index", "class", "probability"}] * 3
    assert top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"] > 0
    assert all(isinstance(t["class"], str) and not t["class"].isdigit() for t in top)     # ImageNet's names
    code, out, _ = _run(capsys, "predict", "--checkpoint", imported, photo, "--top", "2")
    lines = out.splitlines()
    assert code == 0 and lines[0] == str(photo) and lines[1].startswith("   1. ") and len(lines) == 3


def test_predict_on_an_mnist_digit_with_lenet5(tmp_path, mnist, capsys):
    from PIL import Image

    import convscope
    digit = tmp_path / "digit.png"
    Image.fromarray(mnist.test_images[0, 0]).save(digit)
    ckpt = convscope.Classifier.untrained("lenet5", rng=np.random.default_rng(0)).save(tmp_path / "lenet.npz")
    code, out, err = _run(capsys, "predict", "--checkpoint", ckpt, digit, "--json", "--top", "10")
    assert code == 0, err
    top = json.loads(out)["predictions"][0]["top"]
    assert sorted(t["class"] for t in top) == [str(k) for k in range(10)]
    assert sum(t["probability"] for t in top) == pytest.approx(1.0, abs=1e-5)


def test_visualize_saliency_on_a_photo_needs_no_dataset(imported, photo, tmp_path, capsys):
    code, out, err = _run(capsys, "visualize", "saliency", "--checkpoint", imported, "--images", photo,
                          "--out", tmp_path, "--quiet")
    assert code == 0, err
    numbers = json.loads((tmp_path / "saliency.json").read_text())
    assert numbers["images"] == [str(photo)] and numbers["data"] is None
    assert numbers["grad_cam_layer"] == "layer4.1" and numbers["true_classes"] is None
    for path in numbers["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert out.splitlines() == [f"wrote {p}" for p in numbers["figures"]] + [f"wrote {tmp_path / 'saliency.json'}"]


def test_dataset_techniques_on_a_photo_say_they_need_data(imported, photo, tmp_path, capsys):
    code, _, err = _run(capsys, "visualize", "neighbors", "--checkpoint", imported, "--images", photo,
                        "--out", tmp_path, "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "neighbors" in lines[0] and "--data" in lines[0], lines


@pytest.mark.parametrize("argv, match", [
    (["--model", "resnet99"], "unknown model 'resnet99'"),
    (["--model", "resnet34"], "has no 'layer1.2.conv1.weight'"),
    (["--model", "resnet18", "--num-classes", "10"], r"'fc.weight' has shape \(1000, 512\) but"),
    ([], "--model NAME is required"),
    (["--model", "resnet18", "--preset", "cifar"], "invalid choice: 'cifar'"),
])
def test_import_mistakes_are_one_line(argv, match, resnet18_file, tmp_path, capsys):
    _, weights = resnet18_file
    code, _, err = _run(capsys, "import", weights, *argv, "--out", tmp_path / "x.npz")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(match, lines[0]), lines
    assert not (tmp_path / "x.npz").exists()


def test_import_of_a_file_that_holds_no_weights(tmp_path, capsys):
    for name, content in (("notes.pth", b"just some text\n"), ("image.pth", b"\x89PNG\r\n\x1a\n" + b"\0" * 30)):
        (tmp_path / name).write_bytes(content)
        code, _, err = _run(capsys, "import", tmp_path / name, "--model", "resnet18", "--out", tmp_path / "x.npz")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "is not a weights file" in lines[0], lines
    code, _, err = _run(capsys, "import", tmp_path / "absent.pth", "--model", "resnet18", "--out", tmp_path / "x.npz")
    assert code == 2 and "does not exist" in err


def test_predict_mistakes_are_one_line(imported, tmp_path, capsys):
    code, _, err = _run(capsys, "predict", "--checkpoint", imported, tmp_path / "absent.jpg")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err
    (tmp_path / "fake.jpg").write_text("not an image")
    code, _, err = _run(capsys, "predict", "--checkpoint", imported, tmp_path / "fake.jpg")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "fake.jpg" in err


def test_an_onnx_file_goes_to_the_onnx_importer_which_takes_no_model_flag(tmp_path, capsys):
    onnx_file = tmp_path / "net.onnx"
    onnx_file.write_bytes(b"\x08\x07")
    code, _, err = _run(capsys, "import", onnx_file, "--model", "resnet18", "--out", tmp_path / "x.npz")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--model is for PyTorch weights" in lines[0], lines
