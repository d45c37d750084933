"""The one training loop of the suite (iteration-based; see docs/training.md).

The Trainer owns the optimizer, LR schedule, gradient clipping, EMA teacher, seeding, checkpoints,
progress bar and logging. A method only turns a batch into named, weighted loss terms.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
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
from kdseg.ema import EMA_BUFFERS, EmaTeacher, attach_teacher
from kdseg.errors import ConfigError, KdsegError
from kdseg.interrupts import deferred_signals
from kdseg.optim import build_optimizer, build_scheduler, check_optim_config
from kdseg.seeding import capture_rng_state, restore_rng_state, seed_everything
from kdseg.tracking import NullTracker, Tracker, flatten_params


class TrainableMethod(Protocol):
    """What the Trainer needs from a method (an ``nn.Module`` subclass)."""

    ema_source: nn.Module | None
    teacher: nn.Module | None

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named scalar loss terms, already weighted; the Trainer backpropagates their sum."""
        ...

    def inference_network(self) -> nn.Module:
        """The network that is deployed and evaluated."""
        ...


class NonFiniteLossError(KdsegError, FloatingPointError):
    """A loss term was NaN or infinite; training stops before the bad update."""


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


# Fields that may change between a run and its resumption without changing its numbers.
OPERATIONAL_KEYS = frozenset({"checkpoint_every", "log_every", "device", "progress"})


@dataclass(frozen=True)
class TrainerConfig:
    """Hyper-parameters of one training run; validated on construction (``ConfigError``)."""

    iterations: int = _f(1000, "number of optimizer steps of the run (iterations)")
    optimizer: str = _f("adamw", "'adamw' or 'sgd'")
    lr: float = _f(1e-3, "peak learning rate (per unit gradient)")
    weight_decay: float = _f(1e-2, "decoupled (AdamW) or L2 (SGD) weight decay coefficient")
    momentum: float = _f(0.9, "SGD momentum in [0, 1) (unused by AdamW)")
    nesterov: bool = _f(False, "Nesterov momentum (SGD with momentum > 0 only)")
    schedule: str = _f("constant", "LR schedule: 'constant', 'onecycle', 'cosine' or 'poly'")
    warmup_iters: int = _f(0, "warm-up iterations (linear; onecycle: the cosine rise)")
    min_lr: float = _f(0.0, "final learning rate of 'cosine' and 'poly' (absolute)")
    div_factor: float = _f(25.0, "'onecycle' starts at lr / div_factor")
    final_div_factor: float = _f(1e4, "'onecycle' ends at lr / (div_factor * final_div_factor)")
    poly_power: float = _f(0.9, "exponent of the 'poly' schedule")
    grad_clip: float | None = _f(None, "max global L2 norm of the gradients, None = no clipping")
    ema_momentum: float | None = _f(None, "EMA teacher momentum m in [0, 1], None = no teacher")
    ema_warmup: bool = _f(False, "SSLSS warm-up: m_k = min(1 - 1/(k+1), m) at update k")
    ema_buffers: str = _f(
        "own",
        "EMA teacher buffers: 'own' (average parameters only; the teacher makes its targets in "
        "train mode, BatchNorm on batch statistics, as mmdet3d's MeanTeacherHook with "
        "skip_buffer=True, SSLSS and Tarvainen & Valpola) or 'ema' (average float buffers too and "
        "make targets in eval mode with the averaged BatchNorm statistics)",
    )
    checkpoint_every: int = _f(1000, "save a checkpoint every N iterations (0 = only on exit)")
    log_every: int = _f(50, "log losses, lr and iterations/second every N iterations")
    seed: int = _f(0, "seed of python, numpy and torch, in [0, 2**32)")
    device: str = _f("cpu", "torch device string, e.g. 'cpu', 'cuda', 'cuda:1'")
    progress: bool = _f(True, "show a tqdm progress bar (only when stderr is a TTY)")

    def __post_init__(self) -> None:
        kinds = {"int": int, "float": (int, float), "bool": bool, "str": str}
        for f in fields(self):
            value = getattr(self, f.name)
            base, _, optional = str(f.type).partition(" | ")
            if value is None and optional == "None":
                continue
            if isinstance(value, bool) != (base == "bool") or not isinstance(value, kinds[base]):
                got = f"{type(value).__name__} {value!r}"
                raise ConfigError(f.name, f"expected {f.type}, got {got}")
        if self.iterations < 1:
            raise ConfigError("iterations", f"must be >= 1, got {self.iterations}")
        check_optim_config(self)
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError("grad_clip", f"must be > 0 or None, got {self.grad_clip}")
        if self.ema_buffers not in EMA_BUFFERS:
            raise ConfigError(
                "ema_buffers", f"must be one of {EMA_BUFFERS}, got {self.ema_buffers!r}"
            )
        if self.ema_momentum is not None and not 0 <= self.ema_momentum <= 1:
            raise ConfigError("ema_momentum", f"must be in [0, 1] or None, got {self.ema_momentum}")
        if self.checkpoint_every < 0:
            raise ConfigError("checkpoint_every", f"must be >= 0, got {self.checkpoint_every}")
        if self.log_every < 1:
            raise ConfigError("log_every", f"must be >= 1, got {self.log_every}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError("seed", f"must be in [0, 2**32), got {self.seed}")
        try:
            torch.device(self.device)
        except RuntimeError as exc:
            raise ConfigError("device", f"not a torch device: {exc}") from None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainerConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys raise ``ConfigError``."""
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(str(key), f"unknown trainer key (known: {sorted(known)})")
        return cls(**dict(values))

    @classmethod
    def help(cls) -> dict[str, str]:
        """Field name -> help text (with units)."""
        return {f.name: f.metadata["help"] for f in fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self.step = 0
        self.ema: EmaTeacher | None = None
        self._elapsed_before = 0.0  # seconds spent by earlier sessions of a resumed run
        self._start = time.perf_counter()
        self._dirty = False  # True between optimizer.step() and the end of that iteration
        self._boundary = StepBoundary()

    # ------------------------------------------------------------------------- set-up
    def _setup(self, resume: bool) -> None:
        cfg, method = self.cfg, self.method
        seed_everything(cfg.seed)
        method.to(self.device)
        self.ema = None
        self._stateful = nn.ModuleDict({"method": method})  # modules whose buffers a step moves
        if cfg.ema_momentum is not None:
            source = getattr(method, "ema_source", None)
            if not isinstance(source, nn.Module):
                raise ConfigError("ema_momentum", "is set but method.ema_source is no nn.Module")
            self.ema = EmaTeacher(source, cfg.ema_momentum, cfg.ema_warmup, cfg.ema_buffers)
            attach_teacher(method, self.ema.teacher)
            self._stateful["teacher"] = self.ema.teacher  # train-mode targets move its BN stats
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
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
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
                "ema": None if self.ema is None else self.ema.state_dict(),
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
                    if self.ema is not None:
                        logged["ema_momentum"] = self.ema.update(method.ema_source)
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
