"""Optimizers and per-iteration learning-rate schedules of the Trainer.

Schedules are factors of the peak ``lr`` as a function of the 0-based iteration ``k`` of a run of
``T`` iterations with ``W`` warm-up iterations. Annealing phases use ``t = (k − W) / (T − W)`` in
``[0, 1)``, i.e. they would reach their end value at iteration ``T``, one past the last update.

* ``constant``: linear warm-up ``(k + 1) / W`` for ``k < W``, then 1.
* ``cosine``: the same warm-up, then ``min_lr + (lr − min_lr)·(1 + cos πt)/2``.
* ``poly``: the same warm-up, then ``min_lr + (lr − min_lr)·(1 − t)^poly_power``.
* ``onecycle`` (Smith & Topin, as torch's ``OneCycleLR`` with cosine annealing; momentum is not
  cycled): cosine rise from ``lr/div_factor`` at ``k = 0`` to ``lr`` at ``k = W``, then cosine
  decay towards ``lr/(div_factor·final_div_factor)``. Needs ``W >= 1``.

They are wrapped in ``torch.optim.lr_scheduler.LambdaLR``, whose state dict holds plain numbers.

The optimizers are torch's AdamW and SGD with the same arithmetic, minus torch.compile's hooks:
``torch.optim.Optimizer`` wraps ``step``, ``zero_grad``, ``add_param_group`` and the state-dict
methods so that their first call imports ``torch._dynamo`` (about 2 s of a run's fixed cost on the
2-core CPU, for a compiler kdseg never uses). :class:`AdamW` and :class:`SGD` call the undecorated
functions (``__wrapped__``) instead; ``tests/test_trainer.py`` checks that they give bit-identical
parameters and that a training run never imports ``torch._dynamo``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from kdseg.errors import ConfigError

if TYPE_CHECKING:
    from kdseg.trainer_config import TrainerConfig

OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")
SCHEDULES: tuple[str, ...] = ("constant", "onecycle", "cosine", "poly")


def check_optim_config(cfg: TrainerConfig) -> None:
    """Validate the optimizer and schedule fields; raises :class:`ConfigError` naming the key."""
    if cfg.optimizer not in OPTIMIZERS:
        raise ConfigError("optimizer", f"must be one of {OPTIMIZERS}, got {cfg.optimizer!r}")
    if cfg.schedule not in SCHEDULES:
        raise ConfigError("schedule", f"must be one of {SCHEDULES}, got {cfg.schedule!r}")
    if not cfg.lr > 0:
        raise ConfigError("lr", f"must be > 0, got {cfg.lr}")
    if not cfg.weight_decay >= 0:
        raise ConfigError("weight_decay", f"must be >= 0, got {cfg.weight_decay}")
    if not 0 <= cfg.momentum < 1:
        raise ConfigError("momentum", f"must be in [0, 1), got {cfg.momentum}")
    if cfg.nesterov and (cfg.optimizer != "sgd" or cfg.momentum == 0):
        raise ConfigError("nesterov", "needs optimizer 'sgd' with momentum > 0")
    if not 0 <= cfg.warmup_iters < cfg.iterations:
        raise ConfigError(
            "warmup_iters", f"must be in [0, iterations={cfg.iterations}), got {cfg.warmup_iters}"
        )
    if cfg.schedule == "onecycle" and cfg.warmup_iters < 1:
        raise ConfigError("warmup_iters", "the 'onecycle' schedule needs >= 1 rise iterations")
    if not 0 <= cfg.min_lr <= cfg.lr:
        raise ConfigError("min_lr", f"must be in [0, lr={cfg.lr}], got {cfg.min_lr}")
    for key in ("div_factor", "final_div_factor"):
        if not getattr(cfg, key) >= 1:
            raise ConfigError(key, f"must be >= 1, got {getattr(cfg, key)}")
    if not cfg.poly_power > 0:
        raise ConfigError("poly_power", f"must be > 0, got {cfg.poly_power}")


def _plain(fn: Any) -> Any:
    """``fn`` without torch's dynamo-disabling / grad-mode wrappers (``functools.wraps`` keeps
    the original as ``__wrapped__``)."""
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


class _NoDynamo:
    """Mixin for a ``torch.optim.Optimizer`` subclass: the same methods, never importing
    ``torch._dynamo`` (module docstring). ``step`` runs under ``torch.no_grad()``, which is what
    torch's wrapper does for a non-differentiable optimizer."""

    _base: type[torch.optim.Optimizer]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _plain(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _plain(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _plain(torch.optim.Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _plain(torch.optim.Optimizer.load_state_dict)(self, state_dict)

    def step(self, closure: Any = None) -> Any:
        if self.defaults.get("differentiable"):  # type: ignore[attr-defined]
            raise ValueError("kdseg's optimizers are not differentiable")
        with torch.no_grad():
            return _plain(self._base.step)(self, closure)


class AdamW(_NoDynamo, torch.optim.AdamW):
    """``torch.optim.AdamW`` without the torch.compile hooks (same updates, bit for bit)."""

    _base = torch.optim.AdamW


class SGD(_NoDynamo, torch.optim.SGD):
    """``torch.optim.SGD`` without the torch.compile hooks (same updates, bit for bit)."""

    _base = torch.optim.SGD


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: TrainerConfig
) -> torch.optim.Optimizer:
    """AdamW (betas 0.9/0.999) or SGD (``momentum``, ``nesterov``); decay applies to all params."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the method has no trainable parameters (requires_grad=True)")
    if cfg.optimizer == "adamw":
        # foreach: one multi-tensor kernel per update instead of a Python loop over parameters
        return AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    return SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
        foreach=True,
    )


def _cos_ramp(t: float) -> float:
    """0 → 1 along half a cosine for ``t`` in [0, 1]."""
    return 0.5 * (1.0 - math.cos(math.pi * t))


def lr_factor(k: int, cfg: TrainerConfig) -> float:
    """Learning rate of iteration ``k`` (0-based) divided by ``cfg.lr``."""
    w, total = cfg.warmup_iters, cfg.iterations
    if cfg.schedule == "onecycle":
        start = 1.0 / cfg.div_factor
        end = start / cfg.final_div_factor
        if k < w:
            return start + (1.0 - start) * _cos_ramp(k / w)
        t = (k - w) / (total - w)
        return 1.0 + (end - 1.0) * _cos_ramp(t)
    if k < w:
        return (k + 1) / w
    if cfg.schedule == "constant":
        return 1.0
    floor = cfg.min_lr / cfg.lr
    t = (k - w) / (total - w)
    if cfg.schedule == "cosine":
        return floor + (1.0 - floor) * (1.0 - _cos_ramp(t))
    return floor + (1.0 - floor) * (1.0 - t) ** cfg.poly_power  # poly


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainerConfig) -> LambdaLR:
    """A ``LambdaLR`` stepped once per iteration: after ``k`` steps the lr is ``lr·factor(k)``."""

    def factor(k: int) -> float:
        return lr_factor(min(k, cfg.iterations - 1), cfg)

    return LambdaLR(optimizer, lr_lambda=factor)
