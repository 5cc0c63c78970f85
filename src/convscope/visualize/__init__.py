"""Seeing inside a trained CNN (notes §3): filters, activations, neighbours, deconvnet,
activation maximisation, saliency maps, code inversion and unit dissection.

Every technique is a function returning arrays (maps, images, tables); layers are addressed
by the dotted names that ``convscope summary`` prints, on any model the library builds.
Inputs are float images (N, C, H, W) in model space (after the checkpoint's normalisation).
Attribution maps come back raw and signed; :func:`normalize_map` is the explicit display step.
"""

from .actmax import ActMaxResult, activation_maximization
from .attribution import GradCamResult, IGResult, grad_cam, integrated_gradients, occlusion
from .deconv import DeconvResult, deconv
from .dissect import DissectResult, dissect
from .features import FilterGrid, SparsityRow, feature_maps, filter_grid, sparsity
from .inversion import InversionResult, invert
from .neighbors import NeighborResult, TranslationResult, nearest_neighbors, translation_example
from .probe import feature_layer, input_gradient, layer_output, leaf_layer_names, probe, relu_rule
from .saliency import gradient_saliency, guided_backprop, input_gradients, normalize_map, smoothgrad

__all__ = [
    "filter_grid", "FilterGrid", "feature_maps", "sparsity", "SparsityRow",
    "nearest_neighbors", "NeighborResult", "translation_example", "TranslationResult",
    "deconv", "DeconvResult", "activation_maximization", "ActMaxResult",
    "input_gradients", "gradient_saliency", "guided_backprop", "smoothgrad", "integrated_gradients", "IGResult",
    "grad_cam", "GradCamResult", "occlusion", "normalize_map",
    "invert", "InversionResult", "dissect", "DissectResult",
    "probe", "relu_rule", "layer_output", "input_gradient", "leaf_layer_names", "feature_layer",
]
