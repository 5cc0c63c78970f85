"""Forward hooks: ``module.register_forward_hook(fn)`` runs ``fn(module, input, output)`` after
every forward of that module, however it is called (``module(x)``, ``module.forward(x)`` or
by a container), and a returned array replaces the output."""

import copy
import doctest
import pickle

import numpy as np
import pytest

from convscope.layers import (AuxiliaryClassifier, BasicBlock, BatchNorm2d, Concat, Conv2d, Flatten,
                              HookHandle, Inception, Linear, MaxPool2d, ReLU, Residual, Sequential, base)
from gradcheck import check_module_grads


def plain(rng):
    return Sequential(("conv", Conv2d(2, 3, 3, padding=1, rng=rng)), ("relu", ReLU()),
                      ("pool", MaxPool2d(2)), ("flat", Flatten()), ("fc", Linear(3 * 2 * 2, 4, rng=rng)))


def residual(rng):
    body = Sequential(("conv", Conv2d(2, 2, 3, padding=1, rng=rng)), ("relu", ReLU()))
    return Sequential(("block", Residual(body, post=ReLU())), ("flat", Flatten()))


def concat(rng):
    return Concat(("a", Sequential(("conv", Conv2d(2, 3, 1, rng=rng)), ("relu", ReLU()))),
                  ("b", Sequential(("pool", MaxPool2d(3, 1, 1)),)))


def inception(rng):
    return Sequential(("stem", Conv2d(2, 4, 1, rng=rng)),
                      ("mixed", Inception(4, 2, 2, 3, 1, 2, 2, batch_norm=True, rng=rng)))


def resnet_block(rng):
    return Sequential(("block", BasicBlock(2, 4, stride=2, rng=rng)), ("bn", BatchNorm2d(4)))


def auxiliary(rng):
    head = Sequential(("flat", Flatten()), ("fc", Linear(2 * 4 * 4, 3, rng=rng)))
    return Sequential(("conv", Conv2d(2, 2, 1, rng=rng)), ("aux", AuxiliaryClassifier(head)),
                      ("relu", ReLU()))


# (id, factory(rng) -> model, dotted name of the hooked layer, input shape)
NESTED = [
    ("sequential", plain, "relu", (2, 2, 4, 4)),
    ("sequential_last", plain, "fc", (2, 2, 4, 4)),
    ("residual_body", residual, "block.body.conv", (2, 2, 4, 4)),
    ("residual_shortcut", residual, "block.shortcut", (2, 2, 4, 4)),
    ("residual_post", residual, "block.post", (2, 2, 4, 4)),
    ("concat_branch", concat, "a.relu", (2, 2, 4, 4)),
    ("concat_itself", concat, "", (2, 2, 4, 4)),
    ("inception_branch", inception, "mixed.branch2.conv", (2, 2, 5, 5)),
    ("inception_pool", inception, "mixed.branch4.pool", (2, 2, 5, 5)),
    ("basic_block", resnet_block, "block.conv2", (2, 2, 6, 6)),
    ("basic_block_projection", resnet_block, "block.shortcut.conv", (2, 2, 6, 6)),
    ("auxiliary_head", auxiliary, "aux.head.fc", (2, 2, 4, 4)),
]


@pytest.mark.parametrize("make, name, shape", [row[1:] for row in NESTED], ids=[row[0] for row in NESTED])
def test_a_hook_sees_a_nested_layers_input_and_output(make, name, shape, rng):
    model = make(rng)
    layer = model.get_module(name)
    seen = []
    handle = layer.register_forward_hook(lambda m, x, y: seen.append((m, x, y)))
    model.forward(rng.standard_normal(shape).astype(np.float32))
    assert len(seen) == 1
    module, x, y = seen[0]
    assert module is layer
    handle.remove()
    np.testing.assert_array_equal(layer.forward(x), y)       # what the layer itself returns
    assert y.shape[1:] == layer.output_shape(x.shape[1:])


