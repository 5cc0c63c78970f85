"""Seeing inside a trained CNN (notes §3): filters, activations, neighbours, deconvnet,
activation maximisation, saliency maps, code inversion and unit dissection.

The front door::

    import convscope
    clf = convscope.load("runs/x")
    cam = convscope.visualize.grad_cam(clf, images)      # cam.upsampled: (N, H, W)

Every technique is a function with one shape, ``technique(model, images, ...)``: ``model``
is a :class:`~convscope.Classifier` with the images a user holds (uint8 arrays, float pixels
in [0, 1] or image files; for techniques that make images, its normaliser sets the pixel
range), or a bare :class:`~convscope.layers.Module` with float arrays (N, C, H, W) already in
model space. Layers are addressed by the dotted names that ``convscope summary`` prints;
``layer=None`` picks each technique's usual layer (for Grad-CAM the last convolution, or
the residual / Inception block holding it, e.g. ResNet-50's "layer4.2"; the last convolution
for deconvnet and dissection, the first for filters and activations, the feature layer before
the first fully-connected one for neighbours and inversion, the logits for activation
maximisation). Results are unscaled arrays (attributions signed unless a method says
otherwise); :mod:`~convscope.visualize.display` holds the explicit display steps.

Layout: :mod:`.core` (Classifier or Module, layers, targets, batches) and :mod:`.probe`
(forward hooks and the seeded backward) under the methods: gradient-based
(:mod:`.saliency`, :mod:`.attribution`, :mod:`.deconv`, :mod:`.actmax`, :mod:`.inversion`,
with the image priors of :mod:`.regularizers`), perturbation (:mod:`.occlusion`) and
forward-only (:mod:`.features`, :mod:`.neighbors`, :mod:`.dissect`); :mod:`.display` turns
results into pictures; :mod:`.render`, :mod:`.context`, :mod:`.techniques` and
:mod:`.report` (matplotlib figures, the CLI's flags and runs, the HTML report) are
presentation. Only the presentation modules
need matplotlib.
"""

from .actmax import ActMaxResult, activation_maximization
from .attribution import GradCamResult, IGResult, grad_cam, integrated_gradients
from .core import feature_layer, first_conv, last_block, last_conv, leaf_layer_names, resolve
from .deconv import DeconvResult, deconv
from .display import normalize_map, resize_bilinear, to_display, to_pixels
from .dissect import DissectResult, dissect
from .features import FilterGrid, SparsityRow, feature_maps, filter_grid, sparsity
from .inversion import InversionResult, invert
from .neighbors import NeighborResult, TranslationResult, nearest_neighbors, translation_example
from .occlusion import occlusion
from .probe import backprop_from, input_gradient, layer_output, probe, relu_rule
from .saliency import gradient_saliency, guided_backprop, input_gradients, smoothgrad
from .cams import CAM_METHODS, CamResult, class_activation_map
from .faithfulness import METRICS, Curves, RandomisationCurve, faithfulness, faithfulness_curves, randomisation_curve
from .methods import METHODS, Method, attribute, reduce_channels
from .perturbation import noise_tunnel, rise
from .rules import Relevance, deeplift, lrp, propagation_rule

__all__ = [
    "filter_grid", "FilterGrid", "feature_maps", "sparsity", "SparsityRow",
    "nearest_neighbors", "NeighborResult", "translation_example", "TranslationResult",
    "deconv", "DeconvResult", "activation_maximization", "ActMaxResult",
    "input_gradients", "gradient_saliency", "guided_backprop", "smoothgrad", "integrated_gradients", "IGResult",
    "grad_cam", "GradCamResult", "occlusion", "normalize_map", "resize_bilinear", "to_display", "to_pixels",
    "invert", "InversionResult", "dissect", "DissectResult",
    "resolve", "probe", "relu_rule", "layer_output", "backprop_from", "input_gradient",
    "leaf_layer_names", "feature_layer", "first_conv", "last_conv", "last_block",
    "attribute", "METHODS", "Method", "reduce_channels", "faithfulness", "faithfulness_curves", "METRICS",
    "Curves", "randomisation_curve", "RandomisationCurve", "class_activation_map", "CamResult", "CAM_METHODS",
    "noise_tunnel", "rise", "propagation_rule", "lrp", "deeplift", "Relevance",
]
