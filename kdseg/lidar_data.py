"""Training and validation data for LiDAR methods: frames of a split, augmented into batches.

``LidarBatches(step)`` returns the batch of iteration ``step`` deterministically from
``(seed, step)`` (the contract of :class:`kdseg.trainer.Trainer`, which makes resume exact).
A batch holds ``labelled`` clouds (labels = train ids where the budget labels a point, 255
elsewhere) and ``unlabelled`` clouds (labels all hidden). Under the ``full`` budget there are no
unlabelled scans, so semi-supervised methods draw their unlabelled clouds from the labelled
scans with the labels hidden (the LaserMix "full" convention).

A method's inputs (:mod:`kdseg.inputs`, bound for the run) attach ``extras`` to the clouds: per
scan when it is drawn (e.g. the 2D teacher's per-point features; augmentation moves points but
neither drops nor reorders them, so per-point extras stay aligned) and per batch after its clouds
are drawn (e.g. a mixing partner, drawn with the batch's generator so the batch itself does not
change).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from kdseg import IGNORE_INDEX
from kdseg.budgets import FrameId, Split
from kdseg.datasets.lidar_layouts import LidarLayout, open_layout
from kdseg.options import option

if TYPE_CHECKING:
    from kdseg.inputs import BoundInput


@dataclass(frozen=True)
class AugmentConfig:
    """Global augmentations of a cloud (LaserMix / mmdetection3d style)."""

    rotate: float = option(float(np.pi), "max |yaw| rotation, radians")
    flip: bool = option(True, "random flips of the x and y axes")
    scale: tuple[float, float] = option((0.95, 1.05), "uniform range of the scale factor")
    jitter: float = option(0.0, "std of per-point xyz noise, metres")


@dataclass(eq=False)  # identity, not element-wise tensor comparison
class Cloud:
    """One cloud of a batch: ``points (N, 4)`` float32 tensor, ``labels (N,)`` int64 tensor,
    where it came from (``frame``) and the ``extras`` its method's inputs attached
    (:mod:`kdseg.inputs`; e.g. ``features_2d``, ``valid_2d``, ``pred_2d``, ``partner``).

    ``point_keys`` names the extras that are per-point tensors (first dimension ``N``): they
    follow the points through :meth:`select` and :meth:`concat`; the other extras belong to the
    cloud as a whole and are dropped by those.
    """

    points: torch.Tensor
    labels: torch.Tensor
    frame: FrameId
    extras: dict[str, Any] = field(default_factory=dict)
    point_keys: frozenset[str] = frozenset()

    def attach(self, extras: Mapping[str, Any], point_keys: Sequence[str] = ()) -> None:
        """Add ``extras``; ``point_keys`` of them are per-point (checked: first dim ``N``)."""
        n = self.points.shape[0]
        for key in point_keys:
            value = extras[key]
            if not isinstance(value, torch.Tensor) or value.shape[0] != n:
                raise ValueError(f"extra {key!r} of {self.frame} is not per-point (N = {n})")
        self.extras.update(extras)
        self.point_keys = self.point_keys | frozenset(point_keys)

    def select(self, mask: torch.Tensor) -> Cloud:
        """The points where ``mask (N,)`` holds, with their labels and per-point extras."""
        return Cloud(
            self.points[mask],
            self.labels[mask],
            self.frame,
            {k: self.extras[k][mask] for k in self.point_keys},
            self.point_keys,
        )

    @staticmethod
    def concat(parts: Sequence[Cloud], frame: FrameId) -> Cloud:
        """Clouds one after the other (points, labels and the per-point extras they share)."""
        keys = frozenset.intersection(*(p.point_keys for p in parts))
        return Cloud(
            torch.cat([p.points for p in parts]),
            torch.cat([p.labels for p in parts]),
            frame,
            {k: torch.cat([p.extras[k] for p in parts]) for k in sorted(keys)},
            keys,
        )


@dataclass
class LidarBatch:
    """Labelled and unlabelled clouds of one iteration."""

    labelled: list[Cloud]
    unlabelled: list[Cloud]


class FrameStore:
    """Frames of a LiDAR dataset, in any layout (:mod:`kdseg.datasets.lidar_layouts`; a root
    alone is read as SemanticKITTI), kept in memory once read up to ``cache_bytes`` (the least
    recently used frames are dropped beyond it: the embedded data fit whole, while SemanticKITTI's
    19,130 training scans take about 3 MB each, 57 GB in all).

    ``labels(frame, supervision)`` gives the train ids a budget exposes: all dense labels
    (``"labels"``), only the scribbled points (``"scribbles"``), or the dense ground truth for
    evaluation (``"eval"``).
    """

    #: default memory budget of the frame cache, bytes
    CACHE_BYTES = 4 << 30

    def __init__(self, data: str | Path | LidarLayout, cache_bytes: int = CACHE_BYTES) -> None:
        self.layout = data if isinstance(data, LidarLayout) else open_layout(data)
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[FrameId, str], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached_bytes = 0

    @property
    def class_names(self) -> tuple[str, ...]:
        """The dataset's classes, in train-id order."""
        return self.layout.class_names

    def get(self, frame: FrameId, supervision: str) -> tuple[np.ndarray, np.ndarray]:
        """``(points (N, 4) float32, labels (N,) int64)`` of ``frame`` under ``supervision``."""
        key = (frame, supervision)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        sup = "scribbles" if supervision == "scribbles" else "labels"
        points, labels, labelled = self.layout.read(frame, sup)
        if supervision != "eval":
            labels = np.where(labelled, labels, IGNORE_INDEX)
        entry = (points, labels.astype(np.int64))
        self._cache[key] = entry
        self._cached_bytes += entry[0].nbytes + entry[1].nbytes
        while self._cached_bytes > self.cache_bytes and len(self._cache) > 1:
            _, (old_points, old_labels) = self._cache.popitem(last=False)
            self._cached_bytes -= old_points.nbytes + old_labels.nbytes
        return entry


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
        inputs: the method's bound inputs (:func:`kdseg.inputs.bind_inputs`), in the order
            their extras are attached.
    """

    def __init__(
        self,
        store: FrameStore,
        split: Split,
        labelled_per_batch: int = 1,
        unlabelled_per_batch: int = 0,
        seed: int = 0,
        augment_cfg: AugmentConfig | None = None,
        inputs: Sequence[BoundInput] = (),
    ) -> None:
        if not split.labelled:
            raise ValueError(f"split {split.dataset}/{split.budget}: no labelled scans")
        self.store = store
        self.split = split
        self.n_lab = labelled_per_batch
        self.n_unl = unlabelled_per_batch
        self.seed = seed
        self.aug = augment_cfg or AugmentConfig()
        self.unlabelled_pool: Sequence[FrameId] = split.unlabelled or split.labelled
        self.inputs = list(inputs)

    @property
    def labelled_pool(self) -> Sequence[FrameId]:
        """The labelled scans of the split."""
        return self.split.labelled

    def __call__(self, step: int) -> LidarBatch:
        rng = np.random.default_rng((self.seed, step))
        lab = [self.draw(self.split.labelled, rng, hide=False) for _ in range(self.n_lab)]
        unl = [self.draw(self.unlabelled_pool, rng, hide=True) for _ in range(self.n_unl)]
        batch = LidarBatch(labelled=lab, unlabelled=unl)
        for bound in self.inputs:
            bound.batch_extras(batch, self, rng)
        return batch

    def draw(self, pool: Sequence[FrameId], rng: np.random.Generator, hide: bool) -> Cloud:
        """An augmented cloud of a frame drawn from ``pool`` (labels hidden with ``hide``),
        with the per-scan extras of every input."""
        frame = pool[int(rng.integers(len(pool)))]
        points, labels = self.store.get(frame, self.split.supervision)
        pts = augment(points, rng, self.aug)
        lab = np.full_like(labels, IGNORE_INDEX) if hide else labels
        cloud = Cloud(torch.from_numpy(pts), torch.from_numpy(lab), frame)
        for bound in self.inputs:
            extras = bound.cloud_extras(frame, points)
            if extras:
                cloud.attach(extras, bound.point_keys)
        return cloud
