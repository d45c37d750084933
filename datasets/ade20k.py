"""Reader of the ADE20K SceneParsing layout (``ADEChallengeData2016``, 150 classes).

Layout (``shared/specs/datasets.md`` §6)::

    ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_%08d.jpg
    ADEChallengeData2016/annotations/{training,validation}/<same id>.png   mode 'L'
    ADEChallengeData2016/objectInfo150.txt      Idx  Ratio  Train  Val  Name (tab separated)

Annotation values: 0 = "other objects", 1..150 = the classes of ``objectInfo150.txt``. Two
label spaces (``labels=``):

* ``"continual"`` (default): MiB, PLOP and LGKD keep the values: 0 is class 0
  (background/void, trained like VOC's background), 1..150 the classes; ``num_classes = 151``.
* ``"official"``: the SceneParsing benchmark: 0 -> 255 (ignored), ``k`` -> ``k - 1``
  (train ids 0..149).

``root`` may be the ``ADEChallengeData2016`` folder or the folder holding it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdseg import IGNORE_INDEX
from kdseg.errors import ConfigError, DataFormatError

from .continual_images import (
    ImageSample,
    check_same_size,
    read_index_png,
    read_rgb,
)
from .continual_lists import ClassLists, class_lists_from_masks

NUM_ADE_CLASSES: int = 150
"""Annotated classes (values 1..150)."""
SPLITS: tuple[str, ...] = ("training", "validation")
LABEL_SPACES: tuple[str, ...] = ("continual", "official")


@dataclass(frozen=True)
class ObjectInfo:
    """One row of ``objectInfo150.txt``.

    Attributes:
        index: annotation value 1..150.
        ratio: share of pixels of the class over the dataset.
        train, val: number of training / validation images containing it.
        names: the synonyms (first = the usual class name), stripped.
    """

    index: int
    ratio: float
    train: int
    val: int
    names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.names[0]


def read_object_info(path: str | Path) -> list[ObjectInfo]:
    """Read ``objectInfo150.txt``: 150 rows ordered by index 1..150."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "objectInfo150.txt does not exist")
    rows = []
    lines = path.read_text().splitlines()
    if not lines or lines[0].split() != ["Idx", "Ratio", "Train", "Val", "Name"]:
        raise DataFormatError(path, "first line must be the header 'Idx Ratio Train Val Name'")
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cols = line.split("\t")
        try:
            idx, ratio, train, val = int(cols[0]), float(cols[1]), int(cols[2]), int(cols[3])
            names = tuple(n.strip() for n in cols[4].split(","))
        except (ValueError, IndexError):
            raise DataFormatError(path, f"line {lineno}: malformed row {line!r}") from None
        if idx != len(rows) + 1:
            raise DataFormatError(path, f"line {lineno}: index {idx}, expected {len(rows) + 1}")
        rows.append(ObjectInfo(idx, ratio, train, val, names))
    if len(rows) != NUM_ADE_CLASSES:
        raise DataFormatError(path, f"has {len(rows)} classes, expected {NUM_ADE_CLASSES}")
    return rows


def label_lut(labels: str) -> np.ndarray:
    """``(256,)`` uint8 map from annotation values to the label space ``labels``."""
    if labels not in LABEL_SPACES:
        raise ConfigError("labels", f"unknown ADE20K label space {labels!r}; {LABEL_SPACES}")
    lut = np.arange(256, dtype=np.uint8)
    if labels == "official":
        lut[0] = IGNORE_INDEX
        lut[1 : NUM_ADE_CLASSES + 1] = np.arange(NUM_ADE_CLASSES, dtype=np.uint8)
    return lut


def read_ade_annotation(path: str | Path) -> np.ndarray:
    """Read an annotation PNG: ``(H, W)`` uint8 raw values 0..150 (0 = "other objects").
    Values above 150 (255 included), RGB files and undecodable files raise
    :class:`DataFormatError`."""
    raw = read_index_png(path, "ADE20K annotation")
    values = np.unique(raw)
    bad = values[values > NUM_ADE_CLASSES]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        raise DataFormatError(path, f"unknown class ids {shown}; ADE20K annotations hold 0..150")
    return raw


def _find_root(root: Path) -> Path:
    for cand in (root, root / "ADEChallengeData2016"):
        if (cand / "images").is_dir() and (cand / "annotations").is_dir():
            return cand
    raise DataFormatError(root, "no ADEChallengeData2016 layout here (images/, annotations/)")


class ADE20K:
    """One split of ``ADEChallengeData2016``.

    Args:
        root: see the module docstring.
        split: ``"training"`` or ``"validation"``.
        labels: ``"continual"`` (0..150) or ``"official"`` (0..149, 0 -> 255).
        ids: read these image ids instead of listing ``images/<split>`` (sorted).

    ``dataset[i]`` and :meth:`load` return an :class:`ImageSample` (image ``(H, W, 3)`` uint8,
    mask ``(H, W)`` uint8 in the chosen label space).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        labels: str = "continual",
        ids: Sequence[str] | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError("split", f"unknown ADE20K split {split!r}; choose from {SPLITS}")
        self.lut = label_lut(labels)
        self.labels = labels
        self.root = _find_root(Path(root))
        self.split = split
        self.image_dir = self.root / "images" / split
        self.mask_dir = self.root / "annotations" / split
        if ids is None:
            if not self.image_dir.is_dir():
                raise DataFormatError(self.image_dir, "image folder of the split does not exist")
            ids = sorted(p.stem for p in self.image_dir.glob("*.jpg"))
        self.ids: tuple[str, ...] = tuple(ids)

    @property
    def num_classes(self) -> int:
        """Label ids of the label space (151 continual, 150 official)."""
        return NUM_ADE_CLASSES + 1 if self.labels == "continual" else NUM_ADE_CLASSES

    def class_names(self) -> list[str]:
        """Name of each label id, from ``objectInfo150.txt`` (continual: 0 = ``"other"``)."""
        names = [r.name for r in read_object_info(self.root / "objectInfo150.txt")]
        return ["other", *names] if self.labels == "continual" else names

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> ImageSample:
        return self.load(self.ids[index])

    def __iter__(self) -> Iterator[ImageSample]:
        return (self.load(i) for i in self.ids)

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.mask_dir / f"{image_id}.png"

    def load_mask(self, image_id: str) -> np.ndarray:
        """The mask alone (``(H, W)`` uint8, chosen label space)."""
        return self.lut[read_ade_annotation(self.mask_path(image_id))]

    def load(self, image_id: str) -> ImageSample:
        """Image and mask of ``image_id``, checked to have the same size."""
        image = read_rgb(self.image_path(image_id))
        mask = self.load_mask(image_id)
        check_same_size(self.mask_path(image_id), mask, image)
        return ImageSample(image_id, image, mask)

    def class_lists(self) -> ClassLists:
        """Per-image class lists (continual label space) computed from every annotation."""

        def raw(image_id: str) -> np.ndarray:  # the continual label space is the raw values
            return read_ade_annotation(self.mask_path(image_id))

        return class_lists_from_masks(self.ids, raw, NUM_ADE_CLASSES + 1, str(self.mask_dir))
