"""The explorer's HTTP API, end to end: a server in a thread, urllib-level requests.

LeNet-5 (trained briefly) on MNIST for every endpoint; resnet20 and googlenet small variants
on random RGB 32x32 data; an untrained resnet18 at 3x224x224 from a checkpoint.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import convscope
from convscope.data import Dataset
from convscope.explore import Explorer
from convscope.explore.explorer import FIRST_PAGE_FLOATS
from convscope.explore.images import png_bytes
from convscope.summary import summarize
from convscope.visualize import backprop_from, feature_maps
from convscope.visualize.probe import evaluation_mode
from explore_client import Client, floats, serving


def predict(client, image: np.ndarray, query: str = "activations=1") -> dict:
    r = client.post(f"/api/predict?{query}", png_bytes(image))
    assert r.status == 200, r.body[:300]
    return r.json()


def layer_page(payload: dict, name: str) -> dict:
    return next(p for p in payload["activations" if "activations" in payload else "layers"] if p["name"] == name)


# -- the model, predictions and activations ------------------------------------------------

def test_model_lists_the_summary_rows(lenet, lenet_clf):
    info = lenet.get_json("/api/model")
    assert info["model"] == "lenet5" and info["input_shape"] == [1, 28, 28]
    assert info["class_names"] == [str(k) for k in range(10)]
    rows = summarize(lenet_clf.model, (1, 28, 28)).rows
    assert [layer["name"] for layer in info["layers"]] == [r.name for r in rows]
    for layer, row in zip(info["layers"], rows):
        assert {"name", "type", "output_shape", "params", "receptive_field", "macs", "jump"} <= set(layer)
        assert layer == {**row.to_dict(), "start": list(row.start)}
    assert info["dataset"]["name"] == "mnist" and info["run"] is True and info["digit_model"] is True


def test_predict_matches_the_classifier(lenet, lenet_clf, mnist):
    image = mnist.test_images[0]
    out = predict(lenet, image, "")
    assert len(out["probabilities"]) == 10 and abs(sum(out["probabilities"]) - 1) < 1e-6
    np.testing.assert_allclose(out["probabilities"], lenet_clf.predict(image[None])[0], rtol=1e-5, atol=1e-6)
    assert out["top"][0]["index"] == out["predicted"] == int(np.argmax(out["probabilities"]))
    assert out["image"].startswith("data:image/png;base64,")
    assert "activations" not in out


def test_activations_are_the_layer_outputs(lenet, lenet_clf, mnist):
    image = mnist.test_images[1]
    out = predict(lenet, image)
    for name in ("conv1", "pool2", "fc1"):
        page = layer_page(out, name)
        expected = feature_maps(lenet_clf, image[None], name)[0]
        got = floats(page["data"], (page["count"], *expected.shape[1:]))
        np.testing.assert_allclose(got, expected[page["offset"]:page["offset"] + page["count"]], rtol=1e-6)
        assert page["min"] == pytest.approx(float(expected.min())) and page["max"] == pytest.approx(float(expected.max()))
        assert page["fraction_zero"] == pytest.approx(float(np.mean(expected == 0)))
    relu = layer_page(out, "relu1")
    assert relu["fraction_zero"] > 0 and relu["min"] == 0.0
    # one page of a layer
    page = lenet.get_json(f"/api/activations?input={out['input']}&layer=conv2&offset=8&count=4")["layers"][0]
    expected = feature_maps(lenet_clf, image[None], "conv2")[0]
    np.testing.assert_allclose(floats(page["data"], (4, 10, 10)), expected[8:12], rtol=1e-6)


@pytest.mark.parametrize("layer, channel, i, j", [
    ("conv1", 0, 0, 0), ("conv1", 5, 27, 27), ("conv1", 3, 13, 2),      # padding 2 at the edges
    ("conv2", 0, 0, 0), ("conv2", 15, 9, 9), ("conv2", 7, 4, 5),
])
def test_conv_unit_sum_equals_the_activation(lenet, lenet_clf, mnist, layer, channel, i, j):
    image = mnist.test_images[2]
    out = predict(lenet, image, "")
    u = lenet.get_json(f"/api/unit?input={out['input']}&layer={layer}&channel={channel}&row={i}&col={j}")
    ex = u["explanation"]
    conv = lenet_clf.model.get_module(layer)
    window, kernel, products = (np.array(ex[k]) for k in ("window", "kernel", "products"))
    assert window.shape == kernel.shape == products.shape == (conv.in_channels // conv.groups, *conv.kernel_size)
    np.testing.assert_allclose(kernel, conv.params["weight"][channel])
    np.testing.assert_allclose(products, window * kernel)
    assert ex["sum"] == pytest.approx(products.sum() + ex["bias"])
    assert ex["matches"] and ex["sum"] == pytest.approx(u["value"], rel=1e-4, abs=1e-5)
    # the window is the layer's input (the previous layer's output), zero where it is padding
    previous = {"conv1": None, "conv2": "pool1"}[layer]
    x = lenet_clf.normalizer(image[None])[0] if previous is None else feature_maps(lenet_clf, image[None], previous)[0]
    (ph, pw), (sh, sw) = conv.padding, conv.stride
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    kh, kw = conv.kernel_size
    np.testing.assert_allclose(window, padded[:, i * sh:i * sh + kh, j * sw:j * sw + kw], rtol=1e-6)
    assert u["value"] == pytest.approx(float(feature_maps(lenet_clf, image[None], layer)[0, channel, i, j]), rel=1e-6)


def test_maxpool_unit_shows_its_argmax(lenet, lenet_clf, mnist):
    image = mnist.test_images[3]
    out = predict(lenet, image, "")
    relu = feature_maps(lenet_clf, image[None], "relu1")[0]
    for c, i, j in ((0, 0, 0), (2, 7, 6), (5, 13, 13)):
        ex = lenet.get_json(f"/api/unit?input={out['input']}&layer=pool1&channel={c}&row={i}&col={j}")["explanation"]
        assert ex["kind"] == "maxpool" and ex["matches"]
        r, s = ex["argmax"]
        assert ex["max"] == pytest.approx(float(relu[c, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max()))
        assert relu[c, r, s] == pytest.approx(ex["max"])


def test_receptive_field_box_holds_the_units_gradient(lenet, lenet_clf, mnist):
    """The box drawn on the input contains every pixel the unit depends on (its gradient's support)."""
    image = mnist.test_images[4]
    out = predict(lenet, image, "")
    x = lenet_clf.preprocess(image[None])
    checked = 0
    for layer, c, i, j in (("conv2", 3, 4, 5), ("conv2", 0, 0, 9), ("pool2", 1, 2, 3), ("relu2", 7, 5, 5),
                           ("conv1", 0, 0, 27), ("pool1", 2, 7, 7)):
        box = lenet.get_json(f"/api/unit?input={out['input']}&layer={layer}&channel={c}&row={i}&col={j}")[
            "receptive_field"]
        with evaluation_mode(lenet_clf.model):
            def seed(y):
                s = np.zeros_like(y)
                s[0, c, i, j] = 1
                return s
            dx, _ = backprop_from(lenet_clf.model, x, layer, seed)
        rows, cols = np.nonzero(np.abs(dx[0, 0]) > 0)
        if not rows.size:                   # a unit cut off by a ReLU here depends on nothing
            continue
        b = box["clipped"]
        assert b["top"] <= rows.min() and rows.max() <= b["bottom"], layer
        assert b["left"] <= cols.min() and cols.max() <= b["right"], layer
        checked += 1
    assert checked >= 3
    fc = lenet.get_json(f"/api/unit?input={out['input']}&layer=fc1&unit=3")
    assert fc["receptive_field"]["whole"] and fc["explanation"]["kind"] == "linear" and fc["explanation"]["matches"]


def test_drawing_is_prepared_as_mnist(lenet):
    canvas = np.zeros((280, 280), dtype=np.uint8)
    canvas[40:200, 150:175] = 255                      # a tall bar, off-centre
    r = lenet.post("/api/predict?source=drawing", png_bytes(canvas))
    assert r.status == 200
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["image"].split(",")[1]))))
    rows, cols = np.nonzero(seen)
    assert seen.shape == (28, 28) and rows.max() - rows.min() + 1 == 20
    ys, xs = np.indices(seen.shape)
    assert abs((ys * seen).sum() / seen.sum() - 13.5) <= 0.5 and abs((xs * seen).sum() / seen.sum() - 13.5) <= 0.5


