"""Settings of one training run (:class:`TrainerConfig`), validated on construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from kdseg.errors import ConfigError
from kdseg.optim import check_optim_config
from kdseg.options import build, check_types, helps, option

# Fields that may change between a run and its resumption without changing its numbers.
OPERATIONAL_KEYS = frozenset({"checkpoint_every", "log_every", "device", "progress"})


@dataclass(frozen=True)
class TrainerConfig:
    """Hyper-parameters of one training run; validated on construction (``ConfigError``)."""

    iterations: int = option(1000, "number of optimizer steps of the run (iterations)")
    optimizer: str = option("adamw", "'adamw' or 'sgd'")
    lr: float = option(1e-3, "peak learning rate (per unit gradient)")
    weight_decay: float = option(1e-2, "decoupled (AdamW) or L2 (SGD) weight decay coefficient")
    momentum: float = option(0.9, "SGD momentum in [0, 1) (unused by AdamW)")
    nesterov: bool = option(False, "Nesterov momentum (SGD with momentum > 0 only)")
    schedule: str = option("constant", "LR schedule: 'constant', 'onecycle', 'cosine' or 'poly'")
    warmup_iters: int = option(0, "warm-up iterations (linear; onecycle: the cosine rise)")
    min_lr: float = option(0.0, "final learning rate of 'cosine' and 'poly' (absolute)")
    div_factor: float = option(25.0, "'onecycle' starts at lr / div_factor")
    final_div_factor: float = option(1e4, "'onecycle' ends at lr / (div_factor * final_div_factor)")
    poly_power: float = option(0.9, "exponent of the 'poly' schedule")
    grad_clip: float | None = option(
        None, "max global L2 norm of the gradients, None = no clipping"
    )
    checkpoint_every: int = option(1000, "save a checkpoint every N iterations (0 = only on exit)")
    log_every: int = option(50, "log losses, lr and iterations/second every N iterations")
    seed: int = option(0, "seed of python, numpy and torch, in [0, 2**32)")
    device: str = option(
        "cpu",
        "torch device string, e.g. 'cpu', 'cuda', 'cuda:1'; 'auto' = 'cuda' when CUDA is "
        "available, else 'cpu' (the paper scales: the same jobs train on GPU nodes and on CPUs)",
    )
    progress: bool = option(True, "show a tqdm progress bar (only when stderr is a TTY)")

    def __post_init__(self) -> None:
        check_types(self)
        if self.iterations < 1:
            raise ConfigError("iterations", f"must be >= 1, got {self.iterations}")
        check_optim_config(self)
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError("grad_clip", f"must be > 0 or None, got {self.grad_clip}")
        if self.checkpoint_every < 0:
            raise ConfigError("checkpoint_every", f"must be >= 0, got {self.checkpoint_every}")
        if self.log_every < 1:
            raise ConfigError("log_every", f"must be >= 1, got {self.log_every}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError("seed", f"must be in [0, 2**32), got {self.seed}")
        if self.device == "auto":  # resolved once, so the run records the device it used
            object.__setattr__(self, "device", "cuda" if torch.cuda.is_available() else "cpu")
        try:
            torch.device(self.device)
        except RuntimeError as exc:
            raise ConfigError("device", f"not a torch device: {exc}") from None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainerConfig:
        """Build from a mapping (a YAML section, ``--trainer`` items); unknown keys and values
        of the wrong type raise ``ConfigError`` naming the key (:func:`kdseg.options.build`)."""
        return build(cls, values, what="trainer key")

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text (with units)."""
        return helps(cls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
