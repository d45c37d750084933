"""PLOP (Douillard et al. 2021): local POD and entropy pseudo-labels, as the official code."""

from __future__ import annotations

from dataclasses import dataclass

from kdseg.continual.pseudo import MEDIAN_MODES, THRESHOLD_FLOOR
from kdseg.continual.recipes import Recipe
from kdseg.continual.step import StepContext
from kdseg.errors import ConfigError
from kdseg.methods.base import option, register_method

from .base import ContinualMethod, ContinualOptions


@dataclass(frozen=True)
class PLOPOptions(ContinualOptions):
    pod_features: float | None = option(
        None, "POD factor of the feature layers; None = the preset's [CODE 0.01]"
    )
    pod_logits: float | None = option(
        None, "POD factor of the logits layer; None = the preset's [CODE 0.0005]"
    )
    plop_median: str = option(
        "official",
        "per-class entropy threshold: 'official' (find_median as released, index-sum quirk "
        "included) or 'corrected' (the histogram median)",
    )
    pseudo_floor: float = option(
        THRESHOLD_FLOOR, "lowest per-class entropy threshold [CODE --threshold 0.001]"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.plop_median not in MEDIAN_MODES:
            raise ConfigError(
                "plop_median", f"must be one of {MEDIAN_MODES}, got {self.plop_median!r}"
            )


@register_method("plop")
class PLOP(ContinualMethod):
    """PLOP: CE on entropy pseudo-labels (old model's prediction on background pixels below
    the per-class median entropy, 255 elsewhere) x the per-image adaptive factor, plus local
    POD on the 4 stages, the pre-logits and the small logits; balanced initialisation."""

    preset = "plop"
    Options = PLOPOptions
    opts: PLOPOptions

    def make_recipe(self, ctx: StepContext) -> Recipe:
        rec = super().make_recipe(ctx)
        return self.override_pod(rec, self.opts.pod_features, self.opts.pod_logits)