# -- dataset, run, jobs ----------------------------------------------------------------------

def test_dataset_and_run(lenet, mnist):
    info = lenet.get_json("/api/dataset")
    assert info["splits"] == {"train": 60000, "test": 10000} and info["sample"] == 256
    r = lenet.get("/api/dataset?split=test&index=7")
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert int(r.headers["X-Convscope-Label"]) == int(mnist.test_labels[7])
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(r.body))), mnist.test_images[7, 0])
    for query, status in (("split=test&index=10000", 400), ("split=val&index=0", 400), ("split=test&index=x", 400)):
        bad = lenet.get(f"/api/dataset?{query}")
        assert bad.status == status and "error" in bad.json()
    run = lenet.get_json("/api/run")
    assert len(run["history"]) == 3 and np.array(run["confusion_matrix"]).shape == (10, 10)


@pytest.mark.parametrize("method", ["gradient", "guided_backprop", "smoothgrad", "integrated_gradients",
                                    "grad_cam", "occlusion"])
def test_saliency_jobs(lenet, mnist, method):
    out = predict(lenet, mnist.test_images[5], "")
    job = lenet.job({"kind": "saliency", "input": out["input"], "method": method, "target": None})
    assert job["state"] == "done" and job["progress"] == 1.0, job
    r = job["result"]
    m = floats(r["map"], r["shape"])
    assert r["shape"] == [28, 28] and r["target"] == out["predicted"]
    assert np.abs(m).max() == pytest.approx(1.0) or np.abs(m).max() == 0
    assert (m.min() >= -1) and (r["signed"] or m.min() >= 0)


