"""convscope.summary: rows checked against hand-computed values, and the claims of notes §2.

Receptive fields follow r_out = r_in + (k - 1) j_in, j_out = j_in s (Araujo et al. 2019).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from convscope.layers import (AuxiliaryClassifier, AvgPool2d, BatchNorm2d, Concat, Conv2d, Flatten,
                              GlobalAvgPool2d, Identity, Linear, MaxPool2d, Module, ReLU, Residual,
                              Sequential)
from convscope.layers.base import shapes_only
from convscope.models import available_models, build_model
from convscope.summary import LayerRow, Summary, summarize

RNG = np.random.default_rng(0)

# LeNet-5 at 1x32x32, by hand. (name, type, output shape, params, RF, jump, MACs)
#   conv1: 6 filters 1x5x5 + 6 biases = 156; MACs 6*28*28 outputs x 25 = 117,600
#   pool1: r = 5 + (2-1)*1 = 6, j = 2;  conv2: r = 6 + 4*2 = 14, 16*6*25 + 16 = 2,416,
#   MACs 16*10*10 x 6*25 = 240,000;  pool2: r = 14 + 1*2 = 16, j = 4
#   flatten and after: the whole 32x32 input; fc MACs are in x out.
LENET_32 = [
    ("conv1", "Conv2d", (6, 28, 28), 156, 5, 1, 117_600),
    ("relu1", "ReLU", (6, 28, 28), 0, 5, 1, 0),
    ("pool1", "MaxPool2d", (6, 14, 14), 0, 6, 2, 0),
    ("conv2", "Conv2d", (16, 10, 10), 2_416, 14, 2, 240_000),
    ("relu2", "ReLU", (16, 10, 10), 0, 14, 2, 0),
    ("pool2", "MaxPool2d", (16, 5, 5), 0, 16, 4, 0),
    ("flatten", "Flatten", (400,), 0, 32, 32, 0),
    ("fc1", "Linear", (120,), 48_120, 32, 32, 48_000),
    ("relu3", "ReLU", (120,), 0, 32, 32, 0),
    ("fc2", "Linear", (84,), 10_164, 32, 32, 10_080),
    ("relu4", "ReLU", (84,), 0, 32, 32, 0),
    ("fc3", "Linear", (10,), 850, 32, 32, 840),
]


def rows_as_tuples(s: Summary):
    return [(r.name, r.type, r.output_shape, r.params, r.receptive_field, r.jump, r.macs) for r in s.rows]


def square(table):
    return [(n, t, o, p, (rf, rf), (j, j), m) for n, t, o, p, rf, j, m in table]


def conv(cin, cout, k, stride=1, padding=0, **kw):
    return Conv2d(cin, cout, k, stride=stride, padding=padding, rng=RNG, **kw)


def test_lenet5_rows_by_hand():
    s = summarize(build_model("lenet5", 10, 1, (32, 32), rng=RNG), (1, 32, 32))
    assert rows_as_tuples(s) == square(LENET_32)
    assert s.model == "lenet5" and s.input_shape == (1, 32, 32)
    assert s.total_params == 61_706 == sum(r.params for r in s.rows)
    assert s.total_macs == 117_600 + 240_000 + 48_000 + 10_080 + 840


def test_lenet5_at_28_pads_the_first_conv():
    # padding 2 on 28x28: same maps as 32x32, unit 0 of conv1 centred at pixel (0, 0)
    s = summarize(build_model("lenet5", 10, 1, (28, 28), rng=RNG), (1, 28, 28))
    assert s.row("conv1").output_shape == (6, 28, 28)
    assert s.row("conv1").start == (0.0, 0.0)
    assert s.row("pool2").receptive_field == (16, 16)
    assert s.row("fc3").receptive_field == (28, 28) and s.row("fc3").jump == (28, 28)


def test_rows_are_leaves_in_forward_order_with_named_modules_names():
    model = build_model("lenet5", 10, 1, (32, 32), rng=RNG)
    s = summarize(model, (1, 32, 32))
    leaves = [name for name, m in model.named_modules() if not m.children()]
    assert [r.name for r in s.rows] == leaves
    for r in s.rows:
        assert model.get_module(r.name).num_parameters() == r.params


# (layer, input shape, output shape, RF, jump, start) for one leaf on a fresh input
WINDOWS = [
    (conv(2, 3, 3, padding=1), (2, 9, 9), (3, 9, 9), (3, 3), (1, 1), (0.0, 0.0)),
    (conv(2, 3, 3), (2, 9, 9), (3, 7, 7), (3, 3), (1, 1), (1.0, 1.0)),
    (conv(2, 3, (3, 5), stride=(1, 2)), (2, 9, 9), (3, 7, 3), (3, 5), (1, 2), (1.0, 2.0)),
    (conv(3, 8, 11, stride=4, padding=2), (3, 224, 224), (8, 55, 55), (11, 11), (4, 4), (3.0, 3.0)),
    (MaxPool2d(2), (4, 8, 8), (4, 4, 4), (2, 2), (2, 2), (0.5, 0.5)),
    (AvgPool2d(3, stride=2, padding=1), (4, 8, 8), (4, 4, 4), (3, 3), (2, 2), (0.0, 0.0)),
    (ReLU(), (4, 8, 8), (4, 8, 8), (1, 1), (1, 1), (0.0, 0.0)),
    (GlobalAvgPool2d(), (4, 8, 6), (4,), (8, 6), (8, 6), (3.5, 2.5)),
]


@pytest.mark.parametrize("layer, shape, out, rf, jump, start", WINDOWS)
def test_one_leaf(layer, shape, out, rf, jump, start):
    (row,) = summarize(layer, shape).rows
    assert (row.output_shape, row.receptive_field, row.jump, row.start) == (out, rf, jump, start)


def test_three_3x3_convs_see_7x7_with_27_c2_weights_against_49_c2():
    # notes §2.3: a stack of three 3x3 convs (C in = C out, stride 1) sees what one 7x7 sees,
    # with 3 * 3^2 C^2 = 27 C^2 weights against 7^2 C^2 = 49 C^2.
    c = 16
    stack = Sequential(*[(f"conv{i}", conv(c, c, 3, padding=1, bias=False)) for i in (1, 2, 3)])
    single = Sequential(("conv", conv(c, c, 7, padding=3, bias=False)))
    s3, s7 = summarize(stack, (c, 20, 20)), summarize(single, (c, 20, 20))
    assert [r.receptive_field for r in s3.rows] == [(3, 3), (5, 5), (7, 7)]
    assert s7.rows[0].receptive_field == (7, 7)
    assert s3.total_params == 27 * c * c and s7.total_params == 49 * c * c
    assert s3.total_macs * 49 == s7.total_macs * 27          # same output size, same ratio


def test_residual_takes_the_larger_path_then_post():
    # body: 3x3/2 (r 3, j 2) then 3x3/1 (r 3 + 2*2 = 7); shortcut 1x1/2 (r 1, j 2); union r 7.
    block = Residual(Sequential(("conv1", conv(4, 8, 3, stride=2, padding=1)), ("relu", ReLU()),
                                ("conv2", conv(8, 8, 3, padding=1))),
                     shortcut=Sequential(("conv", conv(4, 8, 1, stride=2, bias=False)),
                                         ("bn", BatchNorm2d(8))),
                     post=ReLU())
    model = Sequential(("block", block), ("after", conv(8, 8, 3, padding=1)))
    s = summarize(model, (4, 16, 16))
    got = [(r.name, r.output_shape, r.receptive_field[0], r.jump[0], r.macs) for r in s.rows]
    assert got == [
        ("block.body.conv1", (8, 8, 8), 3, 2, 8 * 8 * 8 * 4 * 9),
        ("block.body.relu", (8, 8, 8), 3, 2, 0),
        ("block.body.conv2", (8, 8, 8), 7, 2, 8 * 8 * 8 * 8 * 9),
        ("block.shortcut.conv", (8, 8, 8), 1, 2, 8 * 8 * 8 * 4),
        ("block.shortcut.bn", (8, 8, 8), 1, 2, 0),
        ("block.post", (8, 8, 8), 7, 2, 0),
        ("after", (8, 8, 8), 7 + 2 * 2, 2, 8 * 8 * 8 * 8 * 9),
    ]
    assert s.total_params == model.num_parameters()


def test_identity_residual_keeps_the_body_field():
    block = Residual(Sequential(conv(4, 4, 3, padding=1), conv(4, 4, 3, padding=1)))
    s = summarize(block, (4, 8, 8))
    assert [(r.name, r.type, r.receptive_field[0]) for r in s.rows] == [
        ("body.0", "Conv2d", 3), ("body.1", "Conv2d", 5), ("shortcut", "Identity", 1)]


def test_concat_takes_the_largest_branch():
    # An Inception module (notes §2.4): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1.
    module = Concat(("b1", conv(8, 4, 1)),
                    ("b3", Sequential(("reduce", conv(8, 2, 1)), ("conv", conv(2, 4, 3, padding=1)))),
                    ("b5", Sequential(("reduce", conv(8, 2, 1)), ("conv", conv(2, 4, 5, padding=2)))),
                    ("pool", Sequential(("pool", MaxPool2d(3, stride=1, padding=1)),
                                        ("proj", conv(8, 4, 1)))))
    model = Sequential(("inception", module), ("pool", MaxPool2d(2)))
    s = summarize(model, (8, 6, 6))
    got = [(r.name, r.output_shape, r.receptive_field[0], r.macs) for r in s.rows]
    assert got == [
        ("inception.b1", (4, 6, 6), 1, 4 * 36 * 8),
        ("inception.b3.reduce", (2, 6, 6), 1, 2 * 36 * 8),
        ("inception.b3.conv", (4, 6, 6), 3, 4 * 36 * 2 * 9),
        ("inception.b5.reduce", (2, 6, 6), 1, 2 * 36 * 8),
        ("inception.b5.conv", (4, 6, 6), 5, 4 * 36 * 2 * 25),
        ("inception.pool.pool", (8, 6, 6), 3, 0),
        ("inception.pool.proj", (4, 6, 6), 3, 4 * 36 * 8),
        ("pool", (16, 3, 3), 5 + 1, 0),                      # union 5, then a 2x2 pool
    ]
    assert s.row("pool").jump == (2, 2)


class FlatBlock(Residual):
    """A residual block listing its body's layers as its own children (as ResNet blocks do)."""

    def children(self):
        return self.body.children() + [("shortcut", self.shortcut), ("relu", self.post)]


