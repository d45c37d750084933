"""Per-image class lists: which classes each image contains (the input of task filtering).

File format (SSUL's ``train_cls.txt`` / ``val_cls.txt``, also written by the synthetic VOC
generator): one line per image, ``<image id> v1 v2 ...`` with the **0-based** foreground class
values, i.e. label id = value + 1 (VOC 1..20, ADE20K 1..150); background (0) and ignore (255) are
never listed, and a line may list nothing (ADE20K has 14 such training images). Lines are sorted
by id: the continual protocol runs over the images in sorted-id order (MiB's ``filter_images``
over the sorted trainaug list for VOC and the sorted ``images/training`` folder for ADE20K), so
a *row* below is a position in that order and MiB's shipped ``.npy`` index files are rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdseg.errors import DataFormatError
from kdseg.io import write_text

from .continual_images import ImageSample


@dataclass(frozen=True)
class ClassLists:
    """Class presence of a set of images.

    Attributes:
        ids: image ids, sorted ascending (row ``r`` is ``ids[r]``).
        presence: ``(N, K)`` bool, ``presence[r, c]`` = image ``r`` contains label id ``c``
            (``K`` = number of label ids including background 0; column 0 is always False:
            background is never listed).
        source: the file the lists came from (or a description), for error messages.
    """

    ids: tuple[str, ...]
    presence: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        if self.presence.ndim != 2 or self.presence.shape[0] != len(self.ids):
            raise ValueError(f"presence {self.presence.shape} does not match {len(self.ids)} ids")
        if list(self.ids) != sorted(self.ids):
            raise ValueError("ids must be sorted")

    @property
    def num_images(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        """Number of label ids ``K`` (background included)."""
        return int(self.presence.shape[1])

    def classes_of(self, row: int) -> list[int]:
        """Label ids (>= 1) present in image ``row``."""
        return [int(c) for c in np.flatnonzero(self.presence[row])]

    def images_per_class(self) -> np.ndarray:
        """``(K,)`` int64: number of images containing each label id."""
        return self.presence.sum(axis=0).astype(np.int64)

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Rows of the given image ids (``KeyError`` names the first unknown id)."""
        index = {name: r for r, name in enumerate(self.ids)}
        return np.array([index[name] for name in ids], dtype=np.int64)


def read_class_lists(path: str | Path, num_classes: int) -> ClassLists:
    """Read a ``*_cls.txt`` file (format in the module docstring).

    Args:
        num_classes: ``K``, label ids including background (VOC 21, ADE20K 151); a value
            ``v`` with ``v + 1 >= K`` is an error.

    Lines are sorted by id if the file is not; duplicate ids are an error.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "class list file does not exist")
    ids: list[str] = []
    rows: list[list[int]] = []
    with path.open() as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                values = [int(v) for v in parts[1:]]
            except ValueError:
                raise DataFormatError(
                    path, f"line {lineno}: class values must be integers: {line.strip()!r}"
                ) from None
            bad = [v for v in values if not 0 <= v + 1 < num_classes]
            if bad:
                raise DataFormatError(
                    path,
                    f"line {lineno}: value {bad[0]} is outside 0..{num_classes - 2} "
                    f"(0-based foreground classes of a {num_classes}-id label space)",
                )
            ids.append(parts[0])
            rows.append([v + 1 for v in values])
    if not ids:
        raise DataFormatError(path, "class list file is empty")
    order = sorted(range(len(ids)), key=ids.__getitem__)
    presence = np.zeros((len(ids), num_classes), dtype=bool)
    for r, k in enumerate(order):
        presence[r, rows[k]] = True
    sorted_ids = tuple(ids[k] for k in order)
    dup = next((a for a, b in itertools.pairwise(sorted_ids) if a == b), None)
    if dup is not None:
        raise DataFormatError(path, f"image id {dup!r} is listed twice")
    return ClassLists(sorted_ids, presence, str(path))


def format_class_lists(lists: ClassLists) -> str:
    """The text of a ``*_cls.txt`` file for ``lists`` (0-based values, sorted ids)."""
    lines = []
    for r, name in enumerate(lists.ids):
        values = [str(c - 1) for c in np.flatnonzero(lists.presence[r]) if c > 0]
        lines.append(" ".join([name, *values]))
    return "\n".join(lines) + "\n"


def write_class_lists(path: str | Path, lists: ClassLists) -> None:
    """Atomically write ``lists`` in the ``*_cls.txt`` format."""
    write_text(path, format_class_lists(lists))


def class_lists_from_masks(
    ids: Sequence[str],
    load: Callable[[str], ImageSample] | Callable[[str], np.ndarray],
    num_classes: int,
    source: str = "",
) -> ClassLists:
    """Class lists computed from label masks, as the protocol does (``np.unique`` of each mask).

    Args:
        ids: image ids.
        load: returns the image's :class:`ImageSample` or its ``(H, W)`` mask, in the label
            space of the protocol (VOC 0..20; ADE20K 0..150 with 0 = background).
        num_classes: ``K``; ids 0 and 255 are not listed.
    """
    names = sorted(ids)
    presence = np.zeros((len(names), num_classes), dtype=bool)
    for r, name in enumerate(names):
        item = load(name)
        mask = item.mask if isinstance(item, ImageSample) else np.asarray(item)
        values = np.unique(mask)
        values = values[(values != 255) & (values != 0)]
        if values.size and values.max() >= num_classes:
            raise DataFormatError(source or name, f"image {name} has label id {values.max()}")
        presence[r, values] = True
    return ClassLists(tuple(names), presence, source)