def test_unit_jobs_and_their_cache(lenet, mnist):
    out = predict(lenet, mnist.test_images[6], "")
    deconv = lenet.job({"kind": "deconv", "input": out["input"], "layer": "conv2", "channel": 2, "row": 4, "col": 4})
    assert deconv["state"] == "done" and (deconv["result"]["empty"] or deconv["result"]["image"].startswith("data:"))
    spec = {"kind": "actmax", "layer": "fc3", "unit": 3, "steps": 32}
    first = lenet.job(spec)
    assert first["state"] == "done" and first["result"]["image"].startswith("data:image/png")
    again = lenet.post_json("/api/jobs", spec)
    assert again.status == 200 and again.json()["id"] == first["id"]      # cached per (layer, unit)
    ex = lenet.job({"kind": "exemplars", "layer": "conv2", "channel": 5, "k": 4})["result"]
    assert ex["sample"] == 256 and len(ex["images"]) == 4
    responses = [item["response"] for item in ex["images"]]
    assert responses == sorted(responses, reverse=True)
    assert all(item["box"]["size"] == [14, 14] for item in ex["images"])


@pytest.mark.parametrize("spec, status", [
    ({"kind": "nope"}, 400), ([1, 2], 400),
    ({"kind": "actmax", "layer": "conv9", "channel": 0}, 404),
    ({"kind": "actmax", "layer": "conv2", "channel": 16}, 400),
    ({"kind": "actmax", "layer": "conv2", "channel": "2"}, 400),
    ({"kind": "actmax", "layer": "fc1", "channel": 0}, 400),
    ({"kind": "saliency", "input": "deadbeef", "method": "gradient"}, 404),
    ({"kind": "deconv", "input": "deadbeef", "layer": "conv1", "channel": 0, "row": 0, "col": 0}, 404),
])
def test_bad_jobs(lenet, spec, status):
    r = lenet.post_json("/api/jobs", spec)
    assert r.status == status and r.json()["status"] == status and r.json()["error"]