class Subsample(Module):
    """x[:, :, ::s, ::s]: a strided leaf with no kernel (a 1x1 window)."""

    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)

    def forward(self, x):
        return x[:, :, ::self.stride, ::self.stride]

    def backward(self, dy):
        return None


def test_auxiliary_head_rows_branch_off_and_the_main_path_goes_on():
    # x (4, 6, 6) -> 3x3 conv (RF 3) -> side head [2x2/2 avg pool -> flatten -> fc] -> 3x3 conv (RF 5).
    head = Sequential(("pool", AvgPool2d(2)), ("flat", Flatten()), ("fc", Linear(4 * 2 * 2, 3, rng=RNG)))
    model = Sequential(("c1", conv(4, 4, 3)), ("aux", AuxiliaryClassifier(head)), ("c2", conv(4, 4, 3)))
    s = summarize(model, (4, 6, 6))
    got = [(r.name, r.output_shape, r.receptive_field[0], r.params, r.macs) for r in s.rows]
    assert got == [
        ("c1", (4, 4, 4), 3, 4 * 4 * 9 + 4, 4 * 16 * 36),
        ("aux.head.pool", (4, 2, 2), 4, 0, 0),
        ("aux.head.flat", (16,), 6, 0, 0),                # no spatial axes: the whole input
        ("aux.head.fc", (3,), 6, 16 * 3 + 3, 16 * 3),
        ("c2", (4, 2, 2), 5, 4 * 4 * 9 + 4, 4 * 4 * 36),  # continues from c1, not from the head
    ]
    assert s.total_params == sum(r[3] for r in got)


