"""The explorer's state and every answer the web API gives, without any HTTP.

:class:`Explorer` holds one :class:`~convscope.Classifier`, the dataset it is examined on
(optional) and the run beside its checkpoint (optional). Request threads share the one
network under ``model_lock``: layers cache their inputs for backward, so two forward passes
at once would mix their caches, and a lock is the simplest correct rule (measured on
LeNet-5: a predict with every layer's activations takes about 2 ms under the lock, so
requests queue for no noticeable time). Background jobs run on the worker's own deep copy
(:class:`~convscope.explore.techniques.WorkerModel`) and never take the lock once it is made.

Inputs are remembered by id (a hash of the pixels the network saw): ``POST /api/predict``
returns the id, and every later question about that input names it. Activations of recent
inputs are kept within ``cache_bytes``; an older input's are recomputed on demand.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..summary import LayerRow, summarize
from ..visualize.core import leaf_layer_names
from . import techniques
from .errors import ApiError, request_int
from .images import data_url, decode_body, fit_to_input, floats, mnist_style
from .job_requests import JobRequests
from .jobs import JobQueue
from .units import explain_unit, receptive_box

__all__ = ["Explorer", "layer_table"]

MAX_BODY = 8 * 2 ** 20                 # bytes of one uploaded image
MAX_PIXELS = 4096 * 4096               # pixels of one uploaded image, checked from its header
MAX_METRICS = 32 * 2 ** 20             # bytes of a run's metrics.json
FIRST_PAGE_FLOATS = 65536              # activations per layer in the all-layers answer
MAX_PAGE_FLOATS = 2 ** 18              # activations per layer page (1 MiB of float32)
FIRST_PAGE_CHANNELS = 16               # ... and channels
KEEP_INPUTS = 256
DIGIT_SHAPE = (1, 28, 28)              # models that get MNIST's preprocessing of drawings


def layer_table(model, input_shape) -> list[LayerRow]:
    """The leaf layers that run in evaluation, as :func:`~convscope.summary.summarize` rows.

    For a model whose containers ``summarize`` does not know, the rows come from one forward
    pass instead (shapes and parameters; receptive field, jump, start None; MACs 0).
    """
    names = leaf_layer_names(model)
    try:
        keep = set(names)
        return [r for r in summarize(model, input_shape).rows if r.name in keep]
    except ValueError:
        pass
    shapes: dict[str, tuple] = {}

    def recorder(name):
        def hook(module, x, y):             # returns None: the output stays as it is
            shapes.setdefault(name, tuple(y.shape[1:]))
        return hook

    with ExitStack() as stack:
        for name in names:
            stack.enter_context(model.get_module(name).register_forward_hook(recorder(name)))
        model.forward(np.zeros((1, *input_shape), dtype=np.float32))
    return [LayerRow(n, type(model.get_module(n)).__name__, shapes[n],
                     int(sum(p.size for p in model.get_module(n).params.values())), None, None, None, 0)
            for n in names if n in shapes]


def _pair(pair):
    return None if pair is None else (pair[0] if pair[0] == pair[1] else list(pair))


def _layer_json(row: LayerRow) -> dict:
    return {"name": row.name, "type": row.type, "output_shape": list(row.output_shape), "params": row.params,
            "receptive_field": _pair(row.receptive_field), "jump": _pair(row.jump),
            "start": None if row.start is None else list(row.start), "macs": row.macs}


class Explorer(JobRequests):
    """Everything the explorer's API answers; see the module docstring and docs/explore.md."""

    def __init__(self, clf, dataset=None, *, run_dir=None, sample: int | None = None,
                 cache_bytes: int = 256 * 2 ** 20, max_pending: int = 16) -> None:
        if dataset is not None and dataset.input_shape != clf.input_shape:
            raise ValueError(f"the dataset's images are {dataset.input_shape} but the model takes {clf.input_shape}")
        self.clf, self.dataset = clf, dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.model_lock = threading.Lock()
        self._state = threading.Lock()
        self.rows = layer_table(clf.model, clf.input_shape)
        self.by_name = {r.name: r for r in self.rows}
        self.modules = dict(clf.model.named_modules())
        self.digit_model = tuple(clf.input_shape) == DIGIT_SHAPE
        self.cache_bytes = cache_bytes
        self.workdir = tempfile.mkdtemp(prefix="convscope-explore-")
        self._inputs: OrderedDict[str, np.ndarray] = OrderedDict()
        self._acts: OrderedDict[str, tuple] = OrderedDict()
        self._acts_bytes = 0
        self.jobs = JobQueue(max_pending=max_pending)
        self._worker = None
        small = clf.input_shape[1] * clf.input_shape[2] <= 64 * 64
        self.sample_size = sample or (512 if small else 64)
        self._sample = None

    def close(self) -> None:
        """Stop the job worker and remove the temporary directory."""
        self.jobs.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the model -------------------------------------------------------------------------
    def model_info(self) -> dict:
        convs = [r.name for r in self.rows if r.type == "Conv2d"]
        spatial = [r.name for r in self.rows if len(r.output_shape) == 3]
        return {"model": self.clf.name, "input_shape": list(self.clf.input_shape),
                "class_names": list(self.clf.class_names), "num_classes": self.clf.num_classes,
                "total_params": int(self.clf.model.num_parameters()), "total_macs": int(sum(r.macs for r in self.rows)),
                "layers": [_layer_json(r) for r in self.rows], "digit_model": self.digit_model,
                "saliency": list(techniques.SALIENCY), "grad_cam_layers": spatial,
                "grad_cam_default": convs[-1] if convs else (spatial[-1] if spatial else None),
                "dataset": self.dataset_info() if self.dataset is not None else None,
                "run": self._metrics_path() is not None,
                "limits": {"max_body": MAX_BODY, "max_pixels": MAX_PIXELS}}

    def row(self, name) -> LayerRow:
        if not isinstance(name, str) or name not in self.by_name:
            shown = name if isinstance(name, str) else repr(name)
            raise ApiError(404, f"no layer named {shown[:80]!r}; GET /api/model lists the layers")
        return self.by_name[name]

    def unit_index(self, row: LayerRow, values: dict, text: bool = False) -> tuple[int, ...]:
        """(channel, row, col) for a layer with (C, H, W) output, (unit,) for (F,) output;
        ``text``: the values are query strings."""
        shape = row.output_shape
        if len(shape) == 3:
            if values.get("channel") is None:
                raise ApiError(400, f"layer {row.name!r} has (C, H, W) = {tuple(shape)} outputs: give channel "
                                    f"(and row, col for one unit)")
            c = request_int(values["channel"], "channel", 0, shape[0] - 1, text)
            if values.get("row") is None or values.get("col") is None:
                return (c,)
            return (c, request_int(values["row"], "row", 0, shape[1] - 1, text),
                    request_int(values["col"], "col", 0, shape[2] - 1, text))
        if len(shape) == 1:
            if values.get("unit") is None:
                raise ApiError(400, f"layer {row.name!r} has {shape[0]} features: give unit (0..{shape[0] - 1})")
            return (request_int(values["unit"], "unit", 0, shape[0] - 1, text),)
        raise ApiError(400, f"layer {row.name!r} has outputs of shape {tuple(shape)}, which have no units to show")

    # -- inputs ----------------------------------------------------------------------------
    def read_input(self, body: bytes, source: str = "image", invert: bool = False) -> np.ndarray:
        """The pixels (C, H, W) the network sees for an uploaded PNG / JPEG ``body``.

        ``source`` "drawing": a light-on-dark canvas; digit models (1x28x28) get MNIST's
        preprocessing (:func:`~convscope.explore.images.mnist_style`), others a stretch to the
        input size. "image": a photo or dataset image, fitted as the classifier fits a file.
        ``invert`` turns dark ink on light paper into MNIST's light on dark.
        """
        if source not in ("image", "drawing"):
            raise ApiError(400, f"source must be 'image' or 'drawing', got {source[:40]!r}")
        c = self.clf.input_shape[0]
        pixels = decode_body(body, 1 if source == "drawing" else c, self.workdir, MAX_PIXELS)
        if invert:
            pixels = 255 - pixels
        if source == "drawing" and self.digit_model:
            return mnist_style(pixels[0])[None]
        if pixels.shape[0] != c:
            pixels = np.repeat(pixels, c, axis=0)
        return fit_to_input(self.clf, pixels)

    def remember(self, pixels: np.ndarray) -> str:
        key = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()[:16]
        with self._state:
            self._inputs[key] = pixels
            self._inputs.move_to_end(key)
            while len(self._inputs) > KEEP_INPUTS:
                self._inputs.popitem(last=False)
        return key

    def pixels(self, input_id) -> np.ndarray:
        with self._state:
            pixels = self._inputs.get(input_id) if isinstance(input_id, str) else None
        if pixels is None:
            raise ApiError(404, f"unknown input {str(input_id)[:40]!r}: POST the image to /api/predict (again)")
        return pixels

    # -- predictions and activations ---------------------------------------------------------
    def _record(self, input_id: str) -> tuple[dict, np.ndarray]:
        """(layer name -> output (one image), logits (K,)) from one forward pass, cached."""
        with self._state:
            hit = self._acts.get(input_id)
            if hit is not None:
                self._acts.move_to_end(input_id)
                return hit[0], hit[1]
        x = self.clf.normalizer(self.pixels(input_id)[None])
        outputs: dict[str, np.ndarray] = {}

        def recorder(name):
            def hook(module, inputs, y):
                outputs.setdefault(name, np.array(y[0], dtype=np.float32))
            return hook

        with self.model_lock, ExitStack() as stack:
            for r in self.rows:
                stack.enter_context(self.modules[r.name].register_forward_hook(recorder(r.name)))
            logits = np.array(self.clf.model.forward(x)[0], dtype=np.float64)
        size = sum(a.nbytes for a in outputs.values())
        with self._state:
            self._acts[input_id] = (outputs, logits, size)
            self._acts_bytes += size
            while self._acts_bytes > self.cache_bytes and len(self._acts) > 1:
                self._acts_bytes -= self._acts.popitem(last=False)[1][2]
        return outputs, logits

    def predict(self, input_id: str, k: int = 5) -> dict:
        """Class probabilities of a remembered input, its ``top`` k, and the image it is."""
        _, logits = self._record(input_id)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")[:min(k, len(p))]
        return {"input": input_id, "probabilities": [float(v) for v in p], "predicted": int(order[0]),
                "top": [{"index": int(j), "class": self.clf.class_names[j], "probability": float(p[j])} for j in order],
                "image": data_url(self.pixels(input_id))}

    def predicted(self, input_id: str) -> int:
        return int(np.argmax(self._record(input_id)[1]))

    def activations(self, input_id: str, layer: str | None = None, offset=None, count=None) -> dict:
        """Every layer's activations for the input (each layer's first page), or one page of one
        layer: ``data`` is base64 float32 of channels ``offset`` .. ``offset + count - 1``
        ((count, H, W)) or of features (count,); ``min``/``max`` are the whole layer's (one
        colour scale for all its maps), ``fraction_zero`` its sparsity."""
        outputs, _ = self._record(input_id)
        if layer is None:
            return {"input": input_id, "layers": [self._page(r, outputs.get(r.name), None, None)
                                                  for r in self.rows]}
        row = self.row(layer)
        return {"input": input_id, "layers": [self._page(row, outputs.get(row.name), offset, count)]}

    def _page(self, row: LayerRow, y: np.ndarray | None, offset, count) -> dict:
        out = {"name": row.name, "type": row.type, "shape": list(row.output_shape), "ran": y is not None}
        if y is None:
            return out
        spatial = int(np.prod(y.shape[1:])) if y.ndim == 3 else 1
        units = y.shape[0] if y.ndim in (1, 3) else 1
        flat = y if y.ndim in (1, 3) else y.reshape(1, -1)
        first = max(1, FIRST_PAGE_FLOATS // spatial)
        cap = max(1, MAX_PAGE_FLOATS // spatial)
        if y.ndim == 3:
            first, cap = min(first, FIRST_PAGE_CHANNELS), min(cap, 256)
        offset = 0 if offset is None else request_int(offset, "offset", 0, units - 1, True)
        count = min(first, units) if count is None else request_int(count, "count", 1, cap, True)
        page = flat[offset:offset + count]
        out.update(min=float(y.min()), max=float(y.max()), mean=float(y.mean()),
                   fraction_zero=float(1.0 - np.count_nonzero(y) / y.size), units=int(units),
                   offset=offset, count=int(len(page)), page_size=int(min(first, units)), data=floats(page))
        return out

    def unit(self, input_id: str, layer: str, values: dict) -> dict:
        """One unit of ``layer`` for the input: value, receptive field box and the arithmetic
        behind its value (:func:`~convscope.explore.units.explain_unit`)."""
        row = self.row(layer)
        index = self.unit_index(row, values, text=True)
        if len(row.output_shape) == 3 and len(index) != 3:
            raise ApiError(400, f"one unit of {row.name!r} needs channel, row and col")
        x = self.clf.normalizer(self.pixels(input_id)[None])
        seen = {}

        class Seen(Exception):
            pass

        def hook(module, inputs, y):        # inputs: the batch, or a tuple of them (a graph's Add, Cat)
            one = tuple(np.array(t[0]) for t in inputs) if isinstance(inputs, (tuple, list)) else np.array(inputs[0])
            seen["x"], seen["y"] = one, np.array(y[0])
            raise Seen

        with self.model_lock, self.modules[row.name].register_forward_hook(hook):
            try:
                self.clf.model.forward(x)
            except Seen:
                pass
        if "y" not in seen:
            raise ApiError(400, f"layer {row.name!r} does not run in the forward pass")
        box = None
        if row.receptive_field is not None:
            box = receptive_box(row, index[1:] if len(index) == 3 else None, self.clf.input_shape[1:])
        return {"input": input_id, "layer": row.name, "type": row.type, "index": list(index),
                "value": float(seen["y"][index]),
                "layer_input_shape": ([list(t.shape) for t in seen["x"]] if isinstance(seen["x"], tuple)
                                      else list(seen["x"].shape)),
                "receptive_field": box, "explanation": explain_unit(self.modules[row.name], seen["x"], seen["y"], index)}

    # -- dataset and run -------------------------------------------------------------------
    def dataset_info(self) -> dict:
        d = self._need_dataset()
        return {"name": d.name, "splits": {"train": int(len(d.train_images)), "test": int(len(d.test_images))},
                "class_names": list(d.class_names), "sample": min(self.sample_size, len(d.test_images))}

    def _need_dataset(self):
        if self.dataset is None:
            raise ApiError(404, "no dataset: start convscope explore with --data mnist|PATH")
        return self.dataset

    def dataset_image(self, split: str, index) -> tuple[np.ndarray, int, str]:
        d = self._need_dataset()
        if split not in ("train", "test"):
            raise ApiError(400, f"split must be 'train' or 'test', got {str(split)[:40]!r}")
        images, labels = getattr(d, f"{split}_images"), getattr(d, f"{split}_labels")
        i = request_int(index, "index", 0, len(images) - 1, True)
        return images[i], int(labels[i]), d.class_names[int(labels[i])]

    def _metrics_path(self) -> Path | None:
        if self.run_dir is None:
            return None
        path = self.run_dir / "metrics.json"
        return path if path.is_file() else None

    def run_info(self) -> dict:
        """The run's ``metrics.json`` (history, confusion matrix, ...), read with a size bound."""
        path = self._metrics_path()
        if path is None:
            raise ApiError(404, "no run beside this checkpoint (no metrics.json in its directory)")
        with open(path, "rb") as f:
            text = f.read(MAX_METRICS + 1)
        if len(text) > MAX_METRICS:
            raise ApiError(404, f"the run's metrics.json is over {MAX_METRICS} bytes; not shown")
        try:
            metrics = json.loads(text)
        except ValueError:
            raise ApiError(404, "the run's metrics.json is not valid JSON") from None
        if not isinstance(metrics, dict):
            raise ApiError(404, "the run's metrics.json does not hold an object")
        keep = ("model", "data", "test_accuracy", "per_class_accuracy", "confusion_matrix", "class_names",
                "history", "train_images", "test_images", "num_parameters", "config")
        return {k: metrics[k] for k in keep if k in metrics}
