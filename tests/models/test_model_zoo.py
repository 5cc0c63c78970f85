"""The model zoo (notes §2): exact parameter counts, shapes, layer names, options.

Counts at 3x224x224 with 1000 classes are torchvision's (and the AlexNet paper's); the
models are built under ``shapes_only()`` so that a 143M-parameter VGG costs no memory.
"""

import numpy as np
import pytest

from convscope.layers import (BasicBlock, Bottleneck, Conv2d, Dropout, Inception, Linear,
                              LocalResponseNorm, Sequential, ZeroPadShortcut, shapes_only)
from convscope.models import available_models, build_model, model_description

IMAGENET_COUNTS = {
    "alexnet": 61_100_840,
    "alexnet_original": 60_965_224,
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "googlenet": 6_624_904,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}
# He et al. §4.2, Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M with option A shortcuts.
CIFAR_COUNTS = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586,
                "resnet56": 853_018, "resnet110": 1_727_962}
ZOO = sorted(IMAGENET_COUNTS) + sorted(CIFAR_COUNTS)


def imagenet(name, **options):
    with shapes_only():
        return build_model(name, num_classes=1000, in_channels=3, input_size=(224, 224), **options)


@pytest.mark.parametrize("name", sorted(IMAGENET_COUNTS))
def test_imagenet_parameter_counts(name):
    model = imagenet(name)
    assert model.num_parameters() == IMAGENET_COUNTS[name]
    assert model.output_shape((3, 224, 224)) == (1000,)


@pytest.mark.parametrize("name", sorted(CIFAR_COUNTS))
def test_cifar_resnet_parameter_counts(name):
    model = build_model(name, num_classes=10, in_channels=3, input_size=(32, 32),
                        rng=np.random.default_rng(0))
    assert model.num_parameters() == CIFAR_COUNTS[name]
    # Option B adds a 1x1 conv + BN at the two stage transitions: 16*32 + 64 + 32*64 + 128.
    with shapes_only():
        b = build_model(name, num_classes=10, in_channels=3, input_size=(32, 32), shortcut="projection")
    assert b.num_parameters() == CIFAR_COUNTS[name] + 512 + 64 + 2048 + 128


def test_every_registered_architecture_is_tested():
    assert set(available_models()) - {"lenet5", "mlp"} == set(ZOO)


def test_shapes_only_gives_zero_memory_placeholders():
    model = imagenet("vgg16")
    fc6 = model.get_module("classifier.fc6").params["weight"]
    assert fc6.shape == (4096, 512 * 7 * 7) and fc6.strides == (0, 0)
    assert not fc6.flags.writeable
    real = Conv2d(3, 4, 3, rng=np.random.default_rng(0))          # outside the block: initialised
    assert real.params["weight"].flags.writeable and np.any(real.params["weight"] != 0)


@pytest.mark.parametrize("name, module, shape", [
    ("alexnet", "features", (256, 6, 6)),
    ("alexnet_original", "features", (256, 6, 6)),
    ("vgg11", "features", (512, 7, 7)),
    ("vgg19_bn", "features", (512, 7, 7)),
])
def test_imagenet_feature_maps(name, module, shape):
    model = imagenet(name)
    assert model.get_module(module).output_shape((3, 224, 224)) == shape


@pytest.mark.parametrize("name, upto, shape", [
    ("googlenet", "inception3a", (256, 28, 28)),
    ("googlenet", "inception4e", (832, 14, 14)),
    ("googlenet", "inception5b", (1024, 7, 7)),
    ("resnet18", "maxpool", (64, 56, 56)),
    ("resnet34", "layer4", (512, 7, 7)),
    ("resnet50", "layer1", (256, 56, 56)),
    ("resnet152", "layer4", (2048, 7, 7)),
])
def test_imagenet_intermediate_shapes(name, upto, shape):
    model = imagenet(name)
    names = [n for n, _ in model.children()]
    head = Sequential(*model.children()[:names.index(upto) + 1])
    assert head.output_shape((3, 224, 224)) == shape