def test_googlenet_with_auxiliary_classifiers_totals_torchvisions_count():
    with shapes_only():
        plain = summarize(build_model("googlenet", 1000, 3, (224, 224)), (3, 224, 224))
        aux = summarize(build_model("googlenet", 1000, 3, (224, 224), aux_logits=True), (3, 224, 224))
    assert aux.total_params == 13_004_888
    assert aux.row("aux1.head.fc1").params == 2048 * 1024 + 1024
    assert aux.row("aux2.head.pool").output_shape == (528, 4, 4)
    main = [r for r in aux.rows if not r.name.startswith("aux")]
    assert tuple(main) == plain.rows


def test_names_follow_named_modules_when_a_block_flattens_its_body():
    block = FlatBlock(Sequential(("conv1", conv(4, 4, 3, stride=2, padding=1)),
                                 ("conv2", conv(4, 4, 3, padding=1))),
                      shortcut=Subsample(2), post=ReLU())
    model = Sequential(("layer1", block))
    s = summarize(model, (4, 9, 9))
    assert [n for n, m in model.named_modules() if not m.children()] == [r.name for r in s.rows]
    got = [(r.name, r.output_shape, r.receptive_field[0], r.jump[0]) for r in s.rows]
    assert got == [("layer1.conv1", (4, 5, 5), 3, 2), ("layer1.conv2", (4, 5, 5), 7, 2),
                   ("layer1.shortcut", (4, 5, 5), 1, 2), ("layer1.relu", (4, 5, 5), 7, 2)]


