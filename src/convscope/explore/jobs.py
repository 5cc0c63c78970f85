"""Background jobs: heavy techniques run off the request threads, with progress and a bound.

A :class:`JobQueue` has one worker thread (the machines this runs on have few cores; a
second worker would only split them) and at most ``max_pending`` jobs waiting; a submit
beyond that raises :class:`QueueFull` (the server answers 503). Jobs with the same ``key``
are one job: submitting an identical request while it waits, runs or is remembered returns
the existing one, which is how results are cached per (layer, unit) and per input.

Progress is counted in images through the network: the worker's own model copy calls
:meth:`JobQueue.tick` from a forward hook on its first layer, and each job says up front
how many images it will send (``expected``). The same hook ends a cancelled job (it
raises :class:`Cancelled` in the middle of the technique, whose context managers restore
the model's state).
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable

__all__ = ["Job", "JobQueue", "QueueFull", "Cancelled"]


class QueueFull(RuntimeError):
    """More jobs are waiting than the queue holds."""


class Cancelled(Exception):
    """Raised inside a running job once it has been cancelled."""


class Job:
    """One background computation: ``state`` is "queued", "running", "done", "error" or
    "cancelled"; ``progress`` in [0, 1]; ``result`` (JSON-ready) once done, ``error`` (one
    line) on failure."""

    def __init__(self, kind: str, work: Callable[["Job"], dict], expected: int, key) -> None:
        self.id = secrets.token_hex(8)
        self.kind, self.work, self.key = kind, work, key
        self.expected = max(1, int(expected))
        self.seen = 0
        self.state = "queued"
        self.result: dict | None = None
        self.error: str | None = None
        self.created = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        self.cancelled = threading.Event()
        self.done = threading.Event()

    @property
    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        return min(self.seen / self.expected, 0.99)

    def to_dict(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "state": self.state, "progress": round(self.progress, 4)}
        if self.started is not None:
            out["seconds"] = round((self.finished or time.monotonic()) - self.started, 3)
        if self.state == "done":
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        return out


class JobQueue:
    """One worker thread running :class:`Job` s in submission order; see the module docstring.

    ``keep`` finished jobs are remembered (least recently used first out); ``max_pending``
    bounds the jobs waiting.
    """

    def __init__(self, max_pending: int = 16, keep: int = 256) -> None:
        self.max_pending, self.keep = max_pending, keep
        self._pending: queue.Queue = queue.Queue()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._by_key: dict = {}
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._worker = threading.Thread(target=self._run, name="convscope-explore-jobs", daemon=True)
        self._worker.start()

    # -- the request side ------------------------------------------------------------
    def submit(self, kind: str, work: Callable[[Job], dict], expected: int, key=None) -> Job:
        """The job for ``key`` if one is waiting, running or done; else a new one, queued."""
        with self._lock:
            if key is not None and key in self._by_key:
                job = self._by_key[key]
                if job.state in ("queued", "running", "done") and not job.cancelled.is_set():
                    self._jobs.move_to_end(job.id)
                    return job
            waiting = sum(1 for j in self._jobs.values() if j.state == "queued")
            if waiting >= self.max_pending:
                raise QueueFull(f"{waiting} jobs are already waiting (the limit is {self.max_pending}); "
                                f"try again when one has finished")
            job = Job(kind, work, expected, key)
            self._jobs[job.id] = job
            if key is not None:
                self._by_key[key] = job
            self._forget_old()
            self._pending.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a waiting or running job (a finished one stays as it is)."""
        job = self.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            job.cancelled.set()
            if job.state == "queued":
                self._finish(job, "cancelled")
        return job

    def close(self) -> None:
        """Cancel everything and stop the worker."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancelled.set()
        self._pending.put(None)
        self._worker.join(timeout=5)

    # -- the worker side -------------------------------------------------------------
    def tick(self, images: int) -> None:
        """Called by the worker's model on every forward pass: count, and stop if cancelled."""
        job = self._current
        if job is None:
            return
        job.seen += int(images)
        if job.cancelled.is_set():
            raise Cancelled

    def _run(self) -> None:
        while True:
            job = self._pending.get()
            if job is None:
                return
            if job.cancelled.is_set() or job.state != "queued":
                continue
            job.state, job.started = "running", time.monotonic()
            self._current = job
            try:
                result = job.work(job)
            except Cancelled:
                self._finish(job, "cancelled")
            except Exception as err:                       # reported to the page, one line
                job.error = " ".join(f"{type(err).__name__}: {err}".split())[:500]
                self._finish(job, "error")
            else:
                job.result = result
                self._finish(job, "done")
            finally:
                self._current = None

    def _finish(self, job: Job, state: str) -> None:
        with self._lock:
            job.state, job.finished = state, time.monotonic()
            if state != "done" and job.key is not None and self._by_key.get(job.key) is job:
                del self._by_key[job.key]                  # a failed job is not a cached answer
        job.done.set()

    def _forget_old(self) -> None:
        """Drop the least recently used finished jobs beyond ``keep`` (call with the lock)."""
        finished = [j for j in self._jobs.values() if j.state in ("done", "error", "cancelled")]
        for job in finished[:max(0, len(finished) - self.keep)]:
            del self._jobs[job.id]
            if job.key is not None and self._by_key.get(job.key) is job:
                del self._by_key[job.key]
