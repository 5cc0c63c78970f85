"""The Graph container: construction checks, forward order, gradients where tensors fan out and
nodes read several inputs, the JSON spec and its checks, and the registry's "graph" model."""

import json

import numpy as np
import pytest

from convscope.layers import (Add, BatchNorm2d, Cat, Constant, Conv2d, Flatten, GlobalAvgPool2d, Graph,
                              Linear, Mul, ReLU, Reshape, Sigmoid, Transpose, check_graph_spec,
                              graph_from_spec, graph_to_spec, shapes_only)
from convscope.models import available_models, build_model
from gradcheck import check_module_grads


def small_dag(rng) -> Graph:
    """conv -> relu fans out to a gate branch and an identity; Mul joins them; the conv output
    is read again by Add (three readers of one tensor); then a head."""
    scale = Constant((4, 1, 1), key="layer_scale", learnable=True)
    scale.params["layer_scale"] = rng.uniform(0.5, 1.5, (4, 1, 1)).astype(np.float32)
    return Graph([
        ("conv", Conv2d(3, 4, 3, padding=1, rng=rng), ["input"]),
        ("relu", ReLU(), ["conv"]),
        ("gate", Sigmoid(), ["conv"]),
        ("mul", Mul(), ["relu", "gate"]),
        ("gamma", scale, []),
        ("scaled", Mul(), ["mul", "gamma"]),
        ("add", Add(), ["scaled", "conv"]),
        ("cat", Cat(0), ["add", "input", "conv"]),
        ("pool", GlobalAvgPool2d(), ["cat"]),
        ("fc", Linear(11, 5, rng=rng), ["pool"]),
    ], output="fc")


def test_forward_matches_the_same_computation_by_hand(rng):
    g = small_dag(rng)
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    conv = g.node("conv").module.forward(x)
    s = 1 / (1 + np.exp(-conv))
    add = np.maximum(conv, 0) * s * g.node("gamma").module.value + conv
    cat = np.concatenate([add, x, conv], axis=1)
    fc = g.node("fc").module
    ref = cat.mean(axis=(2, 3)) @ fc.params["weight"].T + fc.params["bias"]
    np.testing.assert_allclose(g.forward(x), ref, rtol=1e-5, atol=1e-6)
    assert g.output_shape((3, 5, 5)) == (5,)


def test_gradients_accumulate_where_tensors_fan_out(rng):
    """conv's output is read by four nodes and the input by two: both gradients are sums."""
    errors = check_module_grads(small_dag(rng), rng.standard_normal((2, 3, 4, 4)), rng)
    assert set(errors) >= {"input", "conv.weight", "gamma.layer_scale", "fc.weight"}


def test_gradients_in_training_mode_with_batch_norm(rng):
    g = Graph([("conv", Conv2d(2, 3, 3, padding=1, bias=False, rng=rng), ["input"]),
               ("bn", BatchNorm2d(3), ["conv"]), ("relu", ReLU(), ["bn"]),
               ("add", Add(), ["relu", "bn"]), ("flat", Flatten(), ["add"])], output="flat")
    check_module_grads(g.train(), rng.standard_normal((3, 2, 3, 3)), rng)


def test_a_node_reading_one_tensor_twice(rng):
    g = Graph([("sq", Mul(), ["input", "input"])], output="sq")
    x = rng.standard_normal((2, 3))
    g.to(np.float64).forward(x)
    np.testing.assert_allclose(g.backward(np.ones((2, 3))), 2 * x)


def test_shape_ops_inside_a_graph(rng):
    """ShuffleNet's channel shuffle, then channels-last and back."""
    g = Graph([("split", Reshape([2, 3, 2, 2]), ["input"]), ("swap", Transpose([1, 0, 2, 3]), ["split"]),
               ("join", Reshape([6, 2, 2]), ["swap"]), ("last", Transpose([1, 2, 0]), ["join"]),
               ("first", Transpose([2, 0, 1]), ["last"])], output="first")
    x = rng.standard_normal((2, 6, 2, 2))
    np.testing.assert_array_equal(g.forward(x), x.reshape(2, 2, 3, 2, 2).transpose(0, 2, 1, 3, 4).reshape(2, 6, 2, 2))
    check_module_grads(g, x, rng)


def test_no_input_gradient_when_not_needed(rng):
    g = small_dag(rng)
    g.set_input_grad(False)
    y = g.forward(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))
    assert g.backward(np.ones_like(y)) is None
    assert g.node("conv").module.need_input_grad is False
    assert g.named_grads()["conv.weight"].shape == (4, 3, 3, 3)


def test_dotted_node_names_are_state_dict_names(rng):
    g = Graph([("layer1.0.conv1", Conv2d(1, 2, 1, rng=rng), ["input"]),
               ("layer1.0.relu", ReLU(), ["layer1.0.conv1"])], output="layer1.0.relu")
    assert set(g.state_dict()) == {"layer1.0.conv1.weight", "layer1.0.conv1.bias"}
    assert isinstance(g.get_module("layer1.0.relu"), ReLU)


def test_forward_hooks_on_nodes_see_and_replace_outputs(rng):
    g = small_dag(rng)
    seen = []
    with g.get_module("relu").register_forward_hook(lambda m, x, y: seen.append(y.shape) or 0 * y):
        y = g.forward(rng.standard_normal((1, 3, 4, 4)).astype(np.float32))
    assert seen == [(1, 4, 4, 4)] and y.shape == (1, 5)