def test_grouped_conv_macs():
    # AlexNet's two-GPU split: each filter sees C / groups channels.
    (row,) = summarize(conv(8, 6, 3, groups=2), (8, 5, 5)).rows
    assert row.macs == 6 * 3 * 3 * (8 // 2) * 3 * 3
    assert row.params == 6 * 4 * 9 + 6


def test_mlp_first_layer_holds_about_3wh_squared_weights():
    # notes §1: a fully connected layer about as wide as a flattened W x H x 3 image holds
    # about (3WH)^2 weights: here exactly (3WH)^2 plus 3WH biases.
    w, h = 16, 12
    n = 3 * w * h
    with shapes_only():
        model = build_model("mlp", 10, 3, (h, w), hidden=(n,))
    fc1 = next(r for r in summarize(model, (3, h, w)).rows if r.type == "Linear")
    assert fc1.params == n * n + n and fc1.macs == n * n
    assert fc1.receptive_field == (h, w)


def _zoo(name: str, num_classes: int = 1000) -> Summary:
    if name not in available_models():
        pytest.fail(f"model {name!r} is not registered; known: {available_models()}")
    with shapes_only():
        model = build_model(name, num_classes, 3, (224, 224))
    return summarize(model, (3, 224, 224))


def test_alexnet_first_fc_layer_holds_over_half_the_weights():
    # notes §2.2: about 60 million weights, over half in the first FC layer.
    s = _zoo("alexnet")
    fc6 = next(r for r in s.rows if r.type == "Linear")
    assert fc6.params == 256 * 6 * 6 * 4096 + 4096
    assert 55e6 < s.total_params < 65e6
    assert fc6.params / s.total_params > 0.5


def test_vgg16_last_pool_sees_212_pixels():
    # 2 x conv, pool (r 6, j 2); 2 x conv, pool (16, 4); 3 x conv, pool (44, 8);
    # 3 x conv, pool (100, 16); 3 x conv (196), pool: r 212, j 32.
    s = _zoo("vgg16")
    pools = [r for r in s.rows if r.type == "MaxPool2d"]
    assert [(p.receptive_field[0], p.jump[0]) for p in pools] == [
        (6, 2), (16, 4), (44, 8), (100, 16), (212, 32)]
    assert pools[-1].output_shape == (512, 7, 7)
    assert sum(r.type == "Conv2d" for r in s.rows) == 13


def test_resnet18_last_conv_sees_435_pixels():
    # conv1 7x7/2: r 7, j 2; max-pool 3x3/2: 7 + 2*2 = 11, j 4; layer1, four 3x3: 11 + 4*8 = 43;
    # layer2: 43 + 8 = 51 (j 8) then 3 x 16 -> 99; layer3: 99 + 16 = 115 (j 16), 3 x 32 -> 211;
    # layer4: 211 + 32 = 243 (j 32), 3 x 64 -> 435. The 1x1 projections do not widen it.
    s = _zoo("resnet18")
    convs = [r for r in s.rows if r.type == "Conv2d" and "shortcut" not in r.name]
    assert [c.receptive_field[0] for c in convs] == [
        7, 19, 27, 35, 43, 51, 67, 83, 99, 115, 147, 179, 211, 243, 307, 371, 435]
    assert convs[-1].jump == (32, 32) and s.total_params == 11_689_512


@pytest.mark.parametrize("name", available_models())
def test_every_registered_model_summarises(name):
    shape = (3, 224, 224)
    with shapes_only():
        try:
            model = build_model(name, 10, shape[0], shape[1:])
        except ValueError:                  # a small-input model: try CIFAR's size
            shape = (3, 32, 32)
            model = build_model(name, 10, shape[0], shape[1:])
    s = summarize(model, shape)
    assert [r.name for r in s.rows] == [n for n, m in model.named_modules() if not m.children()]
    assert s.total_params == model.num_parameters() and s.total_macs > 0
    assert s.rows[-1].output_shape == (10,) and s.rows[-1].receptive_field == shape[1:]


def test_to_dict_is_json_with_the_documented_keys():
    model = Sequential(("c", conv(1, 2, (3, 5))), ("f", Flatten()), ("fc", Linear(2 * 4 * 2, 3)))
    s = summarize(model, (1, 6, 6))
    d = json.loads(json.dumps(s.to_dict()))
    assert list(d) == ["model", "input_shape", "total_params", "total_macs", "layers"]
    assert d["model"] == "Sequential" and d["input_shape"] == [1, 6, 6]
    assert [list(row) for row in d["layers"]] == [
        ["name", "type", "output_shape", "params", "receptive_field", "jump", "macs"]] * 3
    first, last = d["layers"][0], d["layers"][-1]
    assert first["receptive_field"] == [3, 5] and first["jump"] == 1 and first["output_shape"] == [2, 4, 2]
    assert last["receptive_field"] == 6 and last["jump"] == 6 and last["macs"] == 16 * 3


def test_format_table_lists_every_row_and_the_totals():
    text = summarize(build_model("lenet5", 10, 1, (32, 32), rng=RNG), (1, 32, 32)).format_table()
    lines = text.splitlines()
    assert any(line.split()[:2] == ["conv1", "Conv2d"] and "117,600" in line for line in lines)
    assert any(line.startswith("fc1 ") and "48,120" in line for line in lines)
    assert "total params: 61,706" in text and "total MACs:   416,520" in text
    assert "input shape:  1x32x32" in text


class Mystery(Module):
    """A container summary cannot know the data flow of."""

    def __init__(self):
        super().__init__()
        self.a, self.b = ReLU(), ReLU()

    def children(self):
        return [("a", self.a), ("b", self.b)]

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x):
        return self.b(self.a(x))

    def backward(self, dy):
        return self.a.backward(self.b.backward(dy))


