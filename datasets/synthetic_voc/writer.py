"""Writing the synthetic VOC dataset in the Pascal VOC layout (public :func:`generate`).

Output (``out/``, the same shape as ``shared/realdata/voc``)::

    PascalVOC2012/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    PascalVOC2012/VOCdevkit/VOC2012/SegmentationClass/<id>.png     VOC palette, 255 = void
    PascalVOC2012/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    cl_metadata/{train_cls,val_cls}.txt    per-image class lists (SSUL format, 0-based)
    meta.json                              config, version, statistics, timings; written last

Ids are ``train_000000``... and ``val_000000``...; the ``train`` split plays the role of VOC's
trainaug set in the continual protocols (:mod:`kdseg.datasets.continual_split` reads
``cl_metadata/`` unchanged).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kdseg.datasets.continual_images import write_jpeg, write_palette_png
from kdseg.datasets.continual_lists import ClassLists, write_class_lists
from kdseg.datasets.voc import NUM_CLASSES, voc_palette
from kdseg.errors import DataFormatError
from kdseg.io import write_json, write_text

from .config import GENERATOR_VERSION, SyntheticVOCConfig
from .scene import draw_class_sets, render_image

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1}
VOC_SUBDIR = Path("PascalVOC2012") / "VOCdevkit" / "VOC2012"


def voc_dir(out: str | Path) -> Path:
    """The ``VOC2012`` folder of a generated dataset."""
    return Path(out) / VOC_SUBDIR


def image_ids(cfg: SyntheticVOCConfig, split: str) -> list[str]:
    n = cfg.train_images if split == "train" else cfg.val_images
    return [f"{split}_{k:06d}" for k in range(n)]


def split_class_sets(cfg: SyntheticVOCConfig, split: str) -> list[tuple[int, ...]]:
    """The class set each image of ``split`` is rendered with (deterministic by seed)."""
    rng = np.random.default_rng([cfg.seed, SPLIT_CODES[split], 1])
    return draw_class_sets(len(image_ids(cfg, split)), cfg.min_images_per_class, rng)


def _chunk(out: Path, cfg: SyntheticVOCConfig, split: str, start: int, stop: int) -> dict:
    """Render and write images ``start..stop-1`` of ``split``; returns their statistics."""
    sets = split_class_sets(cfg, split)
    ids = image_ids(cfg, split)
    palette = voc_palette()
    folder = voc_dir(out)
    presence = np.zeros((stop - start, NUM_CLASSES), dtype=bool)
    instances = attempts = 0
    pixels = np.zeros(256, dtype=np.int64)
    for r, k in enumerate(range(start, stop)):
        rng = np.random.default_rng([cfg.seed, SPLIT_CODES[split], 0, k])
        res = render_image(rng, cfg, sets[k])
        write_jpeg(folder / "JPEGImages" / f"{ids[k]}.jpg", res.image, cfg.jpeg_quality)
        write_palette_png(folder / "SegmentationClass" / f"{ids[k]}.png", res.mask, palette)
        values = np.unique(res.mask)
        presence[r, values[(values > 0) & (values < NUM_CLASSES)]] = True
        instances += res.instances
        attempts += res.attempts - 1
        pixels += np.bincount(res.mask.ravel(), minlength=256)
    lost = sum(
        len(set(sets[k]) - set(np.flatnonzero(presence[k - start]))) for k in range(start, stop)
    )
    return {"presence": presence, "instances": instances, "redraws": attempts, "pixels": pixels,
            "classes_lost": lost}  # fmt: skip


def _chunks(cfg: SyntheticVOCConfig, size: int = 200) -> list[tuple[str, int, int]]:
    out = []
    for split in SPLIT_CODES:
        n = len(image_ids(cfg, split))
        out += [(split, a, min(a + size, n)) for a in range(0, n, size)]
    return out


def generate(out: str | Path, cfg: SyntheticVOCConfig, workers: int = 1) -> Path:
    """Generate the dataset into ``out``; returns ``out``.

    Returns at once when ``out/meta.json`` records the same config and generator version; a
    ``meta.json`` of another config is an error (nothing is overwritten). ``workers > 1`` renders
    chunks of 200 images in a process pool (the bytes do not depend on ``workers``).
    """
    out = Path(out)
    meta_path = out / "meta.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataFormatError(meta_path, f"unreadable meta.json: {exc}") from None
        if (
            meta.get("config") == cfg.to_dict()
            and meta.get("generator_version") == GENERATOR_VERSION
        ):
            return out
        raise DataFormatError(
            meta_path, "holds a dataset of another config or generator version; "
            "generate into another folder or delete this one"
        )  # fmt: skip
    t0 = time.perf_counter()
    jobs = _chunks(cfg)
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            results = list(pool.map(_chunk, *zip(*[(out, cfg, *j) for j in jobs], strict=True)))
    else:
        results = [_chunk(out, cfg, *j) for j in jobs]
    seconds = time.perf_counter() - t0
    stats: dict[str, Any] = {}
    for split in SPLIT_CODES:
        mine = [r for (s, _, _), r in zip(jobs, results, strict=True) if s == split]
        ids = image_ids(cfg, split)
        lists = ClassLists(tuple(ids), np.concatenate([r["presence"] for r in mine]), split)
        write_class_lists(out / "cl_metadata" / f"{split}_cls.txt", lists)
        write_text(
            voc_dir(out) / "ImageSets" / "Segmentation" / f"{split}.txt", "\n".join(ids) + "\n"
        )
        pixels = np.sum([r["pixels"] for r in mine], axis=0)
        stats[split] = {
            "images": len(ids),
            "instances_per_image": sum(r["instances"] for r in mine) / len(ids),
            "layout_redraws": int(sum(r["redraws"] for r in mine)),
            "classes_lost_to_occlusion": int(sum(r["classes_lost"] for r in mine)),
            "images_per_class": lists.images_per_class()[1:].tolist(),
            "background_pixel_share": float(pixels[0] / pixels.sum()),
            "void_pixel_share": float(pixels[255] / pixels.sum()),
        }
    all_ids = image_ids(cfg, "train") + image_ids(cfg, "val")
    write_text(
        voc_dir(out) / "ImageSets" / "Segmentation" / "trainval.txt", "\n".join(all_ids) + "\n"
    )
    meta = {
        "generator": "kdseg.datasets.synthetic_voc",
        "generator_version": GENERATOR_VERSION,
        "config": cfg.to_dict(),
        "stats": stats,
        "seconds": round(seconds, 2),
        "workers": workers,
    }
    write_json(meta_path, meta)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of :func:`generate`:
    ``python -m kdseg.datasets.synthetic_voc --preset default --out data/voc_synth``."""
    parser = argparse.ArgumentParser(
        prog="kdseg.datasets.synthetic_voc", description="Generate the synthetic VOC dataset."
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--preset", default="default", choices=("smoke", "default", "paper"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    cfg = SyntheticVOCConfig.for_preset(args.preset, seed=args.seed)
    out = generate(args.out, cfg, workers=args.workers)
    meta = json.loads((out / "meta.json").read_text())
    print(f"{out}: {cfg.train_images} + {cfg.val_images} images in {meta['seconds']} s")
    return 0
