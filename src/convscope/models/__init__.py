"""Architectures of notes §2, built by name through a registry."""

# Importing the architecture modules registers their builders.
from . import alexnet, googlenet, lenet, mlp, resnet, vgg  # noqa: F401
from .alexnet import alexnet_original
from .alexnet import alexnet as alexnet_model
from .googlenet import googlenet as googlenet_model
from .lenet import lenet5
from .mlp import mlp as mlp_model
from .registry import available_models, build_model, model_description, register, resolve_model_name
from .resnet import (resnet18, resnet20, resnet32, resnet34, resnet44, resnet50, resnet56, resnet101,
                     resnet110, resnet152)
from .vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = ["build_model", "available_models", "model_description", "register", "resolve_model_name",
           "lenet5", "mlp_model",
           "alexnet_model", "alexnet_original", "googlenet_model",
           "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
           "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]
