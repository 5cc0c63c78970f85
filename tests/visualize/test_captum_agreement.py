"""Agreement with Captum on the identical torch model, in float64: the torch twin of a convscope
network (LeNet-5 and a tiny residual net with batch norm) gets the same weights (PyTorch's
layouts are ours), and every method Captum implements gives the same attributions to float
tolerance. Skipped cleanly without torch or captum.

Conventions matched on purpose: Captum's Grad-CAM is compared at the layer's resolution
(``LayerGradCam(relu_attributions=True)``), guided Grad-CAM with nearest upsampling (Captum's
default), occlusion with a softmax forward (our occlusion scores probabilities), LRP with an
``EpsilonRule`` of the same epsilon on every layer and an ``Addition_Module`` for the residual
sum, integrated gradients with Gauss-Legendre nodes (Captum's trapezoid weights sum to
(n - 1) / n, ours to 1, so that rule is not compared).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
from captum.attr._utils.custom_modules import Addition_Module  # noqa: E402
from captum.attr._utils.lrp_rules import EpsilonRule  # noqa: E402

from convscope import layers as L  # noqa: E402
from convscope.models import build_model  # noqa: E402
from convscope.visualize import attribute, class_activation_map  # noqa: E402
from convscope.visualize.probe import evaluation_mode  # noqa: E402

from test_rules import tiny_residual  # noqa: E402

nn = torch.nn
pytestmark = [pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU"),   # Captum's notices
              pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")]


class Twin(nn.Module):
    """A convscope Sequential as torch modules; Flatten is applied as an operation (Captum's LRP
    wants a rule for every leaf module and has none for nn.Flatten)."""

    def __init__(self, model: L.Sequential) -> None:
        super().__init__()
        self.steps = nn.ModuleList()
        self.flatten_at: set[int] = set()
        self.names: dict[str, nn.Module] = {}
        for name, layer in model.children():
            if isinstance(layer, L.Flatten):
                self.flatten_at.add(len(self.steps))
                continue
            self.steps.append(_convert(layer, name, self.names))

    def forward(self, x):
        for i, step in enumerate(self.steps):
            if i in self.flatten_at:
                x = torch.flatten(x, 1)
            x = step(x)
        return torch.flatten(x, 1) if len(self.steps) in self.flatten_at else x


class TwinResidual(nn.Module):
    def __init__(self, block: L.Residual, prefix: str, names: dict) -> None:
        super().__init__()
        if not isinstance(block.shortcut, L.Identity):
            raise ValueError("the twin handles identity shortcuts only")
        self.body = nn.Sequential(*[_convert(m, f"{prefix}.body.{n}", names) for n, m in block.body.children()])
        self.add = Addition_Module()
        self.post = _convert(block.post, f"{prefix}.post", names)

    def forward(self, x):
        return self.post(self.add(self.body(x), x))


def _tensor(a):
    return nn.Parameter(torch.from_numpy(np.array(a, dtype=np.float64)), requires_grad=False)


def _convert(layer, name: str, names: dict) -> nn.Module:
    if isinstance(layer, L.Conv2d):
        out = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                        groups=layer.groups, bias="bias" in layer.params)
    elif isinstance(layer, L.Linear):
        out = nn.Linear(layer.in_features, layer.out_features, bias="bias" in layer.params)
    elif isinstance(layer, L.BatchNorm2d):
        out = nn.BatchNorm2d(layer.num_features, eps=layer.eps)
        out.running_mean = torch.from_numpy(np.array(layer.buffers["running_mean"], dtype=np.float64))
        out.running_var = torch.from_numpy(np.array(layer.buffers["running_var"], dtype=np.float64))
    elif isinstance(layer, L.ReLU):
        out = nn.ReLU()
    elif isinstance(layer, L.MaxPool2d):
        out = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    elif isinstance(layer, L.AvgPool2d):
        out = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, count_include_pad=layer.count_include_pad)
    elif isinstance(layer, L.GlobalAvgPool2d):
        out = _GAP()
    elif isinstance(layer, L.Residual):
        out = TwinResidual(layer, name, names)
    else:
        raise TypeError(f"no torch twin for {type(layer).__name__}")
    for key, value in layer.params.items():
        setattr(out, key, _tensor(value))
    names[name] = out
    return out.double()


class _GAP(nn.AdaptiveAvgPool2d):
    """Global average pooling to (N, C): AdaptiveAvgPool2d(1) then a flatten, as one module."""

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x):
        return super().forward(x).flatten(1)


def lenet():
    model = build_model("lenet5", 10, 1, (28, 28), rng=np.random.default_rng(3)).to(np.float64)
    rng = np.random.default_rng(4)
    for _, m in model.named_modules():                 # non-zero biases move the ReLU kinks
        if "bias" in m.params:
            m.params["bias"] = 0.05 * rng.standard_normal(m.params["bias"].shape)
    m = model.get_module("fc3")
    m.params["weight"] = m.params["weight"] * 300      # logits of a useful size
    return model, np.random.default_rng(5).standard_normal((4, 1, 28, 28)), "conv2"


def residual():
    return tiny_residual(), np.random.default_rng(6).standard_normal((4, 1, 8, 8)), "block.body.conv2"


NETS = {"lenet5": lenet, "residual": residual}


@pytest.fixture(scope="module", params=list(NETS))
def net(request):
    model, x, layer = NETS[request.param]()
    twin = Twin(model).eval()
    with evaluation_mode(model):
        logits = model.forward(x)
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), logits, rtol=1e-10, atol=1e-12)
    return request.param, model, twin, x, layer, np.array([1, 0, 2, 1])


def ours(model, x, method, t, **kw):
    return attribute(model, x, method, target=t, reduce="none", **kw)


def theirs(cls, twin, x, t, *args, **kw):
    inputs = torch.from_numpy(x.copy()).requires_grad_()
    return cls(twin, *args).attribute(inputs, target=torch.from_numpy(t), **kw).detach().numpy()


def close(a, b, rtol=1e-10):
    scale = max(np.abs(b).max(), 1e-300)
    assert np.abs(a - b).max() <= rtol * scale, np.abs(a - b).max() / scale


@pytest.mark.parametrize("method, cls, kw", [
    ("gradient", "Saliency", {"abs": False}),
    ("input_x_gradient", "InputXGradient", {}),
    ("guided_backprop", "GuidedBackprop", {}),
    ("deconvnet", "Deconvolution", {}),
])
def test_gradient_methods(net, method, cls, kw):
    _, model, twin, x, _, t = net
    close(ours(model, x, method, t), theirs(getattr(captum_attr, cls), twin, x, t, **kw))


def test_integrated_gradients(net):
    _, model, twin, x, _, t = net
    base = 0.1 * np.random.default_rng(7).standard_normal(x.shape)
    mine = ours(model, x, "integrated_gradients", t, baseline=base, steps=24, integration="gausslegendre")
    close(mine, theirs(captum_attr.IntegratedGradients, twin, x, t, baselines=torch.from_numpy(base),
                       n_steps=24, method="gausslegendre"), rtol=1e-7)      # Captum's nodes in float32


def avg_pooled(build):
    """The net with every max-pool replaced by an average pool of the same geometry."""
    def make():
        model, x, layer = build()
        for _, m in model.named_modules():
            for i, (name, child) in enumerate(getattr(m, "_layers", [])):
                if isinstance(child, L.MaxPool2d):
                    m._layers[i] = (name, L.AvgPool2d(child.kernel_size, child.stride))
        return model, x, layer
    return make


def pool_between_convs():
    """conv -> max-pool -> conv -> ReLU -> fc: the max-pool's neighbours are linear."""
    rng = np.random.default_rng(10)
    model = L.Sequential(("conv1", L.Conv2d(1, 3, 3, padding=1, rng=rng)), ("pool", L.MaxPool2d(2)),
                         ("conv2", L.Conv2d(3, 4, 3, padding=1, rng=rng)), ("relu", L.ReLU()), ("flatten", L.Flatten()),
                         ("fc", L.Linear(4 * 4 * 4, 3, rng=rng)))
    model.get_module("conv2").params["bias"] = 0.1 * rng.standard_normal(4).astype(np.float32)
    return model.to(np.float64), rng.standard_normal((4, 1, 8, 8)), "conv2"