def test_bad_saliency_target_and_unknown_job(lenet, mnist):
    out = predict(lenet, mnist.test_images[0], "")
    r = lenet.post_json("/api/jobs", {"kind": "saliency", "input": out["input"], "method": "gradient", "target": 10})
    assert r.status == 400 and "target" in r.json()["error"]
    assert lenet.get("/api/jobs/0123456789abcdef").status == 404
    assert lenet.request("DELETE", "/api/jobs/0123456789abcdef").status == 404


# -- bad requests ------------------------------------------------------------------------------

def test_bad_bodies(lenet):
    for body in (b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, b""):
        r = lenet.post("/api/predict", body)
        assert r.status == 400 and r.headers["Content-Type"] == "application/json", r.body
        assert "/tmp" not in r.json()["error"]
    huge = io.BytesIO()
    Image.new("L", (4100, 4100)).save(huge, format="PNG")          # small file, too many pixels
    r = lenet.post("/api/predict", huge.getvalue())
    assert r.status == 400 and "pixels" in r.json()["error"]


def test_too_large_is_refused_before_reading(lenet):
    started = time.perf_counter()
    reply = lenet.raw(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 1000000000\r\n\r\n" + b"x" * 1000)
    assert reply.startswith(b"HTTP/1.1 413") and b'"status":413' in reply
    assert time.perf_counter() - started < 5                           # no waiting for the body
    reply = lenet.raw(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411")
    reply = lenet.raw(b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411")


def test_a_stalled_client_does_not_block_others(lenet):
    import socket
    with socket.create_connection((lenet.host, lenet.port)) as stalled:       # sends half a body, then waits
        stalled.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
        started = time.perf_counter()
        assert lenet.get("/api/model").status == 200
        assert time.perf_counter() - started < 5


@pytest.mark.parametrize("path", [
    "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc%2fpasswd",
    "/static/%252e%252e%252fetc%252fpasswd", "/../../etc/passwd", "/static//etc/passwd",
    "/static/..\\..\\etc\\passwd", "/static/%00", "/etc/passwd", "/static/", "/static/../explorer.py",
])
def test_no_path_leaves_the_assets(lenet, path):
    r = lenet.get(path)
    assert r.status in (403, 404) and r.json()["status"] == r.status
    assert b"root:" not in r.body and b"import" not in r.body


def test_unknown_layer_unit_and_input(lenet, mnist):
    iid = predict(lenet, mnist.test_images[0], "")["input"]
    for query, status in ((f"input={iid}&layer=conv9&channel=0&row=0&col=0", 404),
                          (f"input={iid}&layer=conv1&channel=6&row=0&col=0", 400),
                          (f"input={iid}&layer=conv1&channel=0&row=28&col=0", 400),
                          (f"input={iid}&layer=conv1&channel=-1&row=0&col=0", 400),
                          (f"input={iid}&layer=conv1&channel=0", 400),
                          (f"input={iid}&layer=fc1&unit=120", 400),
                          (f"input={iid}&layer=fc1&channel=1", 400),
                          ("input=nope&layer=conv1&channel=0&row=0&col=0", 404)):
        r = lenet.get(f"/api/unit?{query}")
        assert r.status == status and r.json()["error"], (query, r.status)
    for query, status in ((f"input={iid}&layer=conv9", 404), (f"input={iid}&layer=conv1&offset=6", 400),
                          (f"input={iid}&layer=conv1&count=0", 400), ("input=nope", 404)):
        assert lenet.get(f"/api/activations?{query}").status == status


def test_other_refusals(lenet):
    assert lenet.get("/api/model", headers={"Host": "evil.example:80"}).status == 403
    assert lenet.request("PUT", "/api/model").status == 405
    assert lenet.request("DELETE", "/api/model").status == 405
    assert lenet.get("/api/nothing").status == 404
    assert b"\"status\":400" in lenet.raw(b"NONSENSE\r\n\r\n")          # an HTTP/0.9-style answer
    page = lenet.get("/")
    assert page.status == 200 and b'type="module"' in page.body
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert lenet.get("/static/app.js").headers["Content-Type"].startswith("text/javascript")


# -- concurrency and speed ---------------------------------------------------------------------

def test_concurrent_requests_get_the_sequential_answers(lenet, mnist):
    images = mnist.test_images[100:116]
    expected = [predict(lenet, img) for img in images]
    units = [lenet.get_json(f"/api/unit?input={e['input']}&layer=conv2&channel=1&row=3&col=3") for e in expected]

    def work(k):
        got = predict(lenet, images[k])
        unit = lenet.get_json(f"/api/unit?input={got['input']}&layer=conv2&channel=1&row=3&col=3")
        return got, unit

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(16)))
    for (got, unit), want, want_unit in zip(results, expected, units):
        assert got["probabilities"] == want["probabilities"]
        assert [p["data"] for p in got["activations"]] == [p["data"] for p in want["activations"]]
        assert unit["value"] == want_unit["value"] and unit["explanation"]["matches"]


def test_timing_of_predict_and_activations(lenet, mnist):
    bodies = [png_bytes(img) for img in mnist.test_images[:30]]
    times = []
    for body in bodies:
        started = time.perf_counter()
        r = lenet.post("/api/predict?activations=1", body)
        times.append(time.perf_counter() - started)
        assert r.status == 200
    print(f"\nLeNet-5 predict + all activations over HTTP: median {1000 * np.median(times):.1f} ms, "
          f"max {1000 * max(times):.1f} ms ({len(times)} requests)")


# -- other architectures -------------------------------------------------------------------------

def random_rgb(n_train=64, n_test=64, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset("random-rgb", rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8),
                   rng.integers(0, 10, n_train).astype(np.int64),
                   rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8),
                   rng.integers(0, 10, n_test).astype(np.int64), [f"c{k}" for k in range(10)])