def test_alexnet_original_takes_the_papers_227_input():
    with shapes_only():
        model = build_model("alexnet_original", num_classes=1000, in_channels=3, input_size=(227, 227))
    assert model.num_parameters() == IMAGENET_COUNTS["alexnet_original"]
    assert model.get_module("features").output_shape((3, 227, 227)) == (256, 6, 6)


def test_alexnet_original_structure():
    model = imagenet("alexnet_original")
    groups = {n: m.groups for n, m in model.named_modules() if isinstance(m, Conv2d)}
    assert groups == {"features.conv1": 1, "features.conv2": 2, "features.conv3": 1,
                      "features.conv4": 2, "features.conv5": 2}
    norms = [n for n, m in model.named_modules() if isinstance(m, LocalResponseNorm)]
    assert norms == ["features.norm1", "features.norm2"]
    lrn = model.get_module("features.norm1")
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    drops = [n for n, m in model.named_modules() if isinstance(m, Dropout)]
    assert drops == ["classifier.drop6", "classifier.drop7"]


@pytest.mark.parametrize("name, expected", [
    ("resnet18", ["conv1", "bn1", "layer1.0.conv1", "layer2.0.shortcut.conv", "layer4.1.relu2", "fc"]),
    ("resnet50", ["layer1.0.conv3", "layer3.5.bn3", "layer4.2.relu3", "avgpool"]),
    ("vgg16_bn", ["features.conv1_1", "features.bn1_1", "features.relu5_3", "features.pool5",
                  "classifier.fc6", "classifier.drop7", "classifier.fc8"]),
    ("alexnet", ["features.conv1", "features.pool5", "classifier.fc6", "classifier.fc8"]),
    ("googlenet", ["conv1", "conv1_bn", "maxpool1", "conv3", "inception3a.branch2.reduce",
                   "inception5b.branch4.conv", "avgpool", "dropout", "fc"]),
])
def test_readable_layer_names(name, expected):
    names = {n for n, _ in imagenet(name).named_modules()}
    assert set(expected) <= names


def test_resnet_parameter_names_follow_torchvision():
    params = imagenet("resnet50").named_parameters()
    assert params["conv1.weight"].shape == (64, 3, 7, 7)
    assert params["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert params["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)        # v1.5: stride here
    assert imagenet("resnet50").get_module("layer2.0.conv2").stride == (2, 2)
    assert params["layer2.0.shortcut.conv.weight"].shape == (512, 256, 1, 1)
    assert params["fc.weight"].shape == (1000, 2048)


def test_googlenet_uses_basic_conv2d_and_torchvisions_3x3_branch():
    model = imagenet("googlenet")
    block = model.get_module("inception3a")
    assert isinstance(block, Inception)
    assert block.get_module("branch3.conv").kernel_size == (3, 3)
    assert "bias" not in block.get_module("branch1.conv").params
    assert block.get_module("branch1.bn").eps == 1e-3
    with shapes_only():
        paper = build_model("googlenet", num_classes=1000, in_channels=3, input_size=(224, 224),
                            branch3_kernel=5)
    assert paper.num_parameters() > IMAGENET_COUNTS["googlenet"]


def test_googlenet_auxiliary_classifiers_match_torchvision():
    """torchvision's googlenet(aux_logits=True): 13,004,888 parameters, heads after 4a and 4d."""
    model = imagenet("googlenet", aux_logits=True)
    assert model.num_parameters() == 13_004_888
    names = [name for name, _ in model.children()]
    assert names.index("aux1") == names.index("inception4a") + 1
    assert names.index("aux2") == names.index("inception4d") + 1
    head = model.get_module("aux1.head")
    assert head.get_module("conv").params["weight"].shape == (128, 512, 1, 1)
    assert head.get_module("fc1").params["weight"].shape == (1024, 2048)
    assert head.get_module("fc2").params["weight"].shape == (1000, 1024)
    assert head.get_module("dropout").p == 0.7
    assert model.get_module("aux2").weight == 0.3
    assert model.output_shape((3, 224, 224)) == (1000,)


