"""Synthetic vs real VOC statistics, side by side (the realism table of docs/continual_data.md).

Image-level statistics (class frequencies, classes per image, co-occurrence) come from class
lists: the synthetic ``cl_metadata/train_cls.txt`` against VOC trainaug's (10,582 images).
Pixel-level statistics (background and void shares, objects per image) need masks: the
synthetic train masks against the real VOC sample masks (only two are available).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from kdseg.datasets.continual_lists import ClassLists, read_class_lists
from kdseg.datasets.voc import NUM_CLASSES, VOC_CLASSES, VOCSegmentation

MIN_OBJECT_SHARE: float = 0.001
"""A connected component counts as an object if it covers at least this share of the image."""


def image_level_stats(lists: ClassLists) -> dict[str, float]:
    """Image-level statistics of class lists.

    Returns: ``images``; ``classes per image`` (mean number of foreground classes);
    ``images with >= 2 classes (%)``; ``<name> (% of images)`` for every class.
    """
    p = lists.presence[:, 1:NUM_CLASSES]
    per_image = p.sum(axis=1)
    out = {
        "images": float(lists.num_images),
        "classes per image": float(per_image.mean()),
        "images with >= 2 classes (%)": 100.0 * float((per_image >= 2).mean()),
    }
    for c in range(1, NUM_CLASSES):
        out[f"{VOC_CLASSES[c]} (% of images)"] = 100.0 * float(p[:, c - 1].mean())
    return out


def cooccurrence(lists: ClassLists) -> np.ndarray:
    """``(20, 20)`` share of images containing both classes ``i+1`` and ``j+1``."""
    p = lists.presence[:, 1:NUM_CLASSES].astype(np.float64)
    return p.T @ p / max(lists.num_images, 1)


def compare_lists(synthetic: ClassLists, real: ClassLists) -> dict[str, float]:
    """Distances between two sets of class lists.

    Returns: ``class frequency TV distance to trainaug`` (total variation distance between the
    distributions of class occurrences, 0 = identical, 1 = disjoint) and ``co-occurrence
    correlation with trainaug`` (Pearson correlation of the 190 class-pair shares).
    """
    fs = synthetic.presence[:, 1:NUM_CLASSES].sum(axis=0).astype(np.float64)
    fr = real.presence[:, 1:NUM_CLASSES].sum(axis=0).astype(np.float64)
    tv = 0.5 * float(np.abs(fs / fs.sum() - fr / fr.sum()).sum())
    iu = np.triu_indices(NUM_CLASSES - 1, k=1)
    corr = float(np.corrcoef(cooccurrence(synthetic)[iu], cooccurrence(real)[iu])[0, 1])
    return {
        "class frequency TV distance to trainaug": tv,
        "co-occurrence correlation with trainaug": corr,
    }


def mask_stats(masks: Iterable[np.ndarray]) -> dict[str, float]:
    """Pixel statistics of ``(H, W)`` VOC masks: ``masks``, ``background pixels (%)``,
    ``void pixels (%)``, ``objects per image`` (8-connected components of each class covering
    at least :data:`MIN_OBJECT_SHARE` of the image)."""
    n = 0
    pixels = np.zeros(256, dtype=np.int64)
    objects = 0
    eight = np.ones((3, 3), dtype=bool)
    for mask in masks:
        n += 1
        pixels += np.bincount(mask.ravel(), minlength=256)
        min_px = MIN_OBJECT_SHARE * mask.size
        for c in np.unique(mask):
            if 0 < c < NUM_CLASSES:
                lab, k = ndimage.label(mask == c, structure=eight)
                sizes = np.bincount(lab.ravel(), minlength=k + 1)[1:]
                objects += int((sizes >= min_px).sum())
    total = max(int(pixels.sum()), 1)
    return {
        "masks": float(n),
        "background pixels (%)": 100.0 * pixels[0] / total,
        "void pixels (%)": 100.0 * pixels[255] / total,
        "objects per image": objects / max(n, 1),
    }


@dataclass(frozen=True)
class RealismRow:
    """One row: a statistic for the synthetic data, VOC trainaug's class lists and the real
    sample masks (``None`` where the source cannot give it)."""

    name: str
    synthetic: float
    voc_trainaug: float | None
    voc_samples: float | None


def realism_table(
    synthetic_root: str | Path,
    real_train_lists: str | Path | None = None,
    real_voc_root: str | Path | None = None,
    real_ids: Sequence[str] = (),
) -> list[RealismRow]:
    """The realism table of a generated dataset (its ``train`` split).

    Args:
        synthetic_root: a folder written by :func:`~kdseg.datasets.synthetic_voc.generate`.
        real_train_lists: VOC trainaug's ``train_cls.txt`` (``shared/realdata/voc/cl_metadata``).
        real_voc_root, real_ids: real VOC masks to compare pixel statistics with.
    """
    root = Path(synthetic_root)
    syn_lists = read_class_lists(root / "cl_metadata" / "train_cls.txt", NUM_CLASSES)
    syn_img = image_level_stats(syn_lists)
    real_lists = read_class_lists(real_train_lists, NUM_CLASSES) if real_train_lists else None
    real_img = image_level_stats(real_lists) if real_lists is not None else {}
    syn_ds = VOCSegmentation(root, "train")
    syn_px = mask_stats(syn_ds.load_mask(i) for i in syn_ds.ids)
    real_px: dict[str, float] = {}
    sample_lists: dict[str, float] = {}
    if real_voc_root is not None and real_ids:
        real_ds = VOCSegmentation(real_voc_root, ids=real_ids)
        real_px = mask_stats(real_ds.load_mask(i) for i in real_ids)
        sample_lists = image_level_stats(real_ds.class_lists())
    rows = [RealismRow(k, v, None, real_px.get(k)) for k, v in syn_px.items()]
    for k, v in syn_img.items():
        rows.append(RealismRow(k, v, real_img.get(k), sample_lists.get(k)))
    if real_lists is not None:
        rows += [
            RealismRow(k, v, None, None) for k, v in compare_lists(syn_lists, real_lists).items()
        ]
    return rows


def format_markdown(rows: Sequence[RealismRow], digits: int = 2) -> str:
    """The table as Markdown (``-`` where a source has no value)."""

    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    lines = [
        "| statistic | synthetic (train) | VOC trainaug (train_cls.txt) | VOC samples (2 masks) |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.name} | {cell(r.synthetic)} | {cell(r.voc_trainaug)} | "
                     f"{cell(r.voc_samples)} |")  # fmt: skip
    return "\n".join(lines) + "\n"
