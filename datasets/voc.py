"""Reader of the Pascal VOC 2012 segmentation layout (+ the SBD "trainaug" set); the embedded
synthetic VOC data are written in the same layout (:mod:`kdseg.datasets.synthetic_voc`).

Layout (``shared/specs/datasets.md`` §5)::

    <VOC2012>/JPEGImages/<id>.jpg
    <VOC2012>/SegmentationClass/<id>.png         palette ('P') PNG of class ids 0..20, 255 = void
    <VOC2012>/ImageSets/Segmentation/{train,val,trainval}.txt      one id per line
    SegmentationClassAug/<id>.png                trainaug masks (single-channel class ids), in
                                                 <VOC2012>/ or next to VOCdevkit/ (LGKD)
    trainaug list       ImageSets/Segmentation/train_aug.txt (ids), or list/train_aug.txt
                        (LGKD) / splits/train_aug.txt (MiB) with lines
                        "/JPEGImages/X.jpg /SegmentationClassAug/X.png"

``root`` may be the ``VOC2012`` folder itself, a folder holding ``VOCdevkit/VOC2012`` or one
holding ``PascalVOC2012/VOCdevkit/VOC2012`` (the ``shared/realdata/voc`` layout).
Label ids: 0 background, 1..20 the classes of :data:`VOC_CLASSES`, 255 void (= the code base's
ignore index). Masks are read by index, never by colour; RGB masks are refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from kdseg.errors import DataFormatError

from .continual_images import (
    ImageSample,
    check_label_values,
    check_same_size,
    read_index_png,
    read_rgb,
)
from .continual_lists import ClassLists, class_lists_from_masks

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
"""Label id -> class name (0 = background)."""
NUM_CLASSES: int = len(VOC_CLASSES)
SPLITS: tuple[str, ...] = ("train", "val", "trainval", "trainaug")


def voc_palette() -> np.ndarray:
    """The VOC colour map: ``(256, 3)`` uint8 RGB, index ``i`` coloured by bit interleaving
    (0 black, 1 (128, 0, 0), 2 (0, 128, 0), ..., 255 (224, 224, 192))."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def read_voc_mask(path: str | Path) -> np.ndarray:
    """Read a VOC class-index mask (palette or single-channel PNG): ``(H, W)`` uint8 ids
    0..20 and 255. Unknown ids, RGB masks and undecodable files raise :class:`DataFormatError`."""
    mask = read_index_png(path, "VOC class-index mask")
    check_label_values(path, mask, NUM_CLASSES - 1, "VOC")
    return mask


def _find_voc_dir(root: Path) -> Path:
    for cand in (root, root / "VOCdevkit" / "VOC2012", root / "PascalVOC2012/VOCdevkit/VOC2012"):
        if (cand / "JPEGImages").is_dir():
            return cand
    raise DataFormatError(root, "no VOC 2012 layout here (JPEGImages/ not found)")


def _read_id_list(path: Path) -> tuple[str, ...]:
    """Ids of a list file; a line may be an id or "<image path> <mask path>" (LGKD, MiB)."""
    ids = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise DataFormatError(path, f"line {lineno}: expected an id or two paths: {line!r}")
        ids.append(Path(parts[0]).stem)
    if not ids:
        raise DataFormatError(path, "image list is empty")
    return tuple(ids)


class VOCSegmentation:
    """One split of a VOC 2012 layout.

    Args:
        root: see the module docstring.
        split: ``train``/``val``/``trainval`` (masks in ``SegmentationClass``) or ``trainaug``
            (masks in ``SegmentationClassAug``).
        ids: read these image ids instead of the split's list file.

    ``dataset[i]`` and :meth:`load` return an :class:`ImageSample` (image ``(H, W, 3)`` uint8,
    mask ``(H, W)`` uint8 ids 0..20 / 255).
    """

    def __init__(self, root: str | Path, split: str = "train", ids: Sequence[str] | None = None):
        if split not in SPLITS:
            raise DataFormatError(root, f"unknown VOC split {split!r}; choose from {SPLITS}")
        self.root = Path(root)
        self.voc_dir = _find_voc_dir(self.root)
        self.split = split
        self.mask_dir = self._mask_dir()
        self.ids: tuple[str, ...] = tuple(ids) if ids is not None else self._list_ids()

    def _mask_dir(self) -> Path:
        if self.split != "trainaug":
            return self.voc_dir / "SegmentationClass"
        for base in (self.voc_dir, *self.voc_dir.parents[:3]):
            if (base / "SegmentationClassAug").is_dir():
                return base / "SegmentationClassAug"
        raise DataFormatError(
            self.voc_dir / "SegmentationClassAug", "trainaug masks not found (nor in parents)"
        )

    def _list_ids(self) -> tuple[str, ...]:
        lists = self.voc_dir / "ImageSets" / "Segmentation"
        if self.split != "trainaug":
            path = lists / f"{self.split}.txt"
            if not path.is_file():
                raise DataFormatError(path, f"list of the {self.split!r} split does not exist")
            return _read_id_list(path)
        candidates = [lists / "train_aug.txt", self.voc_dir / "splits" / "train_aug.txt"]
        candidates += [base / "list" / "train_aug.txt" for base in self.voc_dir.parents[:3]]
        for path in candidates:
            if path.is_file():
                return _read_id_list(path)
        raise DataFormatError(candidates[0], "trainaug list not found (nor list/train_aug.txt)")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> ImageSample:
        return self.load(self.ids[index])

    def __iter__(self) -> Iterator[ImageSample]:
        return (self.load(i) for i in self.ids)

    def image_path(self, image_id: str) -> Path:
        return self.voc_dir / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.mask_dir / f"{image_id}.png"

    def load_mask(self, image_id: str) -> np.ndarray:
        """The mask alone (``(H, W)`` uint8), without decoding the image."""
        return read_voc_mask(self.mask_path(image_id))

    def load(self, image_id: str) -> ImageSample:
        """Image and mask of ``image_id``, checked to have the same size."""
        image = read_rgb(self.image_path(image_id))
        mask_path = self.mask_path(image_id)
        mask = read_voc_mask(mask_path)
        check_same_size(mask_path, mask, image)
        return ImageSample(image_id, image, mask)

    def class_lists(self) -> ClassLists:
        """Per-image class lists computed from every mask of the split (the ``*_cls.txt``
        content, e.g. for a dataset without ``cl_metadata``)."""
        return class_lists_from_masks(self.ids, self.load_mask, NUM_CLASSES, str(self.mask_dir))
