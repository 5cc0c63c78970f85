"""A small progress bar for the terminal (no dependency).

On a terminal it redraws one line in place at most ten times a second; when the stream is
not a terminal (CI logs, pipes) it writes only the finished line, so logs stay readable.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``with Progress(total, "epoch 1/10") as bar: bar.update(k, loss=0.3)``.

    ``unit`` names what is counted per second (e.g. "img"); ``unit_scale`` converts one step
    into that many units (the batch size), so the rate reads as images per second.
    """

    WIDTH = 24

    def __init__(self, total: int, desc: str = "", *, unit: str = "it", unit_scale: float = 1.0,
                 stream=None, enabled: bool = True) -> None:
        self.total, self.desc, self.unit, self.unit_scale = int(total), desc, unit, unit_scale
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.count, self.units, self.postfix = 0, 0.0, {}
        self.start = self._last_draw = time.perf_counter()
        self.stopped: float | None = None     # when the counted work ended (see phase)
        self.status = ""
        self.after = 0.0                      # seconds of work expected after this bar (the run's ETA)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, steps: int = 1, units: float | None = None, **postfix) -> None:
        self.count += steps
        self.units += steps * self.unit_scale if units is None else units
        self.postfix.update(postfix)
        now = time.perf_counter()
        if self.tty and (now - self._last_draw >= 0.1 or self.count >= self.total):
            self._last_draw = now
            self._draw(now)

    def phase(self, status: str) -> None:
        """Stop the clock of the counted work and show ``status`` (e.g. "evaluating ..."), so
        the rate and time shown cover the counted work only."""
        if self.stopped is None:
            self.stopped = time.perf_counter()
        self.status = status
        if self.tty:
            self._draw(self.stopped)

    def line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        if self.stopped is not None:
            now = self.stopped
        elapsed = max(now - self.start, 1e-9)
        frac = min(self.count / self.total, 1.0) if self.total else 1.0
        filled = int(frac * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        rate = self.units / elapsed
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        post = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in self.postfix.items())
        run = f" (run {_clock(eta + self.after)} left)" if self.after else ""
        status = f" {self.status}" if self.status else ""
        return (f"{self.desc} [{bar}] {self.count}/{self.total} {post} "
                f"{rate:,.0f} {self.unit}/s {_clock(elapsed)}<{_clock(eta)}{run}{status}").strip()

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()

    def close(self, **postfix) -> None:
        """Finish the line (adding any final figures, e.g. the test accuracy)."""
        if not self.enabled:
            return
        self.postfix.update(postfix)
        self.status, self.after = "", 0.0
        text = self.line()
        self.stream.write(("\r" + text + "\x1b[K\n") if self.tty else text + "\n")
        self.stream.flush()
        self.enabled = False