@pytest.mark.parametrize("build", [avg_pooled(lenet), avg_pooled(residual), pool_between_convs],
                         ids=["lenet5-avgpool", "residual-avgpool", "maxpool-between-convs"])
@pytest.mark.parametrize("zero", [True, False])
def test_deeplift(build, zero):
    """Captum's DeepLift hooks read a module's upstream gradient before the next module's hook
    has rewritten it, so where two non-linear modules touch (ReLU -> MaxPool, as in LeNet-5) its
    multipliers are not DeepLIFT's and can break summation-to-delta; the nets here keep every
    non-linearity between linear layers (ours keep summation-to-delta on any net: test_rules)."""
    model, x, _ = build()
    twin, t = Twin(model).eval(), np.array([1, 0, 2, 1])
    base = np.zeros_like(x) if zero else 0.3 * np.random.default_rng(8).standard_normal(x.shape)
    close(ours(model, x, "deeplift", t, baseline=base),
          theirs(captum_attr.DeepLift, twin, x, t, baselines=torch.from_numpy(base)))


@pytest.mark.parametrize("epsilon", [1e-9, 0.05])
def test_lrp_epsilon(net, epsilon):
    _, model, twin, x, _, t = net
    for module in twin.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d)):
            module.rule = EpsilonRule(epsilon)
        elif isinstance(module, Addition_Module):
            module.rule = EpsilonRule(1e-12)              # convscope routes sums without epsilon
    close(ours(model, x, "lrp_epsilon", t, epsilon=epsilon), theirs(captum_attr.LRP, twin, x, t), rtol=1e-9)


