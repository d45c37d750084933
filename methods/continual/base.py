"""The continual 2D methods' common part: options, the step they train, the old model.

A continual method trains one step of a class-incremental task (:mod:`kdseg.run_continual`).
Before training, the run calls :meth:`ContinualMethod.prepare` with the step (task and index),
its bound inputs and a pass over the step's training batches. At step ``t >= 1`` the method
requires the ``old_model`` input (the previous step's final network, :mod:`kdseg.inputs.
old_model`): it starts from its weights, grows the classifier by the step's classes (MiB's
balanced initialisation or PyTorch's default, as the method's official preset) and declares a
frozen teacher loaded from the same input, so the Trainer attaches the old model as
``self.teacher`` (eval mode, no gradients, never updated). At step 0 there is no old model and
every method is plain cross-entropy, as the official trainers.

The loss of a batch is the official recipe (:func:`kdseg.continual.recipes.loss_terms`): a
method class names its preset (``preset``: a key of :data:`kdseg.continual.METHOD_WEIGHTS`) and
overrides weights through its options. Batches are :class:`kdseg.continual.data.ImageBatch`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from kdseg.continual import EntropyStatistics, entropy_pseudo_labels, loss_terms, recipe
from kdseg.continual.data import ImageBatch
from kdseg.continual.presets import PODWeights
from kdseg.continual.recipes import Recipe
from kdseg.continual.segmenter import ImageSegmenter, image_segmenter_from_spec
from kdseg.continual.step import FAMILY, StepContext
from kdseg.errors import ConfigError
from kdseg.methods.base import BaseMethod, TeacherSpec, option

CLASSIFIER_INITS: tuple[str, ...] = ("balanced", "random")
REDUCTIONS: tuple[str, ...] = ("all_pixels", "valid_pixels")


@dataclass(frozen=True)
class ContinualOptions:
    """Options shared by the continual 2D methods."""

    backbone: str = option(
        "deeplabv3_resnet101",
        "registered image backbone (kdseg backbones): deeplabv3_resnet101 [CODE], cseg_tiny "
        "(the CPU default scale)",
    )
    images_per_batch: int | None = option(
        None,
        "training images per iteration; None = the scale's for the step (paper VOC: 16 at step "
        "0, 24 later [CODE: 2 GPUs x 8 / 12])",
    )
    classifier_init: str | None = option(
        None,
        "initialisation of a step's new classes: 'balanced' (MiB's init_new_classifier) or "
        "'random' (PyTorch's); None = the method's official preset",
    )
    reduction: str = option(
        "all_pixels",
        "classification loss mean: 'all_pixels' (over B*H*W, ignored pixels as 0 [CODE]) or "
        "'valid_pixels' (over the labelled pixels)",
    )

    def __post_init__(self) -> None:
        if self.images_per_batch is not None and self.images_per_batch < 1:
            raise ConfigError("images_per_batch", f"must be >= 1, got {self.images_per_batch}")
        if self.classifier_init is not None and self.classifier_init not in CLASSIFIER_INITS:
            raise ConfigError(
                "classifier_init", f"must be one of {CLASSIFIER_INITS} or None, got "
                f"{self.classifier_init!r}"
            )  # fmt: skip
        if self.reduction not in REDUCTIONS:
            raise ConfigError("reduction", f"must be one of {REDUCTIONS}, got {self.reduction!r}")


Calibration = Callable[[], Iterable[ImageBatch]]
"""One pass over the step's training batches (PLOP's pass before training)."""


class ContinualMethod(BaseMethod):
    """Base class of the continual 2D methods (family ``"image_continual"``).

    Class attributes:
        preset: the official recipe (key of :data:`kdseg.continual.METHOD_WEIGHTS`).
        single_step: the method trains every class of the dataset in one step (joint training,
            the upper bound): the workflow runs it on the ``offline`` task and reads each
            task's columns from its per-class IoU.
    """

    family: ClassVar[str] = FAMILY
    requires: ClassVar[frozenset[str]] = frozenset({"old_model"})
    Options: ClassVar[type] = ContinualOptions
    preset: ClassVar[str] = "ft"
    single_step: ClassVar[bool] = False
    opts: ContinualOptions

    def __init__(self, opts: ContinualOptions, num_classes: int) -> None:
        super().__init__(opts, num_classes)
        self.student: ImageSegmenter = ImageSegmenter(opts.backbone, [num_classes])
        self.context: StepContext | None = None
        self.recipe: Recipe | None = None
        self.register_buffer("pseudo_thresholds", torch.zeros(0))
        self.register_buffer("max_entropy", torch.zeros(()))

    # ---------------------------------------------------------------- the step and its recipe
    def make_recipe(self, ctx: StepContext) -> Recipe:
        """The official recipe of :attr:`preset` for the step's dataset and task; subclasses
        apply their options' overrides (:meth:`override`)."""
        prev, novel = self.lgkd_override()
        return recipe(
            self.preset, ctx.dataset, ctx.task.name, prev, novel, reduction=self.opts.reduction
        )

    def lgkd_override(self) -> tuple[float | None, float | None]:
        """Explicit LGKD ``(prev, novel)`` weights, or ``(None, None)`` for the setting's
        official script (only the LGKD methods have them)."""
        return None, None

    @staticmethod
    def override(rec: Recipe, **weights: float | None) -> Recipe:
        """``rec`` with the given :class:`~kdseg.continual.presets.MethodWeights` fields
        replaced (``None`` values keep the preset)."""
        changes = {k: v for k, v in weights.items() if v is not None}
        return dataclasses.replace(rec, weights=dataclasses.replace(rec.weights, **changes))

    @staticmethod
    def override_pod(rec: Recipe, features: float | None, logits: float | None) -> Recipe:
        """``rec`` with POD factors replaced where given."""
        if rec.pod is None:
            return rec
        pod = PODWeights(
            rec.pod.features if features is None else features,
            rec.pod.logits if logits is None else logits,
        )
        return dataclasses.replace(rec, pod=pod)

    def prepare(
        self,
        ctx: StepContext,
        inputs: Mapping[str, Any],
        calibration: Calibration | None = None,
    ) -> None:
        """Set up the step: the recipe, the student (at ``t >= 1`` the old model's weights and
        the classifier grown by the step's classes) and, for PLOP's pseudo-labels, the
        per-class entropy thresholds from one pass of the old model over ``calibration``."""
        self.context = ctx
        self.recipe = self.make_recipe(ctx)
        channels = ctx.classes_per_step
        if ctx.step == 0:
            self.student = ImageSegmenter(self.opts.backbone, channels)
            return
        bound = inputs.get("old_model")
        if self.single_step or bound is None or not getattr(bound, "available", False):
            raise ConfigError(
                f"{self.name}.old_model",
                f"step {ctx.step} of {ctx.dataset} {ctx.task.name} needs the previous step's "
                "model" + (" (this method trains one step: use the offline task)"
                           if self.single_step else ""),
            )  # fmt: skip
        old = bound.load_network()
        if old.backbone_name != self.opts.backbone:
            raise ConfigError(
                f"{self.name}.backbone",
                f"is {self.opts.backbone!r} but the old model is a {old.backbone_name!r}",
            )
        if old.classes_per_step != channels[:-1]:
            raise ConfigError(
                f"{self.name}.old_model",
                f"has classes per step {old.classes_per_step}, step {ctx.step} needs "
                f"{channels[:-1]}",
            )
        student = image_segmenter_from_spec(old.spec())
        student.load_state_dict(old.state_dict())
        init = self.opts.classifier_init or (
            "balanced" if self.recipe.weights.init_balanced else "random"
        )
        student.grow(channels[-1], init=init)
        self.student = student
        if self.recipe.needs_pseudo_labels:
            self._pseudo_thresholds(old, channels, calibration)

    @torch.no_grad()
    def _pseudo_thresholds(
        self, old: ImageSegmenter, channels: list[int], calibration: Calibration | None
    ) -> None:
        if calibration is None:
            raise ConfigError(f"{self.name}.calibration", "PLOP's thresholds need the step's data")
        stats = EntropyStatistics(sum(channels))
        old.eval()
        for batch in calibration():
            stats.update(old(batch.images).logits, batch.labels)
        median = getattr(self.opts, "plop_median", "official")
        floor = getattr(self.opts, "pseudo_floor", 0.001)
        self.pseudo_thresholds = stats.thresholds(median=median, floor=floor)
        self.max_entropy = stats.max_entropy.clone()

    def teacher_spec(self) -> TeacherSpec | None:
        """The old model, frozen, at steps ``t >= 1``; no teacher at step 0."""
        if self.context is None or self.context.step == 0:
            return None
        return TeacherSpec("frozen", {"input": "old_model"})

    # ---------------------------------------------------------------------------- training
    def training_step(self, batch: ImageBatch, step: int) -> dict[str, torch.Tensor]:
        """The recipe's weighted terms (``ce``, ``kd``, ``feature``, ``pod``) of one batch."""
        if self.recipe is None:
            raise ConfigError(f"{self.name}.prepare", "call prepare() with the step first")
        new = self.student(batch.images)
        old = None
        pseudo = None
        if self.teacher is not None:
            with torch.no_grad():
                old = self.teacher(batch.images)
            if self.recipe.needs_pseudo_labels:
                pseudo = entropy_pseudo_labels(
                    batch.labels, old.logits, self.pseudo_thresholds, self.max_entropy
                )
        return loss_terms(self.recipe, new, old, batch.labels, pseudo)

    def inference_network(self) -> ImageSegmenter:
        """The deployed network: the student with the grown classifier."""
        return self.student

    def recipe_record(self) -> dict[str, Any]:
        """The resolved recipe (weights, POD factors, LGKD weights) for the run record."""
        if self.recipe is None:
            return {}
        return dataclasses.asdict(self.recipe)
