"""``mix_partners``: another scan per cloud, for mixing augmentations (FOVMix).

Every cloud of a batch gets ``extras["partner"]``: a cloud of another frame, drawn after the
batch's own clouds with the batch's generator (so the batch itself does not change). A labelled
cloud's partner is another labelled scan (labels kept) when the budget has two or more, else an
unlabelled one; an unlabelled cloud's partner is another unlabelled scan when there are two or
more, else a labelled one with its labels hidden. A cloud is never its own partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from kdseg.errors import ConfigError

from .base import BatchSampler, BoundInput, ExampleContext, InputProvider, RunContext
from .registry import PROVIDERS

if TYPE_CHECKING:
    from kdseg.budgets import FrameId
    from kdseg.lidar_data import Cloud, LidarBatch

PARTNER = "partner"


class BoundMixPartners(BoundInput):
    def batch_extras(
        self, batch: LidarBatch, sampler: BatchSampler, rng: np.random.Generator
    ) -> None:
        labelled, unlabelled = sampler.labelled_pool, sampler.unlabelled_pool
        for cloud in batch.labelled:
            cloud.extras[PARTNER] = _partner(
                sampler, cloud.frame, (labelled, False), (unlabelled, True), rng
            )
        for cloud in batch.unlabelled:
            cloud.extras[PARTNER] = _partner(
                sampler, cloud.frame, (unlabelled, True), (labelled, True), rng
            )


def _partner(
    sampler: BatchSampler,
    frame: FrameId,
    first: tuple[Sequence[FrameId], bool],
    second: tuple[Sequence[FrameId], bool],
    rng: np.random.Generator,
) -> Cloud:
    """A cloud of another frame: from ``first`` = (pool, hide labels) when it holds another
    frame, else from ``second``."""
    for pool, hide in (first, second):
        others = [f for f in pool if f != frame]
        if others:
            return sampler.draw(others, rng, hide)
    raise ValueError(f"no mixing partner for {frame}: it is the only training scan")


@PROVIDERS.register("mix_partners")
class MixPartners(InputProvider):
    help = "another training scan for every cloud of a batch (never the scan itself)"

    def bind(self, value: str | None, ctx: RunContext) -> BoundMixPartners:
        if value:
            raise ConfigError(f"inputs.{self.name}", f"takes no value, got {value!r}")
        split = ctx.split
        if len(set(split.labelled) | set(split.unlabelled)) < 2:
            raise ConfigError(
                f"inputs.{self.name}",
                f"split {split.dataset}/{split.budget}: mixing partners need at least two "
                "training scans",
            )
        return BoundMixPartners(self.name)

    def example(self, ctx: ExampleContext) -> BoundMixPartners:
        return BoundMixPartners(self.name)
