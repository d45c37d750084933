"""``features_2d``: the 2D teacher's cached per-point features (IGNet's guidance)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kdseg import IGNORE_INDEX
from kdseg.guidance import GuidanceStore
from kdseg.jobs import FEATURE_MANIFEST, fill

from .base import BoundInput, ExampleContext, InputProvider, JobContext, RunContext
from .registry import PROVIDERS

if TYPE_CHECKING:
    from kdseg.budgets import FrameId


class BoundFeatures2D(BoundInput):
    """Extras of every cloud: ``features_2d (N, C)`` float32 teacher features (zeros outside
    the image), ``valid_2d (N,)`` bool (the point projects into the camera image) and
    ``pred_2d (N,)`` int64 teacher classes (255 where not valid)."""

    point_keys = ("features_2d", "valid_2d", "pred_2d")

    def __init__(self, name: str, store: GuidanceStore | None, feature_dim: int) -> None:
        super().__init__(name)
        self.store = store
        self.feature_dim = feature_dim

    def record(self) -> dict[str, Any]:
        if self.store is None:
            return {"example": True}
        return {"dir": str(self.store.root), "teacher_sha256": self.store.teacher_sha256}

    def cloud_extras(self, frame: FrameId, points: np.ndarray) -> dict[str, Any]:
        if self.store is None:
            return example_guidance(points, self.feature_dim, int(frame[1]))
        g = self.store.get(frame, points.shape[0])
        return {
            "features_2d": torch.from_numpy(g.features),
            "valid_2d": torch.from_numpy(g.valid),
            "pred_2d": torch.from_numpy(g.pred),
        }


def example_guidance(points: np.ndarray, channels: int, seed: int) -> dict[str, Any]:
    """Synthetic guidance: the points in a 90° front sector are "in the image", with random
    features and classes (for tests)."""
    gen = torch.Generator().manual_seed(seed)
    pts = torch.as_tensor(points)
    n = pts.shape[0]
    valid = torch.atan2(pts[:, 1], pts[:, 0]).abs() < np.pi / 4
    feats = torch.randn(n, channels, generator=gen) * valid[:, None]
    pred = torch.where(valid, torch.randint(0, 19, (n,), generator=gen), IGNORE_INDEX)
    return {"features_2d": feats, "valid_2d": valid, "pred_2d": pred}


@PROVIDERS.register("features_2d")
class Features2D(InputProvider):
    help = (
        "per-point features of a frozen 2D teacher (kdseg teacher + kdseg features), aligned with "
        "each scan's points"
    )
    value_help = "folder of a 2D feature cache (its manifest.json is written by kdseg features)"

    def rule_inputs(self, ctx: JobContext) -> dict[str, str]:
        return {"manifest": fill(FEATURE_MANIFEST, scale=ctx.scale, dataset=ctx.job.dataset)}

    def cli_value(self, paths: Mapping[str, str]) -> str | None:
        return str(Path(paths["manifest"]).parent)

    def bind(self, value: str | None, ctx: RunContext) -> BoundFeatures2D:
        store = GuidanceStore(self.need_value(value))  # fails early, naming the manifest
        return BoundFeatures2D(self.name, store, store.feature_dim)

    def example(self, ctx: ExampleContext) -> BoundFeatures2D:
        return BoundFeatures2D(self.name, None, 8)
