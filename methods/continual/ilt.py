"""ILT (Michieli & Zanuttigh 2019): LwF's output distillation plus feature distillation."""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.continual.recipes import Recipe
from kdseg.continual.step import StepContext
from kdseg.methods.base import option, register_method

from .base import ContinualMethod, ContinualOptions


@dataclass(frozen=True)
class ILTOptions(ContinualOptions):
    kd_weight: float = option(100.0, "weight of the output distillation [CODE --loss_kd 100]")
    feature_weight: float = option(
        100.0, "weight of the MSE between new and old encoder outputs [CODE --loss_de 100]"
    )


@register_method("ilt")
class ILT(ContinualMethod):
    """ILT: CE + ``kd_weight`` x KD (as LwF) + ``feature_weight`` x MSE of the encoder output
    (``features['body']``) against the old model's; random init."""

    preset = "ilt"
    Options = ILTOptions
    opts: ILTOptions

    def make_recipe(self, ctx: StepContext) -> Recipe:
        rec = super().make_recipe(ctx)
        return self.override(rec, kd=self.opts.kd_weight, feature=self.opts.feature_weight)
