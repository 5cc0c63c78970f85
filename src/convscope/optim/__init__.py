"""Optimizers and learning-rate schedules."""

from .optimizers import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, adam_step, make_optimizer
from .schedules import SCHEDULES, constant, cosine, make_schedule, step_decay, warmup

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "make_optimizer", "OPTIMIZERS", "adam_step",
           "constant", "step_decay", "cosine", "warmup", "make_schedule", "SCHEDULES"]
