"""``convscope summary``: the table, the JSON object, checkpoints and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from convscope.cli.main import main
from convscope.models import build_model
from convscope.training import save_checkpoint

LAYER_KEYS = ["name", "type", "output_shape", "params", "receptive_field", "jump", "macs"]


def run_json(capsys, *argv):
    code = main(["summary", *argv, "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return json.loads(out)          # exactly one JSON object: loads rejects anything after it


def test_json_defaults_to_mnist_shape_and_ten_classes(capsys):
    d = run_json(capsys, "lenet5")
    assert list(d) == ["model", "input_shape", "total_params", "total_macs", "layers"]
    assert d["model"] == "lenet5" and d["input_shape"] == [1, 28, 28]
    assert d["total_params"] == 61_706 and d["total_macs"] == 416_520
    assert all(list(row) == LAYER_KEYS for row in d["layers"])
    conv1, pool2, fc3 = d["layers"][0], d["layers"][5], d["layers"][-1]
    assert conv1 == {"name": "conv1", "type": "Conv2d", "output_shape": [6, 28, 28], "params": 156,
                     "receptive_field": 5, "jump": 1, "macs": 117_600}
    assert (pool2["name"], pool2["receptive_field"], pool2["jump"]) == ("pool2", 16, 4)
    assert fc3["output_shape"] == [10] and fc3["receptive_field"] == 28


def test_input_shape_and_num_classes(capsys):
    d = run_json(capsys, "mlp", "--input-shape", "3,8,6", "--num-classes", "4")
    assert d["input_shape"] == [3, 8, 6]
    fc1, last = d["layers"][1], d["layers"][-1]
    assert fc1["params"] == 3 * 8 * 6 * 512 + 512 and fc1["receptive_field"] == [8, 6]
    assert last["output_shape"] == [4]


def test_table_is_aligned_with_thousands_separators(capsys):
    assert main(["summary", "lenet5", "--input-shape", "1,32,32"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split() == ["layer", "type", "output", "shape", "params", "RF", "jump", "MACs"]
    names = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "fc2",
             "relu4", "fc3"]
    rows = [line for line in lines if line.split()[:1] and line.split()[0] in names]
    assert [row.split()[0] for row in rows] == names
    assert len(rows) == 12
    assert len({len(line.rstrip()) for line in [header, *rows]}) == 1   # MACs right-aligned
    assert len({line.index("Conv2d") for line in rows if "Conv2d" in line} | {header.index("type")}) == 1
    assert "117,600" in rows[0] and "48,120" in rows[7]
    assert "total params: 61,706" in out and "total MACs:   416,520" in out and "1x32x32" in out


def test_checkpoint(tmp_path, capsys):
    model = build_model("lenet5", 10, 1, (32, 32), rng=np.random.default_rng(0))
    path = tmp_path / "run" / "model.npz"
    save_checkpoint(path, model, {})
    d = run_json(capsys, "--checkpoint", str(path))
    assert d["model"] == "lenet5" and d["input_shape"] == [1, 32, 32] and d["total_params"] == 61_706
    assert d["layers"][-1]["receptive_field"] == 32


@pytest.mark.parametrize("argv, message", [
    (["nope"], "convscope: error: unknown model 'nope'; known models: "),
    (["lenet5", "--input-shape", "x"], "expected C,H,W like 3,224,224, got 'x'"),
    (["lenet5", "--input-shape", "1,28"], "expected C,H,W like 3,224,224, got '1,28'"),
    (["lenet5", "--input-shape", "0,28,28"], "expected C,H,W like 3,224,224, got '0,28,28'"),
    (["lenet5", "--num-classes", "0"], "--num-classes: must be a positive integer, got 0"),
    (["lenet5", "--num-classes", "two"], "--num-classes: expected a positive integer, got 'two'"),
    (["lenet5", "--input-shape", "1,8,8"], "8x8"),
    ([], "give a MODEL name or --checkpoint"),
    (["lenet5", "--checkpoint", "m.npz"], "give a MODEL or --checkpoint, not both"),
    (["--checkpoint", "missing/model.npz"], "checkpoint 'missing/model.npz' does not exist"),
    (["--checkpoint", "m.npz", "--input-shape", "1,28,28"], "do not go with --checkpoint"),
])
def test_errors_are_one_line_without_traceback(capsys, argv, message):
    assert main(["summary", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_help_names_the_defaults_and_models(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["summary", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "1,28,28" in out and "lenet5" in out and "--checkpoint" in out
