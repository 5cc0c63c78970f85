"""The explorer's pieces without HTTP: the unit arithmetic against a loop written from the
notes' sum, MNIST's preprocessing of drawings, the job queue, and the packaged assets."""

from __future__ import annotations

import fnmatch
import re
import sys
import threading
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from convscope.explore import conv_sum, pool_window, static_files
from convscope.explore.images import mnist_style
from convscope.explore.jobs import JobQueue
from convscope.layers import AvgPool2d, Conv2d, MaxPool2d

ROOT = Path(__file__).resolve().parents[2]


def conv_loop(x, weight, bias, stride, padding, groups, c, i, j):
    """L[c, i, j] = sum_{k, a, b} I_k[i*s + a - p, j*s + b - p] G_{c,k}[a, b] + bias_c, by loops."""
    f, cg, kh, kw = weight.shape
    g = c // (f // groups)
    total = float(bias[c])
    for k in range(cg):
        for a in range(kh):
            for b in range(kw):
                r, s = i * stride[0] + a - padding[0], j * stride[1] + b - padding[1]
                if 0 <= r < x.shape[1] and 0 <= s < x.shape[2]:
                    total += float(x[g * cg + k, r, s]) * float(weight[c, k, a, b])
    return total


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, groups, size", [
    (1, 4, 5, 1, 2, 1, (9, 9)), (4, 6, 3, 2, 1, 2, (7, 8)), (6, 6, (3, 1), (1, 2), (1, 0), 3, (6, 7)),
    (3, 2, 1, 1, 0, 1, (4, 4)), (2, 4, 4, 3, 2, 1, (5, 6)),
])
def test_conv_sum_is_the_notes_sum(cin, cout, kernel, stride, padding, groups, size):
    rng = np.random.default_rng(0)
    conv = Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, rng=rng)
    conv.params["bias"] = rng.normal(size=cout).astype(np.float32)
    x = rng.normal(size=(1, cin, *size)).astype(np.float32)
    y = conv.forward(x)[0]
    for c in range(cout):
        for i in range(y.shape[1]):
            for j in range(y.shape[2]):
                ex = conv_sum(conv, x[0], float(y[c, i, j]), c, i, j)
                reference = conv_loop(x[0], conv.params["weight"], conv.params["bias"], conv.stride, conv.padding,
                                      groups, c, i, j)
                assert ex["matches"] and ex["sum"] == pytest.approx(reference, rel=1e-9, abs=1e-9)
                assert np.array(ex["window"]).shape == (cin // groups, *conv.kernel_size)


def test_conv_sum_notices_a_wrong_value():
    conv = Conv2d(1, 1, 3, rng=np.random.default_rng(1))
    x = np.ones((1, 5, 5), dtype=np.float32)
    right = float(conv.forward(x[None])[0, 0, 1, 1])
    assert conv_sum(conv, x, right, 0, 1, 1)["matches"]
    assert not conv_sum(conv, x, right + 0.01, 0, 1, 1)["matches"]


@pytest.mark.parametrize("pool", [MaxPool2d(3, 2, padding=1), MaxPool2d(3, 2, ceil_mode=True), MaxPool2d(2),
                                  AvgPool2d(3, 2, padding=1), AvgPool2d(3, 2, padding=1, count_include_pad=False),
                                  AvgPool2d(3, 2, ceil_mode=True)])
def test_pool_window_recomputes_the_value(pool):
    x = np.random.default_rng(2).normal(size=(1, 2, 7, 7)).astype(np.float32)
    y = pool.forward(x)[0]
    for c in range(2):
        for i in range(y.shape[1]):
            for j in range(y.shape[2]):
                ex = pool_window(pool, x[0], float(y[c, i, j]), c, i, j)
                assert ex["matches"], (c, i, j, ex)
                if isinstance(pool, MaxPool2d):
                    assert x[0, c, ex["argmax"][0], ex["argmax"][1]] == y[c, i, j]


def test_mnist_style_box_and_centre_of_mass():
    drawing = np.zeros((300, 200), dtype=np.uint8)
    drawing[10:50, 20:180] = 200                    # a wide bar near the top left
    out = mnist_style(drawing)
    rows, cols = np.nonzero(out)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert cols.max() - cols.min() + 1 == 20 and rows.max() - rows.min() + 1 == 5     # 160x40 -> 20x5
    ys, xs = np.indices(out.shape)
    assert abs((ys * out).sum() / out.sum() - 13.5) <= 0.5
    assert abs((xs * out).sum() / out.sum() - 13.5) <= 0.5
    assert not mnist_style(np.zeros((50, 50), dtype=np.uint8)).any()
    dot = np.zeros((50, 50), dtype=np.uint8)
    dot[3, 47] = 255
    assert mnist_style(dot).sum() > 0
    with pytest.raises(TypeError):
        mnist_style(np.zeros((5, 5)))


def test_job_queue_dedupes_cancels_and_bounds():
    q = JobQueue(max_pending=2)
    gate = threading.Event()
    try:
        blocker = q.submit("x", lambda job: (gate.wait(5), {"ok": 1})[1], 1, key="a")
        assert q.submit("x", lambda job: {}, 1, key="a") is blocker
        for _ in range(500):
            if blocker.state == "running":
                break
            threading.Event().wait(0.01)
        waiting = [q.submit("x", lambda job, n=n: {"n": n}, 1, key=f"w{n}") for n in range(2)]
        from convscope.explore.jobs import QueueFull
        with pytest.raises(QueueFull):
            q.submit("x", lambda job: {}, 1, key="w9")
        q.cancel(waiting[0].id)
        assert waiting[0].state == "cancelled"
        gate.set()
        assert waiting[1].done.wait(5) and waiting[1].result == {"n": 1}
        assert blocker.to_dict()["result"] == {"ok": 1} and blocker.progress == 1.0
        failing = q.submit("x", lambda job: 1 / 0, 1)
        assert failing.done.wait(5) and failing.state == "error" and "ZeroDivisionError" in failing.error
    finally:
        q.close()


def test_assets_ship_in_the_package():
    files = static_files()
    assert {"index.html", "style.css", "app.js", "icon.svg"} <= set(files)
    root = resources.files("convscope.explore") / "static"
    assert (root / "index.html").is_file()
    # every module app.js imports (and they import) is there: nothing from a CDN
    for name, body in files.items():
        text = body.decode()
        assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text, name
        for target in re.findall(r'from\s+"\./([^"]+)"', text):
            assert target in files, (name, target)
    # pyproject's package-data patterns cover every asset, so a non-editable install has them
    if sys.version_info >= (3, 11):
        import tomllib
        patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["convscope"]
        for name in files:
            assert any(fnmatch.fnmatch(f"explore/static/{name}", p) for p in patterns), name
