"""Training loop, evaluation, metrics, checkpoints and run directories."""

from .checkpoint import (CheckpointError, check_config, check_resumable, load_checkpoint, read_checkpoint,
                         save_checkpoint)
from .config import DEFAULT_LR, TrainConfig
from .metrics import accuracy, confusion_matrix, per_class_accuracy
from .rundir import RunDirError, RunLock, check_run_dir, fresh_run_dir, holds_run
from .trainer import Trainer, TrainingDiverged, TrainingInterrupted, evaluate, predict

__all__ = ["Trainer", "TrainConfig", "DEFAULT_LR", "TrainingDiverged", "TrainingInterrupted", "evaluate", "predict",
           "CheckpointError", "check_config", "check_resumable", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "RunDirError", "RunLock", "check_run_dir", "fresh_run_dir", "holds_run",
           "accuracy", "confusion_matrix", "per_class_accuracy"]
