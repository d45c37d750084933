"""LGKD (label-guided knowledge distillation) on top of MiB and of PLOP."""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.continual.recipes import Recipe
from kdseg.continual.step import StepContext
from kdseg.methods.base import option, register_method

from .base import ContinualMethod, ContinualOptions
from .plop import PLOP, PLOPOptions


@dataclass(frozen=True)
class LGKDFields:
    lgkd_weight: float = option(1.0, "weight of the LGKD term [CODE --loss_kd 1]")
    lgkd_prev: float | None = option(
        None, "weight of background/old pixels; None = the setting's script (VOC 15-5: 5)"
    )
    lgkd_novel: float | None = option(
        None,
        "weight of novel pixels; None = the setting's script (VOC 15-5: 1; VOC 15-1: 0, the "
        "script's quirk that switches the label-guided term off)",
    )


def _with_lgkd(rec: Recipe, opts: LGKDFields) -> Recipe:
    return ContinualMethod.override(rec, kd=opts.lgkd_weight)


@dataclass(frozen=True)
class MiBLGKDOptions(LGKDFields, ContinualOptions):
    pass


@register_method("mib_lgkd")
class MiBLGKD(ContinualMethod):
    """MiB + LGKD: MiB's unbiased CE and balanced init, LGKD replacing the unbiased KD (the
    label-guided target on the stride-os logits, per-setting prev/novel weights); our
    composition, the path LGKD's trainer takes with --unce --lgkd --init_balanced."""

    preset = "mib_lgkd"
    Options = MiBLGKDOptions
    opts: MiBLGKDOptions

    def make_recipe(self, ctx: StepContext) -> Recipe:
        return _with_lgkd(super().make_recipe(ctx), self.opts)

    def lgkd_override(self) -> tuple[float | None, float | None]:
        return self.opts.lgkd_prev, self.opts.lgkd_novel


@dataclass(frozen=True)
class PLOPLGKDOptions(LGKDFields, PLOPOptions):
    pass


@register_method("plop_lgkd")
class PLOPLGKD(PLOP):
    """PLOP + LGKD (LGKD's ``--method LGKD``): PLOP's pseudo-labelled CE and POD (LGKD's POD
    factors) plus the label-guided distillation with the setting's prev/novel weights."""

    preset = "plop_lgkd"
    Options = PLOPLGKDOptions
    opts: PLOPLGKDOptions

    def make_recipe(self, ctx: StepContext) -> Recipe:
        return _with_lgkd(super().make_recipe(ctx), self.opts)

    def lgkd_override(self) -> tuple[float | None, float | None]:
        return self.opts.lgkd_prev, self.opts.lgkd_novel
