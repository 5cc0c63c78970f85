"""The hyper-parameters of a training run, as data: every number is commented, defaults resolved here.

Library policy lives here rather than in the command line, so Python users and the CLI get
the same run: a learning rate left as ``None`` resolves to the optimizer's own default
(:data:`DEFAULT_LR`), and every field is checked with a message naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields

from ..optim import OPTIMIZERS, SCHEDULES
from ..validation import check_bool, check_choice, check_int, check_probability, check_real

__all__ = ["TrainConfig", "DEFAULT_LR"]

# Peak learning rates per optimizer: SGD's is the LeNet-5 / MNIST recipe (Nesterov momentum
# 0.9, warm-up, cosine); Adam's and AdamW's are Kingma & Ba's recommended 1e-3.
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}

# Largest seed accepted: numpy's SeedSequence takes any non-negative int, but a seed that a
# person types and a JSON file stores exactly is what reproducibility needs.
MAX_SEED = 2 ** 63 - 1


@dataclass
class TrainConfig:
    """Hyper-parameters of a run. The defaults are the LeNet-5 / MNIST recipe of the README:
    Nesterov SGD with a short warm-up and a cosine decay, which reaches >= 99.0% test accuracy.

    >>> TrainConfig(optimizer="adam").resolved().lr
    0.001
    """

    epochs: int = 12
    batch_size: int = 128
    lr: float | None = None          # peak learning rate, reached after the warm-up; None: DEFAULT_LR
    optimizer: str = "sgd"
    momentum: float = 0.9            # SGD only (Nesterov)
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 0.5       # linear ramp: avoids early instability at lr 0.05
    label_smoothing: float = 0.0
    translate: int = 0               # augmentation: random shifts of up to this many pixels
    hflip: bool = False              # augmentation: random horizontal reflection (not for digits)
    pca_color: float = 0.0           # augmentation: AlexNet's PCA colour jitter std (0.1 in the paper)
    limit: int | None = None         # train on the first `limit` training images only (recorded)
    test_limit: int | None = None    # evaluate on the first `test_limit` test images only (quick trials)
    freeze: str | None = None        # fine-tuning: layers up to and including this one keep their weights
    seed: int = 0
    eval_batch_size: int = 500

    def resolved(self) -> "TrainConfig":
        """A checked copy with the defaults that depend on other fields filled in (``lr``)."""
        self.validate()
        lr = DEFAULT_LR[self.optimizer] if self.lr is None else self.lr
        return dataclasses.replace(self, lr=float(lr))

    def validate(self) -> None:
        """Raise ValueError/TypeError naming the first field that is out of range."""
        for name in ("epochs", "batch_size", "eval_batch_size"):
            check_int(getattr(self, name), name, minimum=1)
        for name in ("limit", "test_limit"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1)
        check_int(self.seed, "seed", minimum=0, maximum=MAX_SEED)
        check_int(self.translate, "translate", minimum=0)
        check_choice(self.optimizer, "optimizer", sorted(OPTIMIZERS))
        check_choice(self.schedule, "schedule", SCHEDULES)
        if self.lr is not None:
            check_real(self.lr, "lr", minimum=0.0, strict=True)
        check_probability(self.momentum, "momentum")
        check_real(self.weight_decay, "weight_decay", minimum=0.0)
        check_real(self.warmup_epochs, "warmup_epochs", minimum=0.0)
        check_probability(self.label_smoothing, "label_smoothing")
        check_bool(self.hflip, "hflip")
        if self.freeze is not None and not (isinstance(self.freeze, str) and self.freeze):
            raise TypeError(f"freeze must be a layer name, got {self.freeze!r}")
        check_real(self.pca_color, "pca_color", minimum=0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The config a checkpoint recorded (unknown keys, from newer versions, are ignored)."""
        if not isinstance(d, dict):
            raise ValueError(f"training options must be a dict, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
