"""A stand-in for ADE20K at smoke scale: the synthetic VOC scenes written in the
``ADEChallengeData2016`` layout, their 20 classes spread over ADE20K's label ids.

Real ADE20K has no training images in ``shared/realdata`` and no generator of its own here, so
the ADE20K protocols (100-50, 100-10, 50-50, 100-5) run end to end in CI on this stand-in: each
VOC class ``k`` becomes ADE20K id :data:`VOC_TO_ADE` ``[k]``, chosen so that every step of every
built-in ADE20K task holds classes (100-50: 10 + 10; 100-10: 10 + 2 per step; 50-50: 5 + 5 +
10; 100-5: 10 + 1 per step). It exercises the ADE20K reader, the 151-class label space and the
per-step chains; its numbers say nothing about ADE20K (the paper scale reads the real data).

Layout written (what :class:`kdseg.datasets.ade20k.ADE20K` reads, plus the class lists)::

    ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_%08d.jpg
    ADEChallengeData2016/annotations/{training,validation}/<same id>.png   mode 'L', 0..150
    ADEChallengeData2016/objectInfo150.txt     150 rows; mapped ids named after their VOC class
    cl_metadata/{train,val}_cls.txt            per-image class lists (0-based, SSUL format)
    meta.json                                  written last

VOC's void label (255, object borders and "difficult" objects) becomes 0, "other objects", as
ADE20K annotations have no ignore value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kdseg.datasets.ade20k import NUM_ADE_CLASSES
from kdseg.datasets.continual_images import write_jpeg
from kdseg.datasets.continual_lists import ClassLists, write_class_lists
from kdseg.datasets.voc import VOC_CLASSES
from kdseg.errors import DataFormatError
from kdseg.io import atomic_open, write_json, write_text

from .config import GENERATOR_VERSION, SyntheticVOCConfig
from .scene import render_image
from .writer import SPLIT_CODES, split_class_sets

VOC_TO_ADE: tuple[int, ...] = (
    0, 3, 13, 23, 33, 43, 53, 63, 73, 83, 93, 103, 108, 113, 118, 123, 128, 133, 138, 143, 148,
)  # fmt: skip
"""ADE20K label id of each VOC label id (0 = background stays 0)."""
ROOT = "ADEChallengeData2016"
SPLIT_DIRS = {"train": ("training", "ADE_train"), "val": ("validation", "ADE_val")}


def ade_lut() -> np.ndarray:
    """``(256,)`` uint8: VOC label id -> ADE20K id; void (255) -> 0."""
    lut = np.zeros(256, dtype=np.uint8)
    lut[: len(VOC_TO_ADE)] = VOC_TO_ADE
    return lut


def _write_l_png(path: Path, mask: np.ndarray) -> None:
    from PIL import Image

    with atomic_open(path, "wb") as fh:
        Image.fromarray(np.ascontiguousarray(mask), "L").save(fh, format="PNG")


def object_info(pixels: np.ndarray, images: dict[str, np.ndarray]) -> str:
    """``objectInfo150.txt``: pixel ratio and image counts per id from the written masks."""
    names = {ade: VOC_CLASSES[voc] for voc, ade in enumerate(VOC_TO_ADE) if voc}
    lines = ["Idx\tRatio\tTrain\tVal\tName"]
    total = max(int(pixels.sum()), 1)
    for idx in range(1, NUM_ADE_CLASSES + 1):
        name = names.get(idx, f"unused{idx:03d}")
        ratio = pixels[idx] / total
        lines.append(f"{idx}\t{ratio:.6f}\t{images['train'][idx]}\t{images['val'][idx]}\t{name}")
    return "\n".join(lines) + "\n"


def generate_ade(out: str | Path, cfg: SyntheticVOCConfig) -> Path:
    """Write the stand-in into ``out`` (returns at once when ``out/meta.json`` records the same
    config; a ``meta.json`` of another config is an error)."""
    out = Path(out)
    meta_path = out / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if (
            meta.get("config") == cfg.to_dict()
            and meta.get("generator_version") == GENERATOR_VERSION
        ):
            return out
        raise DataFormatError(meta_path, "holds a dataset of another config; use another folder")
    lut = ade_lut()
    pixels = np.zeros(256, dtype=np.int64)
    images: dict[str, np.ndarray] = {}
    for split, code in SPLIT_CODES.items():
        folder, prefix = SPLIT_DIRS[split]
        sets = split_class_sets(cfg, split)
        ids = [f"{prefix}_{k + 1:08d}" for k in range(len(sets))]
        presence = np.zeros((len(ids), NUM_ADE_CLASSES + 1), dtype=bool)
        for k, image_id in enumerate(ids):
            rng = np.random.default_rng([cfg.seed, code, 0, k])
            res = render_image(rng, cfg, sets[k])
            mask = lut[res.mask]
            write_jpeg(out / ROOT / "images" / folder / f"{image_id}.jpg", res.image,
                       cfg.jpeg_quality)  # fmt: skip
            _write_l_png(out / ROOT / "annotations" / folder / f"{image_id}.png", mask)
            values = np.unique(mask)
            presence[k, values[values > 0]] = True
            pixels += np.bincount(mask.ravel(), minlength=256)
        write_class_lists(
            out / "cl_metadata" / f"{split}_cls.txt", ClassLists(tuple(ids), presence)
        )
        images[split] = presence.sum(axis=0)
    write_text(out / ROOT / "objectInfo150.txt", object_info(pixels, images))
    meta = {
        "generator": "kdseg.datasets.synthetic_voc.ade",
        "generator_version": GENERATOR_VERSION,
        "config": cfg.to_dict(),
        "voc_to_ade": list(VOC_TO_ADE),
        "images": {s: len(split_class_sets(cfg, s)) for s in SPLIT_CODES},
    }
    write_json(meta_path, meta)
    return out


def used_ids() -> Sequence[int]:
    """The ADE20K ids the stand-in uses (background excluded)."""
    return VOC_TO_ADE[1:]
