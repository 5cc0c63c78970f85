"""``convscope visualize saliency --methods`` and ``convscope visualize faithfulness``: the methods
chosen, the mistakes refused in one line before any work, the numbers behind the figures (the
library's own), and the report's "Attribution methods and faithfulness" section."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import convscope
from convscope.cli.main import main
from convscope.visualize import METRICS, faithfulness
from convscope.visualize.context import check_methods

pytest.importorskip("matplotlib")

FAST = ["--sample", "200", "--steps", "8", "--quiet"]


@pytest.fixture(scope="module")
def lenet_ckpt(tmp_path_factory, mnist_dir):
    """LeNet-5 after 3 epochs on the 512 training images of ``mnist_dir`` (test accuracy 0.89; 2-3 s)."""
    out = tmp_path_factory.mktemp("faith") / "lenet"
    assert main(["train", "--model", "lenet5", "--data", str(mnist_dir), "--epochs", "3", "--batch-size", "32",
                 "--quiet", "--out", str(out)]) == 0
    return out / "model.npz"


def _visualize(capsys, technique, ckpt, out, *extra):
    code = main(["visualize", technique, "--checkpoint", str(ckpt), "--out", str(out), *FAST, *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    numbers = json.loads((out / f"{technique}.json").read_text())
    written = [line.removeprefix("wrote ") for line in captured.out.splitlines()]
    assert written == numbers["figures"] + [str(out / f"{technique}.json")]       # every file is named
    for path in numbers["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return numbers


def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def faithful(lenet_ckpt, tmp_path_factory):
    """``visualize faithfulness`` with its defaults (methods, metrics, the first four test images)."""
    out = tmp_path_factory.mktemp("faithfulness")
    code = main(["visualize", "faithfulness", "--checkpoint", str(lenet_ckpt), "--out", str(out), "--quiet"])
    assert code == 0
    return json.loads((out / "faithfulness.json").read_text())


def test_methods_choose_exactly_the_saliency_maps(lenet_ckpt, tmp_path, capsys):
    chosen = ["score_cam", "lrp_epsilon", "random"]
    numbers = _visualize(capsys, "saliency", lenet_ckpt, tmp_path, "--images", "0,1", "--methods", ",".join(chosen))
    assert numbers["methods"] == chosen and list(numbers["method_options"]) == chosen
    assert "Score-CAM conv2" in numbers["caption"] and "integrated_gradients_completeness_gap" not in numbers
    assert len(numbers["figures"]) == 2                                            # one figure per image
    default = _visualize(capsys, "saliency", lenet_ckpt, tmp_path / "default", "--images", "0")
    assert default["methods"] == ["gradient", "guided_backprop", "smoothgrad", "integrated_gradients", "grad_cam",
                                  "occlusion"]
    assert default["integrated_gradients_completeness_gap"][0] < 0.05


def test_an_unknown_method_is_one_line_naming_it_before_any_work(tmp_path, capsys):
    """The checkpoint does not exist: the method is checked first, so the error is about the method."""
    line = _one_line_error(capsys, ["visualize", "saliency", "--checkpoint", str(tmp_path / "none.npz"),
                                    "--methods", "gradient,gradcam"])
    assert "--methods: unknown method 'gradcam'" in line and "grad_cam" in line and "integrated_gradients" in line
    line = _one_line_error(capsys, ["visualize", "faithfulness", "--checkpoint", str(tmp_path / "none.npz"),
                                    "--metrics", "deletion,infidelity"])
    assert "--metrics: 'infidelity' has no curve" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("technique, argv, match", [
    ("filters", ["--methods", "gradient"], r"--methods gradient: filters takes no attribution methods \(--methods "
                                           r"is for saliency, faithfulness and report\)"),
    ("saliency", ["--metrics", "deletion"], "--metrics deletion: saliency takes no faithfulness metrics"),
    ("faithfulness", ["--metrics", "deletion,roadd"], "--metrics: unknown metric 'roadd'; known metrics: deletion"),
    ("faithfulness", ["--methods", "gradient,gradient"], "--methods names 'gradient' twice"),
    ("faithfulness", ["--methods", ","], "--methods expects comma-separated names"),
    ("faithfulness", ["--unit", "3"], "--unit 3: faithfulness takes no unit"),
    ("faithfulness", ["--methods", "gradient", "--layer", "conv1"], "--layer 'conv1': none of the methods chosen"),
])
def test_flag_mistakes_are_one_line(technique, argv, match, lenet_ckpt, tmp_path, capsys):
    line = _one_line_error(capsys, ["visualize", technique, "--checkpoint", str(lenet_ckpt), "--out", str(tmp_path),
                                    "--quiet", "--images", "0", *argv])
    assert re.search(match, line), line


def test_context_checks_methods_for_library_callers():
    assert check_methods(["gradient", "random"]) == ("gradient", "random")
    with pytest.raises(ValueError, match="unknown method 'smooth_grad'"):
        check_methods(["smooth_grad"])


def test_faithfulness_scores_every_method_by_every_metric(faithful):
    methods = ["gradient", "input_x_gradient", "integrated_gradients", "grad_cam", "occlusion", "random"]
    metrics = ["deletion", "insertion", "road"]
    assert faithful["methods"] == methods and faithful["images"] == [0, 1, 2, 3]
    assert [p.rsplit("/", 1)[-1] for p in faithful["figures"]] == ["faithfulness_curves.png",
                                                                  "faithfulness_table.png", "faithfulness_maps.png"]
    assert {m: v["better"] for m, v in faithful["metrics"].items()} == {m: METRICS[m]["better"] for m in metrics}
    assert [faithful["metrics"][m]["better"] for m in metrics] == ["lower", "higher", "higher"]
    for method in methods:
        assert list(faithful["scores"][method]) == metrics
        for metric in metrics:
            entry = faithful["scores"][method][metric]
            assert entry["better"] == METRICS[metric]["better"]
            assert len(entry["per_image"]) == 4 and np.all(np.isfinite(entry["per_image"]))
            assert entry["mean"] == pytest.approx(np.mean(entry["per_image"]))
            curves = ["road_morf", "road_lerf"] if metric == "road" else [metric]
            assert list(entry["curves"]) == curves
            for curve in entry["curves"].values():
                scores = np.asarray(curve["scores"])
                assert scores.shape == (4, len(curve["fractions"])) and np.all((scores >= 0) & (scores <= 1))
    assert "deletion (lower is better)" in faithful["caption"] and "road (higher is better)" in faithful["caption"]


def test_gradient_beats_the_random_map_on_deletion(faithful):
    """Measured on this fixture (test accuracy 0.89): deletion, per image, gradient 0.43 0.05 0.15 0.08
    against random 0.75 0.61 0.49 0.50 (means 0.18 / 0.59); insertion 0.96 against 0.63. A map
    that does not follow the model would fail this."""
    gradient, random = (np.asarray(faithful["scores"][m]["deletion"]["per_image"]) for m in ("gradient", "random"))
    assert np.all(gradient < random) and gradient.mean() < random.mean() - 0.2
    insertion = {m: faithful["scores"][m]["insertion"]["mean"] for m in ("gradient", "random")}
    assert insertion["gradient"] > insertion["random"] + 0.2


def test_faithfulness_numbers_are_the_librarys(faithful, lenet_ckpt, mnist):
    """The random baseline is uniform noise from --seed 0: scored again through the front door, the
    same numbers (ROAD with the same seed)."""
    clf = convscope.load(lenet_ckpt)
    images = mnist.test_images[faithful["images"]]
    maps = np.random.default_rng(0).random((4, 1, 28, 28))[:, 0]
    targets = np.asarray(faithful["explained_classes"])
    np.testing.assert_array_equal(targets, clf.predict(images).argmax(axis=1))
    random = faithful["scores"]["random"]
    np.testing.assert_allclose(random["deletion"]["per_image"], faithfulness(clf, images, maps, "deletion", targets))
    np.testing.assert_allclose(random["road"]["per_image"], faithfulness(clf, images, maps, "road", targets, seed=0))


def test_faithfulness_takes_chosen_methods_metrics_and_class(lenet_ckpt, tmp_path, capsys):
    numbers = _visualize(capsys, "faithfulness", lenet_ckpt, tmp_path, "--images", "0,1", "--methods",
                         "smoothgrad,random", "--metrics", "road_morf,insertion", "--class", "3")
    assert numbers["methods"] == ["smoothgrad", "random"] and numbers["explained_classes"] == [3, 3]
    assert list(numbers["scores"]["smoothgrad"]) == ["road_morf", "insertion"]
    assert numbers["metrics"]["road_morf"]["better"] == "lower"
    assert numbers["method_options"]["smoothgrad"] == {"samples": 25}


def test_the_report_has_the_attribution_and_faithfulness_section(lenet_ckpt, tmp_path, capsys):
    code = main(["visualize", "report", "--checkpoint", str(lenet_ckpt), "--out", str(tmp_path), "--images", "0,1",
                 "--methods", "gradient,occlusion,random", *FAST])
    assert code == 0, capsys.readouterr().err
    page = (tmp_path / "report.html").read_text()
    assert 'class="error"' not in page
    assert '<h2 id="faithfulness">Attribution methods and faithfulness</h2>' in page
    section = page.split('<h2 id="faithfulness">')[1].split("<h2 ")[0]
    assert len(re.findall(r"data:image/png;base64,", section)) == 3                # curves, table, maps
    assert "deletion (lower is better)" in section and "random (baseline)" in section
    saliency = page.split('<h2 id="saliency">')[1].split("<h2 ")[0]
    assert "gradient, occlusion, random (baseline): each map" in saliency
