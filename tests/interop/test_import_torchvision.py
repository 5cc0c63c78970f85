"""Importing torchvision weights: every architecture gives torchvision's logits, in every file format.

Each network is torchvision's own definition with random weights and randomised BN running
statistics. ResNets and GoogLeNet end in global pooling, so they are compared on 96 x 96
inputs (the zoo's full-size variants; the small ones start at 64 px and below); AlexNet and
VGG need 224 x 224, where their adaptive pools are the identity. One ResNet-50 and one
GoogLeNet go end to end at 224 px through the saved checkpoint and a photo.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import convscope  # noqa: E402
from convscope.interop import TORCHVISION_MODELS, WeightsError, import_torchvision, imagenet_preset  # noqa: E402
from convscope.interop.torchvision import build_from_state_dict  # noqa: E402
from torch_reference import (FORMATS, assert_close_logits, random_torchvision, save_state,  # noqa: E402
                             torch_logits, torchvision_preprocess)
from torchvision_models import torchvision_model  # noqa: E402

_EXTRA = {"googlenet": {"init_weights": False}}          # torchvision's default GoogLeNet has aux heads
SIZES = {name: (96 if name.startswith("resnet") or name == "googlenet" else 224) for name in TORCHVISION_MODELS}


@pytest.mark.parametrize("arch", TORCHVISION_MODELS)
def test_every_torchvision_name_and_shape_maps_onto_the_zoo(arch):
    """torchvision's state_dict on the meta device (names and shapes only): every array has a
    place in the zoo model and the parameter counts agree (GoogLeNet's aux heads dropped)."""
    with torch.device("meta"):
        net = torchvision_model(arch, **_EXTRA.get(arch, {}))
    state = {k: np.broadcast_to(np.zeros((), np.float32 if v.is_floating_point() else np.int64), tuple(v.shape))
             for k, v in net.state_dict().items()}
    model = build_from_state_dict(state, arch)
    expected = sum(p.numel() for name, p in net.named_parameters() if not name.startswith(("aux1.", "aux2.")))
    assert model.num_parameters() == expected
    assert model.config["name"] == arch and model.config["input_size"] == [224, 224]


@pytest.mark.parametrize("index, arch", list(enumerate(TORCHVISION_MODELS)))
def test_imported_logits_are_torchvisions(index, arch, tmp_path):
    net = random_torchvision(arch, seed=index, **_EXTRA.get(arch, {}))
    fmt = FORMATS[index % len(FORMATS)]                       # every format on some architectures
    path = save_state(net, tmp_path / f"{arch}.pth", fmt)
    clf = import_torchvision(path, arch)
    size = SIZES[arch]
    x = np.random.default_rng(index).standard_normal((2 if size < 224 else 1, 3, size, size)).astype(np.float32)
    assert_close_logits(clf.model.forward(x), torch_logits(net, x))
    assert not clf.model.training and clf.num_classes == 1000


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_same_arrays(fmt, resnet18_file, tmp_path):
    net, _ = resnet18_file
    clf = import_torchvision(save_state(net, tmp_path / "r.pth", fmt), "resnet18")
    for key, value in clf.model.state_dict().items():
        assert value.dtype == np.float32, key
    np.testing.assert_array_equal(clf.model.get_module("layer2.0.shortcut.conv").params["weight"],
                                  net.layer2[0].downsample[0].weight.detach().numpy())
    np.testing.assert_array_equal(clf.model.get_module("layer4.1.bn2").buffers["running_var"],
                                  net.layer4[1].bn2.running_var.numpy())


def test_resnet50_end_to_end_at_224_through_the_checkpoint(photo, tmp_path):
    """torch.save -> import -> clf.save -> convscope.load: a photo's logits are torchvision's
    after torchvision's own Resize(256) + CenterCrop(224) + Normalize."""
    net = random_torchvision("resnet50", seed=7)
    clf = import_torchvision(save_state(net, tmp_path / "r50.pth", "zip"), "resnet50")
    loaded = convscope.load(clf.save(tmp_path / "r50.npz"))
    assert loaded.model.num_parameters() == 25_557_032 and loaded.input_shape == (3, 224, 224)
    assert loaded.class_names[:2] == ["tench", "goldfish"] and len(loaded.class_names) == 1000
    want = torch_logits(net, torchvision_preprocess(photo))
    assert_close_logits(loaded.logits([photo]), want)
    assert loaded.top([photo], k=1)[0][0]["index"] == int(want.argmax())


def test_googlenet_preset_reproduces_transform_input(photo, tmp_path):
    """torchvision's pretrained GoogLeNet re-maps ImageNet-normalised input (transform_input=True):
    the preset's mean 0.5 / std 0.5 normaliser gives the zoo GoogLeNet exactly that input."""
    net = random_torchvision("googlenet", seed=3, init_weights=False, transform_input=True)
    clf = import_torchvision(save_state(net, tmp_path / "g.pth", "zip"), "googlenet")
    assert clf.normalizer.mean.tolist() == [0.5] * 3 and clf.normalizer.std.tolist() == [0.5] * 3
    assert_close_logits(clf.logits([photo]), torch_logits(net, torchvision_preprocess(photo)))
    plain = imagenet_preset("resnet50")["normalizer"]
    np.testing.assert_allclose(plain.mean, [0.485, 0.456, 0.406]) and np.testing.assert_allclose(
        plain.std, [0.229, 0.224, 0.225])


def test_preset_none_is_pixels_in_unit_range_and_numbered_classes(resnet18_file):
    net, path = resnet18_file
    clf = import_torchvision(path, "ResNet18", preset="none")
    assert clf.class_names[:3] == ["0", "1", "2"] and clf.transform == {}
    pixels = np.random.default_rng(0).random((1, 3, 224, 224)).astype(np.float32)
    assert_close_logits(clf.logits(pixels), torch_logits(net, pixels))


def test_num_classes_is_read_from_the_head(tmp_path):
    net = random_torchvision("resnet18", seed=2, num_classes=10)
    path = save_state(net, tmp_path / "ten.pth", "zip")
    clf = import_torchvision(path, "resnet18")
    assert clf.num_classes == 10 and clf.class_names == [str(k) for k in range(10)]
    assert clf.normalizer.mean.tolist() == pytest.approx([0.485, 0.456, 0.406])
    with pytest.raises(WeightsError, match=r"'fc.weight' has shape \(10, 512\) but torchvision's resnet18 needs "
                                           r"\(7, 512\) there \(--num-classes"):
        import_torchvision(path, "resnet18", num_classes=7)


def _state_file(tmp_path, net, edit):
    state = net.state_dict()
    edit(state)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("edit, arch, match", [
    (lambda s: s.pop("layer3.1.bn1.running_mean"), "resnet18",
     r"has no 'layer3.1.bn1.running_mean', which torchvision's resnet18 has \(the zoo's 'layer3.1.bn1.running_mean'\)"),
    (lambda s: s.update({"head.weight": torch.zeros(3)}), "resnet18",
     r"holds 'head.weight', which is not a weight of torchvision's resnet18"),
    (lambda s: s.update({"conv1.weight": torch.zeros(64, 3, 3, 3)}), "resnet18",
     r"'conv1.weight' has shape \(64, 3, 3, 3\) but torchvision's resnet18 needs \(64, 3, 7, 7\)"),
    (lambda s: s.update({"conv1.weight": torch.zeros(64, 3, 7, 7, dtype=torch.int32)}), "resnet18",
     r"'conv1.weight' holds int32 values; a weight must be floating point"),
    (lambda s: None, "resnet34", r"has no 'layer1.2.conv1.weight', which torchvision's resnet34 has"),
    (lambda s: None, "vgg16", r"has no 'classifier.6.weight' \(the output layer of torchvision's vgg16\)"),
])
def test_a_mismatched_key_is_one_line_naming_it(edit, arch, match, resnet18_file, tmp_path):
    net, _ = resnet18_file
    with pytest.raises(WeightsError, match=match) as info:
        import_torchvision(_state_file(tmp_path, net, edit), arch)
    assert "\n" not in str(info.value)


def test_an_unknown_or_foreign_model_name_is_refused(resnet18_file):
    _, path = resnet18_file
    with pytest.raises(WeightsError, match="unknown model 'resnet19'; did you mean 'resnet18'"):
        import_torchvision(path, "resnet19")
    with pytest.raises(WeightsError, match="model 'lenet5' has no torchvision counterpart"):
        import_torchvision(path, "lenet5")
    with pytest.raises(ValueError, match="preset must be one of imagenet, none"):
        import_torchvision(path, "resnet18", preset="cifar")


def test_num_batches_tracked_and_googlenet_aux_heads_are_ignored(tmp_path):
    net = random_torchvision("googlenet", seed=5, init_weights=False)       # aux_logits=True: aux1, aux2
    assert any(k.startswith("aux1.") for k in net.state_dict())
    clf = import_torchvision(save_state(net, tmp_path / "g.pth", "legacy"), "googlenet")
    assert clf.model.num_parameters() == 6_624_904
    assert not any("num_batches_tracked" in k or k.startswith("aux") for k in clf.model.state_dict())