def test_googlenet_auxiliary_heads_train_only(rng):
    model = build_model("googlenet", num_classes=10, in_channels=1, input_size=(28, 28), rng=rng,
                        aux_logits=True)
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    aux = [model.get_module("aux1"), model.get_module("aux2")]
    model.train().forward(x)
    assert all(a.logits.shape == (2, 10) for a in aux)
    model.eval().forward(x)
    assert all(a.logits is None for a in aux)


# -- small variants -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32)])
def test_small_variant_output_shapes(name, in_channels, size):
    with shapes_only():
        model = build_model(name, num_classes=10, in_channels=in_channels, input_size=(size, size))
    assert model.output_shape((in_channels, size, size)) == (10,)
    assert model.config["input_size"] == [size, size]


def test_small_is_chosen_by_size_and_can_be_forced():
    def stem(size, **kw):
        with shapes_only():
            model = build_model("resnet18", in_channels=3, input_size=(size, size), **kw)
        return model.get_module("conv1")
    assert stem(64).kernel_size == (3, 3) and stem(65).kernel_size == (7, 7)
    assert stem(96, small=True).kernel_size == (3, 3)
    assert stem(64, small=False).kernel_size == (7, 7)


def test_small_variant_designs():
    def build(name, **kw):
        with shapes_only():
            return build_model(name, in_channels=1, input_size=(28, 28), **kw)
    alex = build("alexnet_original")
    assert alex.get_module("features.conv1").kernel_size == (5, 5)
    assert alex.get_module("features.conv2").groups == 2
    assert alex.get_module("features").output_shape((1, 28, 28)) == (64, 2, 2)
    assert build("vgg16").get_module("features").output_shape((1, 28, 28)) == (128, 3, 3)
    assert build("resnet50").get_module("fc").in_features == 16 * 8 * 4
    assert build("resnet18", width=32).get_module("fc").in_features == 256
    assert isinstance(build("resnet20").get_module("layer2.0.shortcut"), ZeroPadShortcut)
    assert build("resnet18").get_module("layer1").output_shape((16, 14, 14)) == (16, 14, 14)
    assert "maxpool" in dict(build("resnet18").children())            # 28 -> 14 before layer1
    assert "maxpool" not in dict(build("resnet20").children())         # CIFAR: layer1 at 28
    assert isinstance(build("resnet34").get_module("layer1.0"), BasicBlock)
    assert isinstance(build("resnet101").get_module("layer3.22"), Bottleneck)
    assert isinstance(build("googlenet").get_module("fc"), Linear)


@pytest.mark.parametrize("name, options, message", [
    ("vgg11", {"small": "yes"}, "'yes'"),
    ("alexnet", {"dropout": 1.5}, "1.5"),
    ("resnet18", {"width": 0}, "width"),
    ("resnet20", {"shortcut": "C"}, "'C'"),
    ("googlenet", {"aux_logits": "yes"}, "aux_logits.*'yes'"),
    ("alexnet", {"small": False}, r"\(1, 28, 28\)"),        # the full layout cannot take 28x28
    ("vgg16", {"small": False}, r"\(1, 28, 28\)"),
])
def test_bad_options_and_sizes_raise_value_error(name, options, message):
    with pytest.raises(ValueError, match=message), shapes_only():
        build_model(name, in_channels=1, input_size=(28, 28), **options)


@pytest.mark.parametrize("name", ZOO)
def test_descriptions_mention_the_small_variant_or_cifar(name):
    text = model_description(name)
    assert "small inputs" in text or "CIFAR" in text


@pytest.mark.parametrize("name, size", [("resnet18", 96), ("googlenet", 96), ("resnet50", 80)])
def test_full_layouts_run_forward(name, size, rng):
    model = build_model(name, num_classes=7, in_channels=3, input_size=(size, size), rng=rng).eval()
    y = model.forward(rng.standard_normal((1, 3, size, size)).astype(np.float32))
    assert y.shape == (1, 7) and np.all(np.isfinite(y))
