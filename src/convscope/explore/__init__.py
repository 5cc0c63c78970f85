"""``convscope explore``: a local web page to look inside a trained network, live.

::

    convscope explore --checkpoint runs/lenet5-mnist/model.npz    # then open http://127.0.0.1:8000/

From Python::

    from convscope.explore import Explorer, make_server
    server = make_server(Explorer(clf, dataset), port=0)     # port 0: any free port
    print(server.url); server.serve_forever()

The page (``static/``: plain HTML, CSS and JavaScript modules, shipped in the package, no
network access) draws on a canvas, takes a dropped or uploaded photo or a dataset image, and
shows the prediction, every layer's activations, one unit's receptive field and arithmetic,
its top dataset images, activation-maximisation image and deconvnet projection, saliency
overlays and the training run. The server is the standard library's ThreadingHTTPServer.

The API (JSON unless said; errors are 4xx/5xx with ``{"error", "status"}``):

- ``GET /`` the page; ``GET /static/NAME`` its assets (only those files).
- ``GET /api/model``: ``{"model", "input_shape": [C, H, W], "class_names", "num_classes",
  "total_params", "total_macs", "layers": [{"name", "type", "output_shape", "params",
  "receptive_field", "jump", "start", "macs"}], "digit_model", "saliency", "grad_cam_layers",
  "grad_cam_default", "dataset", "run", "limits"}``; the layer names are ``convscope summary``'s.
- ``POST /api/predict[?source=image|drawing][&invert=1][&activations=1]``, body a PNG or JPEG
  (``Content-Length`` required, at most 8 MiB and 4096x4096 pixels): ``{"input": ID,
  "probabilities": [K], "predicted", "top": [{"index", "class", "probability"}], "image":
  data URL of what the network sees, "seconds"}`` (+ ``"activations"`` as below). A drawing
  (light ink on black) for a 1x28x28 model is prepared as MNIST's digits were (ink box scaled
  into 20x20 keeping its aspect ratio, centred by centre of mass in 28x28), server-side.
- ``GET /api/activations?input=ID[&layer=NAME&offset=K&count=N]``: ``{"input", "layers":
  [{"name", "type", "shape", "ran", "min", "max", "mean", "fraction_zero", "units",
  "offset", "count", "page_size", "data"}]}``; ``data`` is base64 little-endian float32 of
  channels offset..offset+count-1 ((count, H, W)) or features; without ``layer`` every layer's
  first page (at most 16 channels and 65,536 values; a page holds at most 2**18 values).
- ``GET /api/unit?input=ID&layer=NAME&channel=C&row=I&col=J`` (``&unit=F`` for a layer with
  (F,) outputs): ``{"value", "index", "receptive_field": {"top", "left", "bottom", "right",
  "clipped", "size", "jump", "centre"}, "explanation"}``, the explanation being the conv sum
  (``window``, ``kernel``, ``products``, ``channel_sums``, ``bias``, ``sum``, ``matches``), a
  pool's window and ``argmax``, a linear unit's sum and top contributions, or input and output
  of an element-wise layer.
- ``GET /api/dataset``: ``{"name", "splits", "class_names", "sample"}``;
  ``GET /api/dataset?split=test|train&index=I``: the image as PNG, its label in the
  ``X-Convscope-Label`` and ``X-Convscope-Class`` headers.
- ``GET /api/run``: the run's ``metrics.json`` (``history``, ``confusion_matrix``, ...) when
  the checkpoint has one beside it; 404 otherwise.
- ``POST /api/jobs[?wait=SECONDS]``, body JSON, one of
  ``{"kind": "saliency", "input", "method": gradient|guided_backprop|smoothgrad|
  integrated_gradients|grad_cam|occlusion, "target": class or null, "layer": for grad_cam}``,
  ``{"kind": "deconv", "input", "layer", "channel", "row", "col"}`` (or ``"unit"``),
  ``{"kind": "actmax", "layer", "channel" | "unit", "steps"}``,
  ``{"kind": "exemplars", "layer", "channel" | "unit", "k"}``: ``{"id", "kind", "state",
  "progress"}`` (202; 200 with ``"result"`` when it finished within ``wait``, at most 5 s).
  ``GET /api/jobs/ID``: ``{"id", "kind", "state": queued|running|done|error|cancelled,
  "progress": 0..1, "seconds", "result" | "error"}``; ``DELETE /api/jobs/ID`` cancels.
  At most 16 jobs wait (503 beyond); identical requests share one job, so results are cached
  per (layer, unit) and per input.

Concurrency: request threads share the network under one lock (layers cache their inputs
for backward); jobs run on one worker thread with its own copy of the network.
"""

from .errors import ApiError
from .explorer import Explorer, layer_table
from .server import ExploreServer, make_server, static_files
from .units import conv_sum, explain_unit, linear_sum, pool_window, receptive_box

__all__ = ["Explorer", "ApiError", "ExploreServer", "make_server", "static_files", "layer_table",
           "receptive_box", "conv_sum", "pool_window", "linear_sum", "explain_unit"]
