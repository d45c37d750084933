"""The 2D teacher's two training phases as Trainer methods (one training loop in the suite).

:class:`SourceTraining` (supervised CE on augmented source crops) and :class:`SelfTraining`
(CE on source crops plus CE on the EMA teacher's class-thresholded pseudo-labels of target
crops, :mod:`kdseg.image2d.adapt`) are methods in the sense of :class:`kdseg.trainer.Trainer`:
they turn a batch into loss terms; the Trainer owns the AdamW optimizer, the poly(0.9) learning
rate, the EMA teacher (``teacher_spec``), checkpoints (an interrupted teacher resumes exactly),
seeding and the log. :func:`fit_phase` runs one phase in its own folder (``<out>/source`` and
``<out>/adaptation``: ``run_config.json``, ``train_log.jsonl``, the checkpoint while unfinished).
Their statistics (first and last loss, pseudo-label fraction, thresholds) are registered buffers,
so a resumed phase reports the same numbers as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdseg import IGNORE_INDEX
from kdseg.run_folder import RUN_LOG, guard_resume
from kdseg.teachers import TeacherSpec
from kdseg.tracking.jsonl import JsonlTracker
from kdseg.trainer import Trainer
from kdseg.trainer_config import TrainerConfig

from .options import TeacherOptions

Batch2D = tuple[torch.Tensor, torch.Tensor]


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean CE over labelled pixels; ``logits`` ``(B, K, H, W)``, ``labels`` ``(B, H, W)``
    (255 = ignore). Zero (with a gradient path) when no pixel is labelled."""
    if not (labels != IGNORE_INDEX).any():
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)


class _LossRecord(nn.Module):
    """Registered buffers of the first and last total loss of a phase (float32, as computed)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("first_loss", torch.tensor(float("nan")))
        self.register_buffer("last_loss", torch.tensor(float("nan")))

    def record(self, total: torch.Tensor) -> None:
        value = total.detach().reshape(())
        if torch.isnan(self.first_loss):
            self.first_loss.copy_(value)
        self.last_loss.copy_(value)

    def first_last(self) -> list[float]:
        if torch.isnan(self.first_loss):
            return []
        return [float(self.first_loss), float(self.last_loss)]


class SourceTraining(_LossRecord):
    """Supervised training of the 2D network ``model`` on labelled source crops.

    Batch: ``(images (B, 3, H, W) float in [0, 1], labels (B, H, W) int64)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.teacher: nn.Module | None = None

    def training_step(self, batch: Batch2D, step: int) -> dict[str, torch.Tensor]:
        images, labels = batch
        self.model.train()
        loss = supervised_loss(self.model(images)["logits"], labels)
        self.record(loss)
        return {"ce": loss}

    def inference_network(self) -> nn.Module:
        return self.model


class SelfTraining(_LossRecord):
    """EMA-teacher self-training of ``model`` on the target images (:mod:`kdseg.image2d.adapt`
    describes the recipe). Batch: ``((source images, labels), (clean, jittered) target crops)``.
    The deployed network is the EMA teacher.

    Buffers: ``thresholds (K,)`` (refreshed every ``threshold_refresh`` steps from the EMA
    teacher on every target image), ``kept (adapt_iters,)`` (the fraction of target pixels that
    got a pseudo-label at each step).
    """

    def __init__(
        self,
        model: nn.Module,
        target: torch.Tensor,
        options: TeacherOptions,
        thresholds_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
        pseudo_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> None:
        super().__init__()
        self.model = model
        self.teacher: nn.Module | None = None
        self.options = options
        self._target = target  # not a buffer: the images, reloaded, are not run state
        self._thresholds_fn, self._pseudo_fn = thresholds_fn, pseudo_fn
        self.register_buffer("thresholds", torch.zeros(int(model.num_classes)))
        self.register_buffer("kept", torch.zeros(options.adapt_iters, dtype=torch.float64))

    def teacher_spec(self) -> TeacherSpec:
        """The EMA of ``model`` (no warm-up; reference buffer semantics, the kind's default)."""
        return TeacherSpec(
            "ema", {"momentum": self.options.ema_momentum, "warmup": False, "source": "model"}
        )

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        (xs, ys), (clean, strong) = batch
        o = self.options
        assert self.teacher is not None, "the Trainer attaches the EMA teacher"
        if step % o.threshold_refresh == 0:
            self.thresholds.copy_(self._thresholds_fn(self.teacher, self._target))
        with torch.no_grad():
            yt = self._pseudo_fn(self.teacher(clean)["logits"].softmax(dim=1), self.thresholds)
        student_in = strong if o.student_jitter else clean
        self.model.train()
        logits = self.model(torch.cat([xs, student_in]))["logits"]
        b = xs.shape[0]
        source = o.source_weight * supervised_loss(logits[:b], ys)
        pseudo = o.pseudo_weight * supervised_loss(logits[b:], yt)
        self.record(source.detach() + pseudo.detach())  # the value the sum will have
        self.kept[step] = float((yt != IGNORE_INDEX).float().mean())
        return {"source": source, "pseudo": pseudo}

    def inference_network(self) -> nn.Module:
        assert self.teacher is not None
        return self.teacher

    def kept_fraction(self) -> float:
        """Mean fraction of target pixels with a pseudo-label over the steps."""
        import numpy as np

        return float(np.mean(self.kept.tolist())) if self.kept.numel() else 0.0


def fit_phase(
    method: nn.Module,
    batches: Callable[[int], Any],
    options: TeacherOptions,
    iterations: int,
    lr: float,
    out_dir: Path,
) -> Trainer:
    """Train ``method`` for ``iterations`` AdamW steps at ``lr`` with the poly(0.9) decay
    ``lr (1 - k/T)^0.9``, through the Trainer, in ``out_dir`` (resuming an interrupted phase of
    the same configuration); returns the Trainer (its teacher, if any, is the EMA network)."""
    cfg = TrainerConfig(
        iterations=iterations,
        optimizer="adamw",
        lr=lr,
        weight_decay=options.weight_decay,
        schedule="poly",
        poly_power=0.9,
        checkpoint_every=100,
        log_every=10,
        seed=options.seed,
    )
    trainer = Trainer(method, batches, cfg, out_dir, tracker=JsonlTracker(out_dir / RUN_LOG))
    resolved = {"phase": type(method).__name__, "trainer": cfg.to_dict(), **options.to_dict()}
    resume = guard_resume(out_dir, trainer.checkpoint_path, resolved)
    trainer.fit(resume=resume)
    return trainer