@pytest.mark.parametrize("nodes,output,match", [
    ([("a", ReLU(), ["b"])], "a", "neither"),
    ([("a", ReLU(), ["input"]), ("a", ReLU(), ["a"])], "a", "used twice"),
    ([("input", ReLU(), ["input"])], "input", "other than"),
    ([("a.", ReLU(), ["input"])], "a.", "dot-separated"),
    ([("a", Add(), ["input"])], "a", "reads 2"),
    ([("a", ReLU(), ["input"]), ("b", ReLU(), ["input"])], "b", "never read"),
    ([("a", ReLU(), ["input"])], "z", "not a node"),
    ([("a", "relu", ["input"])], "a", "not a layer"),
])
def test_malformed_graphs_are_refused(nodes, output, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Graph(nodes, output=output)


def test_shape_errors_name_the_node(rng):
    g = Graph([("fc", Linear(7, 2, rng=rng), ["input"])], output="fc")
    with pytest.raises(ValueError, match="node 'fc'"):
        g.output_shape((3,))


def test_spec_round_trip_is_json_and_rebuilds_the_same_graph(rng):
    g = small_dag(rng)
    spec = json.loads(json.dumps(graph_to_spec(g)))
    check_graph_spec(spec)
    again = graph_from_spec(spec)
    again.load_state_dict(g.state_dict())
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(again.forward(x), g.forward(x))


def test_the_registry_builds_graphs_but_does_not_list_them_in_the_zoo(rng):
    spec = graph_to_spec(small_dag(rng))
    model = build_model("graph", num_classes=5, in_channels=3, input_size=(6, 6), graph=spec)
    assert model.config["name"] == "graph" and model.config["options"]["graph"] == spec
    assert "graph" not in available_models()
    with pytest.raises(ValueError, match="expected"):
        build_model("graph", num_classes=4, in_channels=3, input_size=(6, 6), graph=spec)
    with pytest.raises(ValueError, match="needs its spec"):
        build_model("graph", num_classes=5, in_channels=3, input_size=(6, 6))


def node(name="a", op="ReLU", args=None, inputs=("input",)):
    return {"name": name, "op": op, "args": args or {}, "inputs": list(inputs)}


def spec(*nodes, output="a"):
    return {"version": 1, "output": output, "nodes": list(nodes)}


@pytest.mark.parametrize("bad,match", [
    ({"nodes": []}, "keys"),
    (spec(node(op="os.system")), "unknown layer type"),
    (spec(node(op="__import__")), "unknown layer type"),
    (spec(node(op="Conv2d", args={"in_channels": 3, "out_channels": 1 << 20, "kernel_size": [3, 3]})),
     "out_channels"),
    (spec(node(op="Conv2d", args={"in_channels": "3"})), "in_channels"),
    (spec(node(op="Conv2d", args={"in_channels": 3, "init": "evil"})), "takes the arguments"),
    (spec(node(op="Constant", args={"shape": [1 << 20, 1 << 20], "key": "v", "learnable": False}, inputs=())),
     "more than"),
    (spec(node(op="Reshape", args={"shape": [1] * 100})), "1 to 8"),
    (spec(node(op="Pad", args={"pads": [[0, 1 << 40]], "value": 0.0})), "pads"),
    (spec(node(op="Clip", args={"low": float("nan")})), "finite"),
    (spec(node(name="x" * 300)), "characters"),
    (spec(node(inputs=["input"] * 1000)), "inputs"),
    ({"version": 1, "output": "a", "nodes": [node(name=f"n{i}") for i in range(20_001)]}, "nodes"),
    (spec(*[node(name=f"bn{i}", op="BatchNorm2d", args={"num_features": 60_000}) for i in range(200)]),
     "add up"),
    ({"version": 2, "output": "a", "nodes": [node()]}, "version"),
])
def test_hostile_specs_are_refused_before_anything_is_built(bad, match):
    with pytest.raises(ValueError, match=match):
        check_graph_spec(bad)


def test_a_spec_that_passes_the_schema_is_still_checked_when_built():
    with pytest.raises(ValueError, match="never read|neither"):
        graph_from_spec(spec(node(inputs=["nowhere"])))
    with shapes_only():
        big = graph_from_spec(spec(node(op="Constant", args={"shape": [4096, 4096], "key": "v", "learnable": True},
                                        inputs=())))
    assert big.named_parameters()["a.v"].strides == (0, 0)


def test_a_graph_checkpoint_round_trips_and_hostile_configs_are_refused(rng, tmp_path):
    from convscope import Classifier, load
    from convscope.data import Normalizer
    from convscope.training import CheckpointError, read_checkpoint
    model = build_model("graph", num_classes=5, in_channels=3, input_size=(6, 6), graph=graph_to_spec(small_dag(rng)))
    clf = Classifier(model, Normalizer([0.5] * 3, [0.25] * 3), list("abcde"), (3, 6, 6))
    path = clf.save(tmp_path / "g.npz")
    back = load(path)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.model.forward(x), clf.model.forward(x))
    assert back.class_names == list("abcde")

    config, arrays = read_checkpoint(path)
    for options, match in [({"graph": config["model"]["options"]["graph"], "extra": 1}, "exactly"),
                           ({"graph": {**config["model"]["options"]["graph"], "nodes": [node(op="eval")]}},
                            "unknown layer type")]:
        bad = dict(config, model=dict(config["model"], options=options))
        hostile = tmp_path / "bad.npz"
        np.savez(hostile, __config__=np.array(json.dumps(bad)), **arrays)
        with pytest.raises(CheckpointError, match=match):
            load(hostile)
