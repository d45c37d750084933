"""MiB (Cermelli et al. 2020): unbiased cross-entropy and unbiased distillation."""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.continual.recipes import Recipe
from kdseg.continual.step import StepContext
from kdseg.methods.base import option, register_method

from .base import ContinualMethod, ContinualOptions


@dataclass(frozen=True)
class MiBOptions(ContinualOptions):
    kd_weight: float = option(10.0, "weight of the unbiased distillation [CODE --loss_kd 10]")


@register_method("mib")
class MiB(ContinualMethod):
    """MiB: unbiased CE (background = background + old classes) + ``kd_weight`` x unbiased KD
    (the new model's background = background + new classes); MiB's balanced initialisation."""

    preset = "mib"
    Options = MiBOptions
    opts: MiBOptions

    def make_recipe(self, ctx: StepContext) -> Recipe:
        return self.override(super().make_recipe(ctx), kd=self.opts.kd_weight)
