"""Optimizers: hand-computed updates, PyTorch's rules (when installed), state round trip."""

import numpy as np
import pytest

from convscope.layers import Linear
from convscope.optim import SGD, Adam, AdamW, make_optimizer


def one_param_model(value, grad):
    """A Linear(1, 1) whose weight is ``value`` and whose gradient is ``grad``."""
    m = Linear(1, 1, bias=False, dtype=np.float64)
    m.params["weight"] = np.array([[value]], dtype=np.float64)
    m.grads["weight"] = np.array([[grad]], dtype=np.float64)
    return m


def run(opt_cls, steps, grads, **kw):
    m = one_param_model(1.0, grads[0])
    opt = opt_cls(m, **kw)
    out = []
    for g in grads[:steps]:
        m.grads["weight"] = np.array([[g]])
        opt.step()
        out.append(float(m.params["weight"][0, 0]))
    return out


def test_plain_sgd_is_p_minus_lr_g():
    assert run(SGD, 2, [0.5, -1.0], lr=0.1) == pytest.approx([0.95, 1.05])


def test_momentum_and_weight_decay_by_hand():
    # g' = g + wd*p; v = mu*v + g'; p -= lr*v
    p, v, out = 1.0, 0.0, []
    for g in (0.5, 0.25, -0.5):
        g2 = g + 0.1 * p
        v = 0.9 * v + g2
        p -= 0.1 * v
        out.append(p)
    assert run(SGD, 3, [0.5, 0.25, -0.5], lr=0.1, momentum=0.9, weight_decay=0.1) == pytest.approx(out)


def test_nesterov_by_hand():
    p, v, out = 1.0, 0.0, []
    for g in (0.5, 0.25, -0.5):
        v = 0.9 * v + g
        p -= 0.1 * (g + 0.9 * v)
        out.append(p)
    assert run(SGD, 3, [0.5, 0.25, -0.5], lr=0.1, momentum=0.9, nesterov=True) == pytest.approx(out)


def test_adam_first_step_moves_by_lr():
    # With bias correction the first Adam step is lr * g / (|g| + eps) ~ lr * sign(g).
    assert run(Adam, 1, [3.0], lr=0.01) == pytest.approx([0.99], abs=1e-6)


def test_adamw_decays_weights_without_gradient():
    assert run(AdamW, 1, [0.0], lr=0.1, weight_decay=0.5) == pytest.approx([0.95])


def test_replaced_parameter_array_is_updated():
    m = one_param_model(1.0, 1.0)
    opt = SGD(m, lr=0.5)
    m.params["weight"] = np.array([[4.0]])
    opt.step()
    assert m.params["weight"][0, 0] == pytest.approx(3.5)


def test_state_round_trip_continues_identically():
    grads = [0.3, -0.2, 0.7, 0.1]
    full = run(Adam, 4, grads, lr=0.05)
    m = one_param_model(1.0, 0.0)
    opt = Adam(m, lr=0.05)
    for g in grads[:2]:
        m.grads["weight"] = np.array([[g]])
        opt.step()
    state = opt.state_dict()
    opt2 = Adam(m, lr=0.05)
    opt2.load_state_dict(state)
    for g in grads[2:]:
        m.grads["weight"] = np.array([[g]])
        opt2.step()
    assert m.params["weight"][0, 0] == pytest.approx(full[-1])


@pytest.mark.parametrize("kw, match", [
    (dict(lr=0), "learning rate"), (dict(lr=0.1, momentum=1.5), "momentum"),
    (dict(lr=0.1, nesterov=True), "Nesterov"), (dict(lr=0.1, weight_decay=-1), "weight_decay"),
])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        SGD(one_param_model(1.0, 1.0), **kw)


def test_unknown_optimizer_lists_choices():
    with pytest.raises(ValueError, match="sgd"):
        make_optimizer("rmsprop", one_param_model(1.0, 1.0), 0.1)


@pytest.mark.parametrize("name, kw", [
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("adam", dict(lr=0.01, weight_decay=1e-2)),
    ("adamw", dict(lr=0.01, weight_decay=1e-1)),
])
def test_matches_pytorch(name, kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    m = Linear(4, 3, dtype=np.float64, rng=rng)
    w0, b0 = m.params["weight"].copy(), m.params["bias"].copy()
    ours = {"sgd": SGD, "adam": Adam, "adamw": AdamW}[name](m, **kw)
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]([tw, tb], **kw)
    for _ in range(5):
        gw, gb = rng.standard_normal(w0.shape), rng.standard_normal(b0.shape)
        m.grads = {"weight": gw, "bias": gb}
        ours.step()
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        theirs.step()
    np.testing.assert_allclose(m.params["weight"], tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.params["bias"], tb.detach().numpy(), rtol=1e-10, atol=1e-12)
