"""Training and validation data for LiDAR methods: frames of a split, augmented into batches.

``LidarBatches(step)`` returns the batch of iteration ``step`` deterministically from
``(seed, step)`` (the contract of :class:`kdseg.trainer.Trainer`, which makes resume exact).
A batch holds ``labelled`` clouds (labels = train ids where the budget labels a point, 255
elsewhere) and ``unlabelled`` clouds (labels all hidden). Under the ``full`` budget there are no
unlabelled scans, so semi-supervised methods draw their unlabelled clouds from the labelled
scans with the labels hidden (the LaserMix "full" convention).

Given a 2D feature cache (``features_dir``), every cloud also carries the 2D teacher's per-point
guidance (:mod:`kdseg.guidance`); augmentation moves points only, so it rides along unchanged.

With ``mix_partners``, every cloud also carries a ``partner``: another scan, drawn after the
batch's own clouds (so the batch itself does not change), for mixing augmentations (FOVMix). A
labelled cloud's partner is another labelled scan (labels kept) when the budget has two or more,
else an unlabelled one; an unlabelled cloud's partner is another unlabelled scan when there are
two or more, else a labelled one with its labels hidden. A cloud is never its own partner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kdseg import IGNORE_INDEX
from kdseg.budgets import FrameId, Split
from kdseg.datasets.semantickitti import SemanticKITTI
from kdseg.guidance import GuidanceStore

MIX_PARTNERS = "mix_partners"
"""Name of the input a method ``requires`` to get a ``partner`` cloud on every cloud."""


@dataclass(frozen=True)
class AugmentConfig:
    """Global augmentations of a cloud (LaserMix / mmdetection3d style)."""

    rotate: float = field(default=np.pi, metadata={"help": "max |yaw| rotation, radians"})
    flip: bool = field(default=True, metadata={"help": "random flips of the x and y axes"})
    scale: tuple[float, float] = field(default=(0.95, 1.05), metadata={"help": "uniform range"})
    jitter: float = field(default=0.0, metadata={"help": "std of per-point xyz noise, metres"})


@dataclass(eq=False)  # identity, not element-wise tensor comparison
class Cloud:
    """One cloud of a batch: ``points (N, 4)`` float32 tensor, ``labels (N,)`` int64 tensor,
    and where it came from (``frame``).

    Optional 2D guidance (all ``None`` unless the batches were given a feature cache):
    ``features_2d (N, C)`` float32 teacher features (zeros outside the image), ``valid_2d (N,)``
    bool (the point projects into the camera image) and ``pred_2d (N,)`` int64 teacher classes
    (255 where not valid).
    """

    points: torch.Tensor
    labels: torch.Tensor
    frame: FrameId
    features_2d: torch.Tensor | None = None
    valid_2d: torch.Tensor | None = None
    pred_2d: torch.Tensor | None = None
    partner: Cloud | None = None
    """another scan of the same kind to mix with (``mix_partners`` batches only; never the
    same frame)"""

    @property
    def has_guidance(self) -> bool:
        """Whether the 2D guidance fields are set."""
        return self.features_2d is not None and self.valid_2d is not None


@dataclass
class LidarBatch:
    """Labelled and unlabelled clouds of one iteration."""

    labelled: list[Cloud]
    unlabelled: list[Cloud]


class FrameStore:
    """Frames of a SemanticKITTI-layout dataset held in memory once read.

    ``labels(frame, supervision)`` gives the train ids a budget exposes: all dense labels
    (``"labels"``), only the scribbled points (``"scribbles"``), or the dense ground truth for
    evaluation (``"eval"``).
    """

    def __init__(self, root: str | Path) -> None:
        self.ds = SemanticKITTI(root)
        self._cache: dict[tuple[FrameId, str], tuple[np.ndarray, np.ndarray]] = {}

    def get(self, frame: FrameId, supervision: str) -> tuple[np.ndarray, np.ndarray]:
        """``(points (N, 4) float32, labels (N,) int64)`` of ``frame`` under ``supervision``."""
        key = (frame, supervision)
        if key not in self._cache:
            sup = "scribbles" if supervision == "scribbles" else "labels"
            f = self.ds.frame(frame[0], frame[1], supervision=sup)
            assert f.labels is not None
            labels = (
                f.labels if supervision == "eval" else np.where(f.labelled, f.labels, IGNORE_INDEX)
            )
            self._cache[key] = (f.points, labels.astype(np.int64))
        return self._cache[key]


def class_frequencies(
    store: FrameStore, frames: Sequence[FrameId], supervision: str, num_classes: int
) -> np.ndarray:
    """Shares ``(num_classes,)`` (summing to 1) of the labelled points of ``frames`` per class,
    under ``supervision`` (``"labels"`` or ``"scribbles"``); zeros when nothing is labelled."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for frame in frames:
        labels = store.get(frame, supervision)[1]
        counts += np.bincount(labels[labels != IGNORE_INDEX], minlength=num_classes)[:num_classes]
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def augment(points: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Rotate about z, flip, scale and jitter ``(N, 4)`` points; returns a new ``(N, 4)`` array
    (remission untouched)."""
    out = points.copy()
    theta = rng.uniform(-cfg.rotate, cfg.rotate)
    c, s = np.cos(theta), np.sin(theta)
    xy = out[:, :2] @ np.array([[c, s], [-s, c]], dtype=np.float32)
    if cfg.flip:
        xy *= np.where(rng.random(2) < 0.5, -1.0, 1.0).astype(np.float32)
    out[:, :2] = xy
    out[:, :3] *= np.float32(rng.uniform(*cfg.scale))
    if cfg.jitter > 0:
        out[:, :3] += rng.normal(0.0, cfg.jitter, size=(out.shape[0], 3)).astype(np.float32)
    return out


class LidarBatches:
    """Deterministic batch source over a budget :class:`Split` (callable: ``step -> LidarBatch``).

    Args:
        store: frames of the dataset.
        split: the budget split (labelled / unlabelled scans, supervision).
        labelled_per_batch, unlabelled_per_batch: clouds of each kind per iteration.
        seed: the run's seed; iteration ``k`` uses ``numpy.random.default_rng((seed, k))``.
        features_dir: a 2D feature cache (``kdseg features``); every cloud then carries its
            guidance (``features_2d``, ``valid_2d``, ``pred_2d``).
        mix_partners: give every cloud a ``partner`` cloud of another frame (module docstring).
    """

    def __init__(
        self,
        store: FrameStore,
        split: Split,
        labelled_per_batch: int = 1,
        unlabelled_per_batch: int = 0,
        seed: int = 0,
        augment_cfg: AugmentConfig | None = None,
        features_dir: str | Path | None = None,
        mix_partners: bool = False,
    ) -> None:
        if not split.labelled:
            raise ValueError(f"split {split.dataset}/{split.budget}: no labelled scans")
        if mix_partners and len(set(split.labelled) | set(split.unlabelled)) < 2:
            raise ValueError(
                f"split {split.dataset}/{split.budget}: mixing partners need at least two "
                "training scans"
            )
        self.mix_partners = mix_partners
        self.store = store
        self.split = split
        self.n_lab = labelled_per_batch
        self.n_unl = unlabelled_per_batch
        self.seed = seed
        self.aug = augment_cfg or AugmentConfig()
        self.unlabelled_pool: Sequence[FrameId] = split.unlabelled or split.labelled
        self.guidance = GuidanceStore(features_dir) if features_dir is not None else None

    def __call__(self, step: int) -> LidarBatch:
        rng = np.random.default_rng((self.seed, step))
        lab = [self._cloud(self.split.labelled, rng, hide=False) for _ in range(self.n_lab)]
        unl = [self._cloud(self.unlabelled_pool, rng, hide=True) for _ in range(self.n_unl)]
        if self.mix_partners:
            labelled, unlabelled = self.split.labelled, self.unlabelled_pool
            for cloud in lab:
                cloud.partner = self._partner(
                    cloud.frame, (labelled, False), (unlabelled, True), rng
                )
            for cloud in unl:
                cloud.partner = self._partner(
                    cloud.frame, (unlabelled, True), (labelled, True), rng
                )
        return LidarBatch(labelled=lab, unlabelled=unl)

    def _partner(
        self,
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
                return self._cloud(others, rng, hide)
        raise ValueError(f"no mixing partner for {frame}: it is the only training scan")

    def _cloud(self, pool: Sequence[FrameId], rng: np.random.Generator, hide: bool) -> Cloud:
        frame = pool[int(rng.integers(len(pool)))]
        points, labels = self.store.get(frame, self.split.supervision)
        pts = augment(points, rng, self.aug)
        lab = np.full_like(labels, IGNORE_INDEX) if hide else labels
        cloud = Cloud(torch.from_numpy(pts), torch.from_numpy(lab), frame)
        if self.guidance is not None:
            g = self.guidance.get(frame, points.shape[0])
            cloud.features_2d = torch.from_numpy(g.features)
            cloud.valid_2d = torch.from_numpy(g.valid)
            cloud.pred_2d = torch.from_numpy(g.pred)
        return cloud
