"""Training loop, evaluation, metrics and checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .metrics import accuracy, confusion_matrix, per_class_accuracy
from .trainer import TrainConfig, Trainer, TrainingDiverged, evaluate, predict

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "evaluate", "predict",
           "CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "accuracy", "confusion_matrix", "per_class_accuracy"]