@pytest.mark.parametrize("name", ["resnet20", "googlenet"])
def test_residual_and_inception_models(name):
    clf = convscope.Classifier.untrained(name, num_classes=10, input_shape=(3, 32, 32), rng=np.random.default_rng(0))
    data = random_rgb()
    with serving(Explorer(clf, data, sample=32)) as client:
        info = client.get_json("/api/model")
        assert [layer["name"] for layer in info["layers"]] == [r.name for r in summarize(clf.model, (3, 32, 32)).rows
                                                               if not r.name.startswith(("aux1.", "aux2."))]
        out = predict(client, data.test_images[0])
        assert all(p["ran"] for p in out["activations"])
        np.testing.assert_allclose(out["probabilities"], clf.predict(data.test_images[:1])[0], rtol=1e-4, atol=1e-6)
        convs = [layer for layer in info["layers"] if layer["type"] == "Conv2d"]
        for layer in (convs[0], convs[len(convs) // 2], convs[-1]):
            c, h, w = layer["output_shape"]
            u = client.get_json(f"/api/unit?input={out['input']}&layer={layer['name']}&channel={c - 1}"
                                f"&row={h // 2}&col={w - 1}")
            assert u["explanation"]["matches"], (layer["name"], u["explanation"]["sum"], u["value"])
        cam = client.job({"kind": "saliency", "input": out["input"], "method": "grad_cam", "target": 3})
        assert cam["state"] == "done" and cam["result"]["layer"] == info["grad_cam_default"]
        ex = client.job({"kind": "exemplars", "layer": convs[-1]["name"], "channel": 0, "k": 3})
        assert ex["state"] == "done" and len(ex["result"]["images"]) == 3


def test_resnet18_at_224_from_a_checkpoint(tmp_path):
    untrained = convscope.Classifier.untrained("resnet18", num_classes=10, input_shape=(3, 224, 224),
                                               rng=np.random.default_rng(0))
    clf = convscope.load(untrained.save(tmp_path / "resnet18.npz"))
    with serving(Explorer(clf)) as client:
        info = client.get_json("/api/model")
        assert info["input_shape"] == [3, 224, 224] and info["dataset"] is None and info["run"] is False
        assert info["total_macs"] == summarize(clf.model, (3, 224, 224)).total_macs
        photo = io.BytesIO()
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(photo, "JPEG")
        r = client.post("/api/predict?activations=1", photo.getvalue(), "image/jpeg")
        assert r.status == 200
        out = r.json()
        assert len(out["probabilities"]) == 10
        for page in out["activations"]:
            spatial = int(np.prod(page["shape"][1:])) if len(page["shape"]) == 3 else 1
            assert page["count"] * spatial <= max(FIRST_PAGE_FLOATS, spatial)
        first = layer_page(out, "conv1")
        assert first["shape"] == [64, 112, 112] and first["count"] == 5 and first["units"] == 64
        conv = next(layer for layer in info["layers"] if layer["name"] == "layer4.1.conv2")
        u = client.get_json(f"/api/unit?input={out['input']}&layer={conv['name']}&channel=511&row=6&col=0")
        assert u["explanation"]["matches"] and np.array(u["explanation"]["window"]).shape == (512, 3, 3)
        assert u["receptive_field"]["size"][0] > 224
        job = client.job({"kind": "saliency", "input": out["input"], "method": "gradient"})
        assert job["state"] == "done" and job["result"]["shape"] == [224, 224]
        assert client.get("/api/dataset?split=test&index=0").status == 404
        assert client.get("/api/run").status == 404


# -- the command line ---------------------------------------------------------------------------

def test_cli_serves_and_stops_cleanly(lenet_run):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "convscope", "explore", "--checkpoint", str(lenet_run),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split("http://", 1)[1].split()[0]
        host, port = url.rstrip("/").split(":")
        info = Client(f"http://{host}:{port}/").get_json("/api/model")
        assert info["model"] == "lenet5" and info["dataset"]["name"] == "mnist" and info["run"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err, err


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from convscope.cli.main import main
    assert main(["explore", "--checkpoint", str(tmp_path / "missing.npz")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["explore", "--checkpoint", "x", "--port", "70000"]) == 2
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert main(["explore", "--checkpoint", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == 'convscope: error: convscope explore needs Pillow: pip install "convscope[pictures]"'


def test_a_graph_model():
    """A DAG of layers (what ONNX import builds): the page's answers without summary's
    receptive fields, which it does not compute for graphs."""
    graph = pytest.importorskip("convscope.layers.graph")
    from convscope.data import Normalizer
    from convscope.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
    from convscope.layers.elementwise import Add
    rng = np.random.default_rng(0)
    g = graph.Graph([("conv", Conv2d(1, 4, 3, padding=1, rng=rng), ["input"]), ("relu", ReLU(), ["conv"]),
                     ("add", Add(), ["relu", "conv"]), ("pool", MaxPool2d(2), ["add"]), ("flat", Flatten(), ["pool"]),
                     ("fc", Linear(4 * 14 * 14, 10, rng=rng), ["flat"])], output="fc")
    clf = convscope.Classifier(g, Normalizer([0.5], [0.5]), [str(k) for k in range(10)], (1, 28, 28))
    with serving(Explorer(clf)) as client:
        info = client.get_json("/api/model")
        assert [layer["name"] for layer in info["layers"]] == ["conv", "relu", "add", "pool", "flat", "fc"]
        out = predict(client, rng.integers(0, 256, (28, 28), dtype=np.uint8))
        assert all(p["ran"] for p in out["activations"])
        conv = client.get_json(f"/api/unit?input={out['input']}&layer=conv&channel=1&row=0&col=5")
        assert conv["explanation"]["matches"]
        add = client.get_json(f"/api/unit?input={out['input']}&layer=add&channel=1&row=3&col=3")["explanation"]
        assert add["kind"] == "elementwise" and sum(add["inputs"]) == pytest.approx(add["value"])
        for spec in ({"kind": "saliency", "input": out["input"], "method": "grad_cam"},
                     {"kind": "deconv", "input": out["input"], "layer": "add", "channel": 1, "row": 3, "col": 3}):
            assert client.job(spec)["state"] == "done"
