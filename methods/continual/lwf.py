"""Learning without Forgetting (Li & Hoiem 2017) as MiB's code runs it for segmentation."""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.continual.recipes import Recipe
from kdseg.continual.step import StepContext
from kdseg.methods.base import option, register_method

from .base import ContinualMethod, ContinualOptions


@dataclass(frozen=True)
class LwFOptions(ContinualOptions):
    kd_weight: float = option(100.0, "weight of the output distillation [CODE --loss_kd 100]")


@register_method("lwf")
class LwF(ContinualMethod):
    """LwF: CE + ``kd_weight`` x KD of the old model's softmax on the old channels (new logits
    cut to the old channels and re-normalised, divided by their number); random init."""

    preset = "lwf"
    Options = LwFOptions
    opts: LwFOptions

    def make_recipe(self, ctx: StepContext) -> Recipe:
        return self.override(super().make_recipe(ctx), kd=self.opts.kd_weight)