def test_grad_cam_at_the_layer(net):
    _, model, twin, x, layer, t = net
    with evaluation_mode(model):
        cam = class_activation_map(model, x, t, "grad_cam", layer).cam
    got = theirs(captum_attr.LayerGradCam, twin, x, t, twin.names[layer], relu_attributions=True)
    close(cam, got[:, 0])


def test_guided_grad_cam(net):
    _, model, twin, x, layer, t = net
    mine = ours(model, x, "guided_grad_cam", t, layer=layer, upsample="nearest")
    close(mine, theirs(captum_attr.GuidedGradCam, twin, x, t, twin.names[layer]))


def test_occlusion(net):
    _, model, twin, x, _, t = net
    mine = attribute(model, x, "occlusion", t, window=4, stride=2, fill=0.0)
    prob = nn.Sequential(twin, nn.Softmax(dim=1))
    got = theirs(captum_attr.Occlusion, prob, x, t, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2),
                 baselines=0.0, perturbations_per_eval=64)
    close(mine, got[:, 0], rtol=1e-6)                   # Captum's window masks are float32


def test_infidelity_matches_captum(net):
    from captum.metrics import infidelity
    from convscope.visualize import faithfulness
    _, model, twin, x, _, t = net
    maps = attribute(model, x, "input_x_gradient", t, reduce="none")
    samples, noise = 5, 0.1
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    draws = np.random.default_rng(9).standard_normal((len(x) * samples,) + x.shape[1:])
    pert = torch.from_numpy(draws * np.repeat(sigma, samples)[:, None, None, None])

    def perturb(inputs):
        return pert, inputs - pert

    got = infidelity(twin, perturb, torch.from_numpy(x), torch.from_numpy(maps), target=torch.from_numpy(t),
                     n_perturb_samples=samples).numpy()
    mine = faithfulness(model, x, maps, "infidelity", target=t, samples=samples, noise=noise, seed=9)
    np.testing.assert_allclose(mine, got, rtol=1e-8)


@pytest.mark.parametrize("method, name", [("grad_cam", "GradCAM"), ("grad_cam_plus_plus", "GradCAMPlusPlus"),
                                          ("xgrad_cam", "XGradCAM"), ("layer_cam", "LayerCAM"),
                                          ("hires_cam", "HiResCAM"), ("ablation_cam", "AblationCAM")])
def test_cams_match_pytorch_grad_cam(net, method, name):
    """pytorch-grad-cam resizes each map bilinearly (half-pixel centres, like ours) and scales it
    to [0, 1]; compared after the same steps. Its Score-CAM
    weighs channels by a softmax over their masked logits and its Eigen-CAM centres the
    activations, where ours follow the papers (the probability gain; the raw SVD), so those two
    are not compared. Its Ablation-CAM sets a channel to min - 1e7 (zero after a following ReLU),
    ours to zero: they agree where the layer feeds a ReLU (LeNet's conv2), not before a sum."""
    name_of_net = net[0]
    if method == "ablation_cam" and name_of_net == "residual":
        pytest.skip("pytorch-grad-cam ablates to min - 1e7, which is not zero before the residual sum")
    from torchvision_models import torchvision_module
    torchvision_module("resnet")                          # pytorch-grad-cam imports torchvision
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from convscope.visualize.cams import upsample
    from convscope.visualize.display import scale_each
    _, model, twin, x, layer, t = net
    with evaluation_mode(model):
        cam = class_activation_map(model, x, t, method, layer).cam
    mine = scale_each(upsample(cam, x.shape[2:]))
    tool = getattr(pgc, name)(model=twin, target_layers=[twin.names[layer]])
    theirs = tool(input_tensor=torch.from_numpy(x.copy()).requires_grad_(), targets=[ClassifierOutputTarget(int(c)) for c in t])
    np.testing.assert_allclose(mine, theirs, atol=1e-6)