@pytest.mark.parametrize("make, name, shape", [row[1:] for row in NESTED], ids=[row[0] for row in NESTED])
def test_a_returned_array_replaces_the_output(make, name, shape, rng):
    model = make(rng)
    layer = model.get_module(name)
    x = rng.standard_normal(shape).astype(np.float32)
    before = model.forward(x)
    with layer.register_forward_hook(lambda m, i, y: np.zeros_like(y)):
        after = model.forward(x)
        side = model.get_module("aux").logits if name.startswith("aux.") else None
    if side is not None:                                  # the head's last layer gives the side logits
        assert not side.any()
    elif name == "":
        assert not after.any()
    else:
        assert not np.array_equal(after, before)
    np.testing.assert_array_equal(model.forward(x), before)     # removed: as before


def test_replacing_changes_what_the_next_layer_sees(rng):
    model = plain(rng)
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    with model.get_module("relu").register_forward_hook(lambda m, i, y: np.zeros_like(y)):
        out = model.forward(x)
    np.testing.assert_allclose(out, np.broadcast_to(model["fc"].params["bias"], out.shape))
    assert model.forward(x).std() > 0                     # removed again


def test_replacing_inside_residual_concat_and_inception(rng):
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    res = residual(rng)
    with res.get_module("block.body.relu").register_forward_hook(lambda m, i, y: np.zeros_like(y)):
        np.testing.assert_array_equal(res.forward(x), np.maximum(x, 0).reshape(2, -1))   # relu(0 + x)
    cat = concat(rng)
    with cat.get_module("a.relu").register_forward_hook(lambda m, i, y: np.zeros_like(y)):
        y = cat.forward(x)
    assert not y[:, :3].any()
    np.testing.assert_array_equal(y[:, 3:], MaxPool2d(3, 1, 1).forward(x))
    net = inception(rng)
    xi = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    with net.get_module("mixed.branch2.relu").register_forward_hook(lambda m, i, y: np.zeros_like(y)):
        y = net.forward(xi)
    assert not y[:, 2:5].any() and y[:, :2].any() and y[:, 5:].any()     # ch1x1 = 2, ch3x3 = 3


def test_every_way_of_calling_runs_the_hooks(rng):
    relu = ReLU()
    calls = []
    relu.register_forward_hook(lambda m, x, y: calls.append("hook"))
    x = rng.standard_normal((2, 3)).astype(np.float32)
    relu(x)
    relu.forward(x)
    Sequential(relu).forward(x)
    Sequential(Sequential(relu))(x)
    assert calls == ["hook"] * 4


def test_hooks_chain_in_registration_order(rng):
    relu = ReLU()
    order = []

    def first(m, x, y):
        order.append("first")
        return y + 1

    def second(m, x, y):
        order.append(("second", float(y.min())))
        return y * 2

    relu.register_forward_hook(first)
    relu.register_forward_hook(second)
    x = -np.ones((1, 3), dtype=np.float32)
    np.testing.assert_array_equal(relu.forward(x), np.full((1, 3), 2.0))       # (0 + 1) * 2
    assert order == ["first", ("second", 1.0)]


def test_removal_is_final_and_idempotent(rng):
    relu = ReLU()
    calls = []
    a = relu.register_forward_hook(lambda m, x, y: calls.append("a"))
    b = relu.register_forward_hook(lambda m, x, y: calls.append("b"))
    assert isinstance(a, HookHandle)
    x = np.ones((1, 2), dtype=np.float32)
    relu.forward(x)
    a.remove()
    a.remove()                                            # a second remove does nothing
    relu.forward(x)
    b.remove()
    relu.forward(x)
    assert calls == ["a", "b", "b"]
    with relu.register_forward_hook(lambda m, x, y: calls.append("c")):
        relu.forward(x)
    relu.forward(x)
    assert calls == ["a", "b", "b", "c"]


def test_a_hook_may_remove_itself_while_running():
    relu = ReLU()
    calls = []

    def once(m, x, y):
        calls.append(1)
        handle.remove()

    handle = relu.register_forward_hook(once)
    relu.register_forward_hook(lambda m, x, y: calls.append(2))
    relu.forward(np.ones((1, 1)))
    relu.forward(np.ones((1, 1)))
    assert calls == [1, 2, 2]


