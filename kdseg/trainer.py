"""The one training loop of the suite (iteration-based; see docs/training.md).

The Trainer owns the optimizer, LR schedule, gradient clipping, the teacher (built from the
method's :meth:`teacher_spec`, :mod:`kdseg.teachers`), seeding, checkpoints, progress bar and
logging. A method only turns a batch into named, weighted loss terms. Its settings are a
:class:`~kdseg.trainer_config.TrainerConfig`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from kdseg.checkpoint import (
    CHECKPOINT_FORMAT,
    StepBoundary,
    check_resumable,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from kdseg.ema import attach_teacher
from kdseg.errors import ConfigError, KdsegError
from kdseg.interrupts import deferred_signals
from kdseg.optim import build_optimizer, build_scheduler
from kdseg.seeding import capture_rng_state, restore_rng_state, seed_everything
from kdseg.teachers import Teacher, TeacherSpec, build_teacher
from kdseg.tracking.base import NullTracker, Tracker, flatten_params
from kdseg.trainer_config import OPERATIONAL_KEYS, TrainerConfig

__all__ = [
    "OPERATIONAL_KEYS",
    "NonFiniteLossError",
    "TrainableMethod",
    "Trainer",
    "TrainerConfig",
    "to_device",
]


class TrainableMethod(Protocol):
    """What the Trainer needs from a method (an ``nn.Module`` subclass). Optional: a
    ``teacher_spec() -> TeacherSpec | None`` method (no teacher without it) and the attribute
    ``teacher`` the Trainer sets."""

    teacher: nn.Module | None

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named scalar loss terms, already weighted; the Trainer backpropagates their sum."""
        ...

    def inference_network(self) -> nn.Module:
        """The network that is deployed and evaluated."""
        ...


class NonFiniteLossError(KdsegError, FloatingPointError):
    """A loss term was NaN or infinite; training stops before the bad update."""


