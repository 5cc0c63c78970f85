"""An identical PyTorch model built from any convscope zoo model, with its weights copied.

    from torch_twin import twin
    net = twin(model)            # torch.nn.Module, same layers, same state_dict values

Walks the convscope module tree (Sequential, Residual and its ResNet blocks, Concat and the
Inception blocks, AuxiliaryClassifier) and maps every leaf layer to its torch counterpart with
the same hyper-parameters. Used by the benchmarks only (torch is a test/benchmark oracle, never
a dependency of convscope). ``check(model, net, x)`` compares the logits of both.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from convscope import layers as L

__all__ = ["twin", "check", "aux_heads"]


class _Residual(nn.Module):
    def __init__(self, body, shortcut, post):
        super().__init__()
        self.body, self.shortcut, self.post = body, shortcut, post

    def forward(self, x):
        y = self.body(x) + self.shortcut(x)
        return self.post(y) if self.post is not None else y


class _Concat(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], dim=1)


class _ZeroPad(nn.Module):
    def __init__(self, out_channels, stride):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        s = self.stride
        y = x[:, :, ::s, ::s]
        return nn.functional.pad(y, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


class _Aux(nn.Module):
    """Identity on the main path; in training keeps the head's logits in ``logits``."""

    def __init__(self, head, weight):
        super().__init__()
        self.head, self.weight, self.logits = head, weight, None

    def forward(self, x):
        self.logits = self.head(x) if self.training else None
        return x


def _param(tensor, array):
    with torch.no_grad():
        tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)))


def _leaf(m):
    p = m.params
    if isinstance(m, L.Conv2d):
        t = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                      groups=m.groups, bias="bias" in p)
        _param(t.weight, p["weight"])
        if "bias" in p:
            _param(t.bias, p["bias"])
        return t
    if isinstance(m, L.Linear):
        w = p["weight"]
        t = nn.Linear(w.shape[1], w.shape[0], bias="bias" in p)
        _param(t.weight, w)
        if "bias" in p:
            _param(t.bias, p["bias"])
        return t
    if isinstance(m, (L.BatchNorm2d, L.BatchNorm1d)):
        kind = nn.BatchNorm2d if isinstance(m, L.BatchNorm2d) else nn.BatchNorm1d
        t = kind(m.num_features, eps=m.eps, momentum=m.momentum)
        _param(t.weight, p["weight"])
        _param(t.bias, p["bias"])
        _param(t.running_mean, m.buffers["running_mean"])
        _param(t.running_var, m.buffers["running_var"])
        return t
    if isinstance(m, L.MaxPool2d):
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
    if isinstance(m, L.AvgPool2d):
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode,
                            count_include_pad=m.count_include_pad)
    if isinstance(m, L.GlobalAvgPool2d):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())      # (N, C, H, W) -> (N, C)
    if isinstance(m, L.LocalResponseNorm):
        return nn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k)
    simple = {L.ReLU: nn.ReLU, L.Tanh: nn.Tanh, L.Sigmoid: nn.Sigmoid, L.Flatten: nn.Flatten,
              L.Identity: nn.Identity}
    for kind, make in simple.items():
        if type(m) is kind:
            return make()
    if isinstance(m, L.LeakyReLU):
        return nn.LeakyReLU(m.negative_slope)
    if isinstance(m, L.Dropout):
        return nn.Dropout(m.p)
    if isinstance(m, L.ZeroPadShortcut):
        return _ZeroPad(m.out_channels, m.stride)
    raise TypeError(f"torch_twin: no torch counterpart for {type(m).__name__}")


def twin(model) -> nn.Module:
    """The torch twin of a convscope module (training/eval mode copied)."""
    if isinstance(model, L.Residual):
        body = twin(model.body)
        net = _Residual(body, twin(model.shortcut), twin(model.post) if model.post is not None else None)
    elif isinstance(model, L.Concat):
        net = _Concat([twin(b) for _, b in model.children()])
    elif isinstance(model, L.AuxiliaryClassifier):
        net = _Aux(twin(model.head), model.weight)
    elif isinstance(model, L.Sequential):
        net = nn.Sequential(*[twin(m) for _, m in model.children()])
    else:
        net = _leaf(model)
    net.train(model.training)
    return net


def aux_heads(net: nn.Module) -> list[_Aux]:
    return [m for m in net.modules() if isinstance(m, _Aux)]


def check(model, net, x: np.ndarray) -> float:
    """Max |logit difference| / max |logit| between the two, in evaluation mode."""
    was = model.training
    model.eval()
    net.eval()
    ours = model.forward(x)
    with torch.no_grad():
        theirs = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    model.train(was)
    net.train(was)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))
