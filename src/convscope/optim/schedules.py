"""Learning-rate schedules as small pure functions of the step number.

Each ``make_*`` returns ``lr(step) -> float`` for step = 0, 1, ... (one per batch);
``warmup`` wraps any of them with a linear ramp from ~0 to the schedule's value.
"""

from __future__ import annotations

import math
from typing import Callable

__all__ = ["constant", "step_decay", "cosine", "warmup", "make_schedule", "SCHEDULES"]

Schedule = Callable[[int], float]


def constant(base_lr: float) -> Schedule:
    return lambda step: base_lr


def step_decay(base_lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """lr = base_lr * gamma ** (step // step_size) (PyTorch's StepLR, per batch)."""
    if step_size < 1:
        raise ValueError(f"step_size must be positive, got {step_size!r}")
    return lambda step: base_lr * gamma ** (step // step_size)


def cosine(base_lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    """Half a cosine from base_lr at step 0 down to min_lr at total_steps (SGDR without restarts)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps!r}")

    def lr(step: int) -> float:
        t = min(step, total_steps) / total_steps
        return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * t))
    return lr


def warmup(schedule: Schedule, warmup_steps: int) -> Schedule:
    """Scale the first ``warmup_steps`` steps linearly: step k gets (k + 1) / warmup_steps."""
    if warmup_steps <= 0:
        return schedule
    return lambda step: schedule(step) * min(1.0, (step + 1) / warmup_steps)


SCHEDULES = ("cosine", "step", "constant")


def make_schedule(name: str, base_lr: float, total_steps: int, warmup_steps: int = 0,
                  step_size: int | None = None, gamma: float = 0.1) -> Schedule:
    """Build a schedule by name: "cosine", "step" (default every third of training) or "constant"."""
    if name == "cosine":
        sched = cosine(base_lr, total_steps)
    elif name == "step":
        sched = step_decay(base_lr, step_size or max(1, total_steps // 3), gamma)
    elif name == "constant":
        sched = constant(base_lr)
    else:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return warmup(sched, warmup_steps)