def test_hooks_are_per_instance(rng):
    a, b = ReLU(), ReLU()
    calls = []
    a.register_forward_hook(lambda m, x, y: calls.append(m))
    Sequential(a, b).forward(np.ones((1, 2)))
    assert calls == [a]


@pytest.mark.parametrize("make, shape", [(plain, (2, 2, 4, 4)), (residual, (2, 2, 4, 4)),
                                         (inception, (2, 2, 5, 5)), (resnet_block, (2, 2, 6, 6))])
def test_no_hook_leaves_outputs_and_gradients_identical(make, shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    fresh = make(np.random.default_rng(0))
    expected = fresh.forward(x)
    expected_dx = fresh.backward(np.ones_like(expected))
    model = make(np.random.default_rng(0))
    for _, module in model.named_modules():             # register on every module, then remove
        module.register_forward_hook(lambda m, i, y: None).remove()
    np.testing.assert_array_equal(model.forward(x), expected)
    np.testing.assert_array_equal(model.backward(np.ones_like(expected)), expected_dx)
    observing = [m.register_forward_hook(lambda m, i, y: None) for _, m in model.named_modules()]
    np.testing.assert_array_equal(model.forward(x), expected)      # hooks returning None change nothing
    for handle in observing:
        handle.remove()


def test_backward_stays_gradient_checked_with_a_hook(rng):
    model = plain(rng)
    seen = []
    model.get_module("relu").register_forward_hook(lambda m, x, y: seen.append(y.shape))
    check_module_grads(model, rng.standard_normal((2, 2, 4, 4)), rng)
    assert seen


def test_a_hook_that_raises_ends_the_forward_pass(rng):
    model = plain(rng)

    class Stop(Exception):
        pass

    def stop(m, x, y):
        raise Stop

    later = []
    model.get_module("relu").register_forward_hook(stop)
    model.get_module("fc").register_forward_hook(lambda m, x, y: later.append(1))
    with pytest.raises(Stop):
        model.forward(rng.standard_normal((2, 2, 4, 4)).astype(np.float32))
    assert later == []


def test_a_forward_that_calls_super_runs_the_hooks_once():
    class DoubleReLU(ReLU):
        def forward(self, x):
            return 2 * super().forward(x)

    layer = DoubleReLU()
    seen = []
    layer.register_forward_hook(lambda m, x, y: seen.append(y.tolist()))
    layer.forward(np.ones((1, 2)))
    assert seen == [[[2.0, 2.0]]]
    plain_relu = ReLU()                                    # the parent class is unaffected
    plain_relu.register_forward_hook(lambda m, x, y: seen.append("relu"))
    plain_relu.forward(np.ones((1, 1)))
    assert seen[-1] == "relu"


def test_hooks_survive_an_instance_patch_of_forward():
    """The pattern visualize/probe.py uses today: wrap ``module.forward``, then ``del`` it."""
    relu = ReLU()
    calls = []
    relu.register_forward_hook(lambda m, x, y: calls.append("hook"))
    original = relu.forward
    relu.forward = lambda x: (calls.append("patch"), original(x))[1]
    Sequential(relu).forward(np.ones((1, 1)))
    del relu.forward
    Sequential(relu).forward(np.ones((1, 1)))
    assert calls == ["patch", "hook", "hook"]


def test_hooks_are_not_copied_pickled_or_saved(rng):
    model = plain(rng)
    calls = []
    model.get_module("relu").register_forward_hook(lambda m, x, y: calls.append(1))  # a lambda: unpicklable
    names = set(model.state_dict())
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        np.testing.assert_array_equal(clone.forward(x), model.forward(x))
    assert len(calls) == 2                                 # only the original's two forwards
    assert set(model.state_dict()) == names
    clone.get_module("relu").register_forward_hook(lambda m, x, y: calls.append(2))
    model.forward(x)
    assert calls == [1, 1, 1]


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="hook must be callable, got 3"):
        ReLU().register_forward_hook(3)


def test_the_docstring_examples_run():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(base.Module, "Module", globs={}) if t.examples]
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.tries and runner.failures == 0
