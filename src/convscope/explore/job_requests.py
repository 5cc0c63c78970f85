"""The job requests the explorer accepts (``POST /api/jobs``), checked before they are queued.

:class:`JobRequests` is a part of :class:`~convscope.explore.Explorer`: it validates a request
(an unknown layer is a 404, a unit out of range a 400, before anything waits in the queue),
picks the work in :mod:`~convscope.explore.techniques` and the number of images it will send
through the network (its progress), and keys it so that identical requests share one job.
"""

from __future__ import annotations

import numpy as np

from . import techniques
from .errors import ApiError, request_int
from .jobs import Job, QueueFull

__all__ = ["JobRequests", "MAX_JSON"]

MAX_JSON = 64 * 2 ** 10                # bytes of one job request


class JobRequests:
    """Job validation and submission; needs the Explorer's ``clf``, ``jobs``, ``row``,
    ``unit_index``, ``pixels``, ``predicted``, ``model_info``, ``dataset`` and ``sample_size``."""

    def worker(self) -> techniques.WorkerModel:
        """The job worker's model copy, made on its first job (in the worker thread)."""
        if self._worker is None:
            self._worker = techniques.WorkerModel(self.clf, self.model_lock, self.jobs.tick)
        return self._worker

    def sample(self):
        """(images, labels, indices) of the test-split sample dissection uses (seeded)."""
        d = self._need_dataset()
        if self._sample is None:
            n = len(d.test_images)
            idx = np.sort(np.random.default_rng(0).choice(n, size=min(self.sample_size, n), replace=False))
            self._sample = (d.test_images[idx], d.test_labels[idx], idx)
        return self._sample

    def submit(self, spec) -> Job:
        """Validate a job request (ApiError for a bad one) and queue it; see docs/explore.md."""
        if not isinstance(spec, dict):
            raise ApiError(400, "a job request is a JSON object with a 'kind'")
        kind = spec.get("kind")
        make = {"saliency": self._saliency_job, "deconv": self._deconv_job, "actmax": self._actmax_job,
                "exemplars": self._exemplars_job}.get(kind)
        if make is None:
            raise ApiError(400, f"kind must be one of saliency, deconv, actmax, exemplars; got {str(kind)[:40]!r}")
        work, expected, key = make(spec)
        try:
            return self.jobs.submit(kind, work, expected, key)
        except QueueFull as err:
            raise ApiError(503, str(err)) from None

    def _saliency_job(self, spec):
        input_id = spec.get("input")
        pixels = self.pixels(input_id)
        method = spec.get("method")
        if method not in techniques.SALIENCY:
            raise ApiError(400, f"method must be one of {', '.join(techniques.SALIENCY)}, got {str(method)[:40]!r}")
        target = spec.get("target")
        target = self.predicted(input_id) if target is None else request_int(target, "target", 0, self.clf.num_classes - 1)
        layer = None
        if method == "grad_cam":
            layer = spec.get("layer") or self.model_info()["grad_cam_default"]
            if layer is None or len(self.row(layer).output_shape) != 3:
                raise ApiError(400, f"Grad-CAM needs a layer with (C, H, W) outputs, got {layer!r}")
        expected = techniques.expected_saliency(method, self.clf.input_shape)
        return (lambda job: techniques.saliency(self.worker(), pixels, method, target, layer),
                expected, ("saliency", input_id, method, target, layer))

    def _deconv_job(self, spec):
        input_id = spec.get("input")
        pixels = self.pixels(input_id)
        row = self.row(spec.get("layer"))
        index = self.unit_index(row, spec)
        if len(row.output_shape) == 3 and len(index) != 3:
            raise ApiError(400, f"a deconvnet projection of {row.name!r} needs channel, row and col")
        return (lambda job: techniques.deconv(self.worker(), pixels, row, index), 2,
                ("deconv", input_id, row.name, index))

    def _actmax_job(self, spec):
        row = self.row(spec.get("layer"))
        unit = self.unit_index(row, {k: spec.get(k) for k in ("channel", "unit")})[0]
        settings = techniques.actmax_settings(self.clf.input_shape)
        if spec.get("steps") is not None:
            settings["steps"] = request_int(spec["steps"], "steps", 1, 1024)
        return (lambda job: techniques.actmax(self.worker(), row.name, unit, settings),
                settings["steps"] + 2, ("actmax", row.name, unit, settings["steps"]))

    def _exemplars_job(self, spec):
        self._need_dataset()
        row = self.row(spec.get("layer"))
        unit = self.unit_index(row, {k: spec.get(k) for k in ("channel", "unit")})[0]
        k = request_int(spec.get("k", 8), "k", 1, techniques.EXEMPLAR_TOP)
        n = min(self.sample_size, len(self.dataset.test_images))

        def work(job):
            images, labels, idx = self.sample()
            return techniques.exemplars(self.worker(), images, labels, idx, row, unit, min(k, len(images)))
        return work, n + k, ("exemplars", row.name, unit, k)
