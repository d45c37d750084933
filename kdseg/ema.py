"""Exponential moving average (mean-teacher) copies of a network, maintained by the Trainer.

Update after every optimizer step ``k`` (0-based): ``θ_t ← m_k·θ_t + (1 − m_k)·θ_s`` with
``m_k = m`` or, with the SSLSS-style warm-up, ``m_k = min(1 − 1/(k + 1), m)`` (so the teacher
starts as a copy of the student and its memory grows with ``k``).

Buffers (BatchNorm running statistics), by ``buffers``:

* ``"own"`` (the reference semantics: mmdet3d's ``MeanTeacherHook(skip_buffer=True)`` used by
  LaserMix, SSLSS, Tarvainen & Valpola): only parameters are averaged; the teacher is kept in
  train mode, so the targets it makes use the batch's statistics (identical weights give
  identical outputs), and its running statistics follow its own forward passes (they serve
  when the teacher itself is evaluated, in eval mode).
* ``"ema"`` (kdseg's behaviour up to 2026-12-01): floating-point buffers follow the same
  average, integer buffers (``num_batches_tracked``) are copied from the student, and the
  teacher makes its targets in eval mode with those averaged statistics.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from kdseg.errors import ConfigError
from kdseg.options import option
from kdseg.teachers import TEACHERS, Teacher

EMA_BUFFERS: tuple[str, ...] = ("own", "ema")


def ema_momentum(k: int, momentum: float, warmup: bool) -> float:
    """Momentum ``m_k`` of update ``k`` (0-based)."""
    return min(1.0 - 1.0 / (k + 1), momentum) if warmup else momentum


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in eval mode whose parameters do not require gradients."""
    twin = copy.deepcopy(module)
    twin.eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


@dataclasses.dataclass(frozen=True)
class EmaOptions:
    """Options of the ``"ema"`` teacher kind (a method's :class:`~kdseg.teachers.TeacherSpec`)."""

    momentum: float = option(0.99, "EMA momentum m in [0, 1]")
    warmup: bool = option(False, "SSLSS warm-up: m_k = min(1 - 1/(k+1), m) at update k")
    buffers: str = option(
        "own",
        "'own': average parameters only, targets in train mode (batch statistics) [mmdet3d "
        "MeanTeacherHook skip_buffer=True]; 'ema': average float buffers too, targets in eval "
        "mode",
    )
    source: str = option("student", "attribute of the method holding the averaged network")

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError("momentum", f"must be in [0, 1], got {self.momentum}")
        if self.buffers not in EMA_BUFFERS:
            raise ConfigError("buffers", f"must be one of {EMA_BUFFERS}, got {self.buffers!r}")


@TEACHERS.register("ema")
class EmaTeacher(Teacher):
    """The frozen EMA copy of ``source`` plus the update counter.

    Args:
        source: the student network whose weights are averaged (its structure is copied once).
        momentum: ``m`` in ``[0, 1]``.
        warmup: use ``m_k = min(1 − 1/(k + 1), m)``.
        buffers: ``"own"`` or ``"ema"`` (module docstring).
    """

    def __init__(
        self, source: nn.Module, momentum: float, warmup: bool = False, buffers: str = "own"
    ) -> None:
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
        if buffers not in EMA_BUFFERS:
            raise ValueError(f"EMA buffers must be one of {EMA_BUFFERS}, got {buffers!r}")
        self.momentum = float(momentum)
        self.warmup = bool(warmup)
        self.buffers = buffers
        self.source_attr = "student"
        self.num_updates = 0
        self.teacher = frozen_copy(source)
        self.teacher.train(self.targets_in_train_mode)

    Options = EmaOptions

    @classmethod
    def build(cls, opts: EmaOptions, method: nn.Module, inputs: Mapping[str, Any]) -> EmaTeacher:
        source = getattr(method, opts.source, None)
        if not isinstance(source, nn.Module):
            raise ConfigError(
                "teacher.ema.source", f"method.{opts.source} (the averaged network) is no nn.Module"
            )
        teacher = cls(source, opts.momentum, opts.warmup, opts.buffers)
        teacher.source_attr = opts.source
        return teacher

    @property
    def network(self) -> nn.Module:
        return self.teacher

    @property
    def moving_module(self) -> nn.Module:
        """Train-mode targets ("own") move the teacher's BatchNorm statistics."""
        return self.teacher

    def after_step(self, method: nn.Module) -> dict[str, float]:
        """One EMA update from the method's source network; logs ``ema_momentum``."""
        return {"ema_momentum": self.update(self._source_of(method))}

    def _source_of(self, method: nn.Module) -> nn.Module:
        return getattr(method, self.source_attr, method)

    @property
    def targets_in_train_mode(self) -> bool:
        """Whether the teacher makes its targets in train mode (``buffers == "own"``)."""
        return self.buffers == "own"

    @torch.no_grad()
    def update(self, source: nn.Module) -> float:
        """Average ``source`` into the teacher; returns the momentum used."""
        m = ema_momentum(self.num_updates, self.momentum, self.warmup)
        if self.buffers == "own":
            t_params = dict(self.teacher.named_parameters())
            s_params = dict(source.named_parameters())
            if t_params.keys() != s_params.keys():
                missing = sorted(set(t_params) ^ set(s_params))[:5]
                raise ValueError(f"EMA source and teacher differ in parameters, e.g. {missing}")
            for name, t in t_params.items():
                t.mul_(m).add_(s_params[name].detach().to(t.dtype), alpha=1.0 - m)
        else:
            t_state = self.teacher.state_dict()
            s_state = source.state_dict()
            if t_state.keys() != s_state.keys():
                missing = sorted(set(t_state) ^ set(s_state))[:5]
                raise ValueError(f"EMA source and teacher differ in state keys, e.g. {missing}")
            for name, t in t_state.items():
                s = s_state[name].detach()
                if t.dtype.is_floating_point:
                    t.mul_(m).add_(s.to(t.dtype), alpha=1.0 - m)
                else:
                    t.copy_(s)
        self.num_updates += 1
        self.teacher.train(self.targets_in_train_mode)
        return m

    def state_dict(self) -> dict[str, Any]:
        """``{"teacher": state dict, "num_updates": int, "momentum", "warmup", "buffers"}``."""
        return {
            "teacher": self.teacher.state_dict(),
            "num_updates": self.num_updates,
            "momentum": self.momentum,
            "warmup": self.warmup,
            "buffers": self.buffers,
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore teacher weights and the update counter."""
        if state is None:
            raise ValueError("the checkpoint holds no EMA teacher state")
        self.teacher.load_state_dict(state["teacher"])
        self.num_updates = int(state["num_updates"])


def attach_teacher(method: nn.Module, teacher: nn.Module) -> None:
    """Set ``method.teacher = teacher`` *without* registering it as a submodule.

    So ``method.train()``, ``method.parameters()``, ``method.state_dict()`` and the optimizer
    never see the teacher; it stays frozen (and in the mode its :class:`EmaTeacher` keeps),
    owned by the Trainer.
    """
    existing = method._modules.get("teacher")
    if existing is not None:
        raise ValueError(
            "method.teacher is already a registered submodule; with ema_momentum set the "
            "Trainer owns the teacher, so the method must leave `teacher` as None"
        )
    method._modules.pop("teacher", None)
    object.__setattr__(method, "teacher", teacher)