def to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors nested in dicts, lists, tuples and dataclasses to ``device``.

    Other objects pass through unchanged.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {f.name: to_device(getattr(batch, f.name), device) for f in fields(batch)}
        return dataclasses.replace(batch, **changes)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def _sum_losses(losses: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum of the loss terms and their float values; rejects malformed and non-finite terms."""
    if not isinstance(losses, Mapping) or not losses:
        raise TypeError(f"training_step(step={step}) must return a non-empty dict of loss tensors")
    for name, value in losses.items():
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise TypeError(f"loss term {name!r} at step {step} is not a scalar tensor")
    if "total" in losses:
        raise ValueError(f"loss term name 'total' is reserved for the sum (step {step})")
    terms = [v.reshape(()) for v in losses.values()]
    numbers = torch.stack([t.detach().float() for t in terms]).tolist()
    values = dict(zip(map(str, losses), numbers, strict=True))
    for name, value in values.items():
        if not math.isfinite(value):
            raise NonFiniteLossError(f"loss term {name!r} is {value} at step {step}")
    total = sum(terms[1:], terms[0])  # no stack: terms may differ in dtype (autocast)
    if not total.requires_grad:
        raise ValueError(f"no loss term requires grad at step {step} (nothing to train)")
    return total, values


class Trainer:
    """Runs ``method`` for ``cfg.iterations`` steps on ``batches(step)``; see :meth:`fit`.

    Args:
        method: an ``nn.Module`` implementing :class:`TrainableMethod`.
        batches: ``batches(step)`` returns the batch of iteration ``step``, deterministically
            (its randomness derived from ``(seed, step)``); tensors are moved to ``cfg.device``.
        cfg: the run's hyper-parameters.
        out_dir: folder of the checkpoint (``checkpoint_last.pt``).
        tracker: receives params, losses, lr, iterations/second and final metrics.
        inputs: the run's bound inputs (:mod:`kdseg.inputs`), for teachers that load from one.
        evaluate: ``evaluate(network) -> {name: value}``, called at the end with each network
            of ``method.evaluation_networks()`` (or the inference network alone) in eval mode
            under ``torch.no_grad()``.
    """

    def __init__(
        self,
        method: nn.Module,
        batches: Callable[[int], Any],
        cfg: TrainerConfig,
        out_dir: str | Path,
        tracker: Tracker | None = None,
        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(method, nn.Module):
            raise TypeError(f"method must be an nn.Module, got {type(method).__name__}")
        for name in ("training_step", "inference_network"):
            if not callable(getattr(method, name, None)):
                raise TypeError(f"{type(method).__name__} has no method {name}()")
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device", f"{cfg.device!r} requested but CUDA is not available")
        self.method, self.batches, self.cfg, self.evaluate = method, batches, cfg, evaluate
        self.out_dir = Path(out_dir)
        self.checkpoint_path = checkpoint_path(self.out_dir)
        self.tracker: Tracker = tracker if tracker is not None else NullTracker()
        self.inputs = dict(inputs or {})
        self.step = 0
        self.teacher: Teacher | None = None
        self._elapsed_before = 0.0  # seconds spent by earlier sessions of a resumed run
        self._start = time.perf_counter()
        self._dirty = False  # True between optimizer.step() and the end of that iteration
        self._boundary = StepBoundary()

    # ------------------------------------------------------------------------- set-up
    def _setup(self, resume: bool) -> None:
        cfg, method = self.cfg, self.method
        seed_everything(cfg.seed)
        method.to(self.device)
        self._stateful = nn.ModuleDict({"method": method})  # modules whose buffers a step moves
        spec_of = getattr(method, "teacher_spec", None)
        spec: TeacherSpec | None = spec_of() if callable(spec_of) else None
        self.teacher = build_teacher(spec, method, self.inputs)
        if self.teacher is not None:
            attach_teacher(method, self.teacher.network)
            moving = self.teacher.moving_module  # e.g. train-mode targets move BN statistics
            if moving is not None:
                self._stateful["teacher"] = moving
        self.optimizer = build_optimizer(method.parameters(), cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.step = 0
        self._elapsed_before = 0.0
        if resume and self.checkpoint_path.is_file():
            self._restore(load_checkpoint(self.checkpoint_path))  # CPU; load_state_dict moves

    def _restore(self, state: dict[str, Any]) -> None:
        if int(state["format"]) < 2 and int(state["step"]) >= self.cfg.iterations:
            return  # the final checkpoint of a finished run (format 1 kept it): not a resume point
        check_resumable(state["config"], self.cfg.to_dict(), self.checkpoint_path, OPERATIONAL_KEYS)
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state["ema"])
        restore_rng_state(state["rng"])
        self.step = int(state["step"])
        self._elapsed_before = float(state.get("elapsed_s", 0.0))

    def save(self, rng: dict[str, Any] | None = None) -> Path:
        """Write the checkpoint of the current step (RNG state ``rng`` or the current one)."""
        save_checkpoint(
            self.checkpoint_path,
            {
                "format": CHECKPOINT_FORMAT,
                "step": self.step,
                "model": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "ema": None if self.teacher is None else self.teacher.state_dict(),
                "rng": rng if rng is not None else capture_rng_state(),
                "config": self.cfg.to_dict(),
                "elapsed_s": self.elapsed_s(),
            },
        )
        return self.checkpoint_path

    def elapsed_s(self) -> float:
        """Wall time of the run so far, seconds, summed over every session of a resumed run."""
        return self._elapsed_before + time.perf_counter() - self._start

    def _save_after_interrupt(self, exc: BaseException) -> None:
        if self._dirty:
            warnings.warn(
                f"{type(exc).__name__} arrived inside the update of step {self.step}; the "
                "checkpoint on disk (if any) is left as it was",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        try:
            with deferred_signals():  # a second signal waits until the checkpoint is on disk
                mid_step = self._boundary.step == self.step  # else the step had completed
                self.save(self._boundary.rollback(self._stateful) if mid_step else None)
        except Exception as save_exc:  # keep the original exception visible
            if str(save_exc) != str(exc):  # (not when saving was what failed)
                exc.add_note(f"no checkpoint saved ({save_exc})")
            return
        exc.add_note(f"checkpoint of step {self.step} saved to {self.checkpoint_path}")

    # -------------------------------------------------------------------------- loop
    def fit(self, resume: bool = True) -> dict[str, float]:
        """Train to ``cfg.iterations`` and return ``evaluate``'s metrics plus ``wall_time_s``
        (seconds, summed over the sessions of a resumed run, evaluation included).

        With ``resume=True`` the checkpoint of an interrupted run in ``out_dir`` is continued
        (bit-exact on the CPU); ``resume=False`` starts from the method's current weights and
        overwrites it. On any exception (``KeyboardInterrupt`` and the ``Terminated`` of SIGTERM
        included) the last completed step is saved first. The checkpoint written when the loop
        ends stays a resume point until the evaluation has succeeded; then it is removed: a
        finished run is not a resume point (a later ``fit`` trains from scratch).
        """
        self._start = time.perf_counter()
        self._setup(resume)
        self.tracker.log_params(flatten_params({"trainer": self.cfg.to_dict()}))
        ran = self.step < self.cfg.iterations
        try:
            self._loop()
            if ran:
                self.save()
        except BaseException as exc:
            self._save_after_interrupt(exc)
            raise
        metrics = self._evaluate()
        metrics["wall_time_s"] = self.elapsed_s()
        self.tracker.log_metrics({f"eval/{k}": v for k, v in metrics.items()}, step=self.step)
        self.checkpoint_path.unlink(missing_ok=True)
        return metrics

    def _loop(self) -> None:
        cfg, method = self.cfg, self.method
        show = cfg.progress and sys.stderr.isatty()
        bar = tqdm(total=cfg.iterations, initial=self.step, disable=not show, desc="train")
        sums: dict[str, float] = {}
        count, window_start = 0, time.perf_counter()
        method.train()
        try:
            while self.step < cfg.iterations:
                step = self.step
                self._boundary.capture(step, self._stateful)
                batch = to_device(self.batches(step), self.device)
                total, values = _sum_losses(method.training_step(batch, step), step)
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                logged = {f"loss/{k}": v for k, v in values.items()}
                logged["loss/total"] = math.fsum(values.values())
                logged["lr"] = float(self.optimizer.param_groups[0]["lr"])
                with deferred_signals():  # SIGINT/SIGTERM wait until the update is complete
                    self._dirty = True
                    if cfg.grad_clip is not None:
                        params = [p for g in self.optimizer.param_groups for p in g["params"]]
                        norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                        logged["grad_norm"] = float(norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    if self.teacher is not None:
                        logged.update(self.teacher.after_step(method))
                    self.step = step + 1
                    self._dirty = False

                for k, v in logged.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                bar.update(1)
                bar.set_postfix(loss=f"{logged['loss/total']:.4g}", refresh=False)
                if self.step % cfg.log_every == 0 or self.step == cfg.iterations:
                    now = time.perf_counter()
                    metrics = {k: s / count for k, s in sums.items()}
                    metrics["it_per_s"] = count / max(now - window_start, 1e-9)
                    self.tracker.log_metrics(metrics, step=self.step)
                    sums, count, window_start = {}, 0, now
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    if self.step < cfg.iterations:
                        self.save()
        finally:
            bar.close()

    def _evaluate(self) -> dict[str, float]:
        """``evaluate`` of every network the method names (``evaluation_networks()``, when it
        has one): the deployed network's metrics unprefixed, each network's as ``name/key``."""
        if self.evaluate is None:
            return {}
        deployed = self.method.inference_network()
        nets = getattr(self.method, "evaluation_networks", dict)() or {"deployed": deployed}
        out: dict[str, float] = {}
        for name, net in nets.items():
            result = self._evaluate_one(net)
            out.update({f"{name}/{k}": v for k, v in result.items()})
            if net is deployed:
                out.update(result)
        return out

    def _evaluate_one(self, net: nn.Module) -> dict[str, float]:
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                result = self.evaluate(net)  # type: ignore[misc]
        finally:
            net.train(was_training)
        if not isinstance(result, Mapping):
            raise TypeError(f"evaluate() must return a mapping, got {type(result).__name__}")
        return {str(k): float(v) for k, v in result.items()}