class Shrink(Module):
    """A leaf that changes the spatial size without saying how."""

    def output_shape(self, input_shape):
        c, h, w = input_shape
        return (c, h // 2, w // 2)

    def forward(self, x):
        return x[:, :, ::2, ::2]

    def backward(self, dy):
        return dy


@pytest.mark.parametrize("model, shape, match", [
    (Sequential(("m", Mystery())), (1, 4, 4), r"layer 'm' is a Mystery, a container"),
    (Sequential(("s", Shrink())), (1, 4, 4),
     r"leaf layer 's' \(Shrink\) maps \(1, 4, 4\) to \(1, 2, 2\) but has no kernel_size or stride"),
    (Sequential(("c", conv(3, 2, 3))), (1, 4, 4), r"layer 'c': Conv2d expects inputs of shape \(3, H, W\)"),
    (Sequential(("c", conv(1, 2, 5))), (1, 4, 4), r"layer 'c': Conv2d height"),
    (Identity(), (4, 4), r"input_shape must be \(C, H, W\)"),
    (Identity(), (1, 0, 4), r"input_shape must be \(C, H, W\)"),
])
def test_errors_name_the_layer_and_what_was_received(model, shape, match):
    with pytest.raises(ValueError, match=match):
        summarize(model, shape)


def test_row_lookup_names_the_known_layers():
    s = summarize(build_model("lenet5", 10, 1, (32, 32), rng=RNG), (1, 32, 32))
    assert isinstance(s.row("fc2"), LayerRow)
    with pytest.raises(ValueError, match="no leaf layer named 'fc9'; known: conv1, relu1"):
        s.row("fc9")
