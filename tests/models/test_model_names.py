"""Model names: case-insensitive, canonical in the config, "did you mean" for a typo."""

import doctest

import numpy as np
import pytest

import convscope.models as models
from convscope.layers import shapes_only
from convscope.models import (available_models, build_model, model_description, registry,
                              resolve_model_name)


@pytest.mark.parametrize("given, canonical", [("LeNet5", "lenet5"), ("VGG16_BN", "vgg16_bn"),
                                              ("ResNet50", "resnet50"), ("mlp", "mlp"),
                                              ("GoogLeNet", "googlenet")])
def test_names_match_case_insensitively(given, canonical):
    assert resolve_model_name(given) == canonical
    with shapes_only():
        model = build_model(given, in_channels=1, input_size=(28, 28))
    assert model.config["name"] == canonical
    assert model_description(given) == model_description(canonical)


@pytest.mark.parametrize("typo, suggestion", [("resnet-50", "resnet50"), ("lenet7", "lenet5"),
                                              ("vgg16bn", "vgg16_bn"), ("AlexNet_Orig", "alexnet_original")])
def test_unknown_names_suggest_the_closest_and_list_all(typo, suggestion):
    with pytest.raises(ValueError, match=f"unknown model '{typo}'; did you mean '{suggestion}'") as err:
        build_model(typo)
    assert all(name in str(err.value) for name in available_models())


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(ValueError, match="unknown model 'transformer'; known models: alexnet, "):
        resolve_model_name("transformer")


def test_a_name_must_be_a_string():
    with pytest.raises(TypeError, match="model name must be a string, got 5"):
        resolve_model_name(5)


def test_registered_names_are_lower_case():
    assert all(name == name.lower() for name in available_models())
    with pytest.raises(ValueError, match="'MyNet'"):
        registry.register("MyNet", "a test")


@pytest.mark.parametrize("name", [n for n in available_models() if n.startswith("resnet")])
def test_resnet_builders_are_exported_and_registered(name):
    builder = getattr(models, name)
    assert builder.__name__ == name and name in builder.__doc__.lower().replace("-", "")
    rng = np.random.default_rng(0)
    with shapes_only():
        direct = builder(num_classes=10, in_channels=1, input_size=(28, 28), rng=rng)
        built = build_model(name, num_classes=10, in_channels=1, input_size=(28, 28))
    assert list(direct.state_dict()) == list(built.state_dict())


def test_the_docstring_examples_run():
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(registry):
        runner.run(test)
    assert runner.tries and not runner.failures
