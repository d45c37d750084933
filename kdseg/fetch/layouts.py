"""Layout checks of the real datasets (the ``prepare`` step), one small function per dataset.

Each check takes the dataset's folder (``<data_root>/<Dataset.target>``), raises a one-line
:class:`~kdseg.errors.DataFormatError` naming the first problem, and returns a small summary
(counts) for the done record. LiDAR datasets are checked with kdseg's readers
(``datasets/semantickitti.py``, ``datasets/nuscenes.py``): file counts against the published
numbers, label/scan size agreement for every file (sizes only), and one frame per sequence read
completely. VOC, SBD, ADE20K and ScanNet are checked by file presence and counts, plus one decoded
mask; when their readers land, a check becomes a call to the reader (replace the function in
:data:`CHECKS`). Expected counts come from ``shared/specs/datasets.md`` §1-6.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kdseg.errors import DataFormatError

LayoutCheck = Callable[[Path], dict[str, Any]]
CHECKS: dict[str, LayoutCheck] = {}

# scans per sequence (spec §1.1); 00-10 carry labels, 11-21 are the hidden-label test set
SEMANTICKITTI_SCANS: dict[str, int] = {
    "00": 4541, "01": 1101, "02": 4661, "03": 801, "04": 271, "05": 2761, "06": 1101,
    "07": 1101, "08": 4071, "09": 1591, "10": 1201, "11": 921, "12": 1061, "13": 3281,
    "14": 631, "15": 1901, "16": 1731, "17": 491, "18": 1801, "19": 4981, "20": 831, "21": 2721,
}  # fmt: skip
LABELLED_SEQUENCES = tuple(f"{i:02d}" for i in range(11))
SCRIBBLE_SEQUENCES = ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10")
VOC_SPLITS = {"train": 1464, "val": 1449}
VOC_TRAINAUG = 10582
SBD_SPLITS = {"train": 8498, "val": 2857}
ADE_SPLITS = {"training": 20210, "validation": 2000}
SCANNET_SPLITS = {"train": 1201, "val": 312}
SCANNET_SUFFIXES = (
    "_vh_clean_2.ply", "_vh_clean_2.labels.ply", "_vh_clean_2.0.010000.segs.json",
    ".aggregation.json", ".txt",
)  # fmt: skip


def register(name: str) -> Callable[[LayoutCheck], LayoutCheck]:
    def add(fn: LayoutCheck) -> LayoutCheck:
        CHECKS[name] = fn
        return fn

    return add


def check_layout(dataset: Any, data_root: str | Path) -> dict[str, Any]:
    """Run ``dataset.check`` on ``<data_root>/<dataset.target>``."""
    root = Path(data_root) / dataset.target
    if not root.is_dir():
        raise DataFormatError(root, f"{dataset.name} folder does not exist")
    return {"check": dataset.check, **CHECKS[dataset.check](root)}


# ----------------------------------------------------------------------------- helpers
def _stems(folder: Path, suffix: str) -> dict[str, int]:
    """``{stem: size in bytes}`` of the files ending in ``suffix`` in ``folder``."""
    if not folder.is_dir():
        raise DataFormatError(folder, "folder does not exist")
    with os.scandir(folder) as it:
        return {
            e.name[: -len(suffix)]: e.stat().st_size
            for e in it
            if e.name.endswith(suffix) and e.is_file()
        }


def _expect_count(folder: Path, found: int, expected: int, what: str) -> None:
    if found != expected:
        raise DataFormatError(folder, f"{found} {what}, the dataset has {expected}")


def _consecutive(folder: Path, stems: dict[str, int]) -> list[str]:
    names = sorted(stems)
    want = [f"{i:06d}" for i in range(len(names))]
    if names != want:
        first = next(a for a, b in zip(names, want, strict=True) if a != b)
        raise DataFormatError(folder, f"file names are not 000000..{len(names) - 1:06d} ({first})")
    return names


def _ids(path: Path) -> list[str]:
    if not path.is_file():
        raise DataFormatError(path, "list file does not exist")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _all_present(paths: list[Path], what: str, where: Path) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataFormatError(
            where, f"{len(missing)} of {len(paths)} {what} missing ({missing[0]})"
        )


def _index_png(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
    except OSError as exc:
        raise DataFormatError(path, f"cannot decode mask: {exc}") from None
    if mode not in ("P", "L"):
        raise DataFormatError(path, f"mask must be a palette or grey PNG of class ids, got {mode}")
    return mode


# ----------------------------------------------------------------------- LiDAR datasets
def check_semantickitti(
    root: Path,
    scans: dict[str, int] = SEMANTICKITTI_SCANS,
    labelled: tuple[str, ...] = LABELLED_SEQUENCES,
) -> dict[str, Any]:
    """Scan counts, consecutive names, calib, poses/times lengths, label sizes, one frame each."""
    from kdseg.datasets.semantickitti import SemanticKITTI, read_times

    ds = SemanticKITTI(root)
    for seq, n in scans.items():
        vel = ds.seq_dir(seq) / "velodyne"
        bins = _stems(vel, ".bin")
        _expect_count(vel, len(bins), n, "scans")
        _consecutive(vel, bins)
        poses = ds.lidar_poses(seq)  # reads calib.txt and poses.txt
        if poses.shape[0] < n:
            raise DataFormatError(
                ds.seq_dir(seq) / "poses.txt", f"{poses.shape[0]} poses, {n} scans"
            )
        if read_times(ds.seq_dir(seq) / "times.txt").shape[0] < n:
            raise DataFormatError(ds.seq_dir(seq) / "times.txt", f"fewer lines than {n} scans")
        if seq in labelled:
            lab = ds.seq_dir(seq) / "labels"
            labels = _stems(lab, ".label")
            _expect_count(lab, len(labels), n, "label files")
            for stem, size in bins.items():
                if labels.get(stem, -1) * 4 != size:
                    raise DataFormatError(lab / f"{stem}.label", "size does not match its scan")
        ds.frame(seq, 0, with_labels=seq in labelled)  # one frame read completely
    return {
        "sequences": len(scans),
        "scans": sum(scans.values()),
        "labelled_scans": sum(n for s, n in scans.items() if s in labelled),
    }


def check_scribblekitti(root: Path, scans: dict[str, int] | None = None) -> dict[str, Any]:
    """Scribble files of the train sequences: counts, sizes against the scans, first file."""
    from kdseg.datasets.semantickitti import SemanticKITTI, read_label, train_labels

    scans = scans or {s: SEMANTICKITTI_SCANS[s] for s in SCRIBBLE_SEQUENCES}
    ds = SemanticKITTI(root)
    labelled = total = 0
    for seq, n in scans.items():
        folder = ds.seq_dir(seq) / "scribbles"
        files = _stems(folder, ".label")
        _expect_count(folder, len(files), n, "scribble files")
        names = _consecutive(folder, files)
        vel = ds.seq_dir(seq) / "velodyne"
        if vel.is_dir():
            bins = _stems(vel, ".bin")
            for stem, size in files.items():
                if bins.get(stem, -1) != size * 4:
                    raise DataFormatError(folder / f"{stem}.label", "size does not match its scan")
        first = folder / f"{names[0]}.label"
        raw, _ = read_label(first)
        train = train_labels(first, raw)
        labelled += int((train != 255).sum())
        total += int(train.size)
    return {
        "sequences": len(scans),
        "scribble_files": sum(scans.values()),
        "labelled_fraction_first_frames": round(labelled / max(total, 1), 4),
    }


def check_kitti_images(root: Path, scans: dict[str, int] = SEMANTICKITTI_SCANS) -> dict[str, Any]:
    """``image_2`` of every sequence: one PNG per scan, the first one decodes."""
    from kdseg.datasets.semantickitti import read_image

    seq_root = root / "dataset" / "sequences"
    for seq, n in scans.items():
        folder = seq_root / seq / "image_2"
        images = _stems(folder, ".png")
        _expect_count(folder, len(images), n, "images")
        names = _consecutive(folder, images)
        read_image(folder / f"{names[0]}.png")
    return {"sequences": len(scans), "images": sum(scans.values())}


register("semantickitti")(check_semantickitti)
register("scribblekitti")(check_scribblekitti)
register("kitti_images")(check_kitti_images)


@register("nuscenes_mini")
def check_nuscenes_mini(root: Path) -> dict[str, Any]:
    from kdseg.datasets.nuscenes import check_layout as check_nuscenes

    return check_nuscenes(root, "v1.0-mini", expected_labelled=404)


@register("nuscenes_trainval")
def check_nuscenes_trainval(root: Path) -> dict[str, Any]:
    from kdseg.datasets.nuscenes import check_layout as check_nuscenes

    return check_nuscenes(root, "v1.0-trainval")


# ---------------------------------------------------------------- indoor and 2D datasets
def check_scannet(root: Path, splits: dict[str, int] = SCANNET_SPLITS) -> dict[str, Any]:
    """Label table, split lists, and the five files of every listed scene."""
    tsv = root / "scannetv2-labels.combined.tsv"
    if not tsv.is_file():
        raise DataFormatError(tsv, "ScanNet label table does not exist")
    header = tsv.read_text().split("\n", 1)[0].split("\t")
    if "raw_category" not in header or "nyu40id" not in header:
        raise DataFormatError(tsv, "header lacks raw_category / nyu40id")
    scenes = 0
    for split, n in splits.items():
        lst = root / f"scannetv2_{split}.txt"
        ids = _ids(lst)
        _expect_count(lst, len(ids), n, "scenes")
        paths = [root / "scans" / s / f"{s}{suffix}" for s in ids for suffix in SCANNET_SUFFIXES]
        _all_present(paths, "scene files", root / "scans")
        scenes += len(ids)
    first = root / "scans" / ids[0] / f"{ids[0]}_vh_clean_2.labels.ply"
    with open(first, "rb") as fh:
        head = fh.read(4096)
    if not head.startswith(b"ply") or b"property" not in head or b"label" not in head:
        raise DataFormatError(first, "not a PLY file with a 'label' vertex property")
    return {"scenes": scenes}


def check_voc(
    root: Path, splits: dict[str, int] = VOC_SPLITS, trainaug: int | None = VOC_TRAINAUG
) -> dict[str, Any]:
    """VOC2012 segmentation splits with their images and masks; the trainaug list and masks."""
    voc = root / "VOCdevkit" / "VOC2012"
    for split, n in splits.items():
        lst = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
        ids = _ids(lst)
        _expect_count(lst, len(ids), n, "images")
        _all_present([voc / "JPEGImages" / f"{i}.jpg" for i in ids], "images", voc / "JPEGImages")
        masks = [voc / "SegmentationClass" / f"{i}.png" for i in ids]
        _all_present(masks, "masks", voc / "SegmentationClass")
    _index_png(masks[0])
    out: dict[str, Any] = {**{f"{k}_images": v for k, v in splits.items()}}
    if trainaug is not None:
        lst = root / "list" / "train_aug.txt"
        ids = [Path(i).stem for i in _ids(lst)]
        _expect_count(lst, len(ids), trainaug, "trainaug images")
        _all_present([voc / "JPEGImages" / f"{i}.jpg" for i in ids], "images", voc / "JPEGImages")
        aug = [root / "SegmentationClassAug" / f"{i}.png" for i in ids]
        _all_present(aug, "masks", root / "SegmentationClassAug")
        _index_png(aug[0])
        out["trainaug_images"] = trainaug
    return out


def check_sbd(root: Path, splits: dict[str, int] = SBD_SPLITS) -> dict[str, Any]:
    """SBD's train/val lists with images and class .mat files; train_noval.txt."""
    data = root / "benchmark_RELEASE" / "dataset"
    for split, n in splits.items():
        ids = _ids(data / f"{split}.txt")
        _expect_count(data / f"{split}.txt", len(ids), n, "images")
        _all_present([data / "img" / f"{i}.jpg" for i in ids], "images", data / "img")
        _all_present([data / "cls" / f"{i}.mat" for i in ids], "class files", data / "cls")
    _ids(root / "train_noval.txt")
    return {f"{k}_images": v for k, v in splits.items()}


def check_ade20k(root: Path, splits: dict[str, int] = ADE_SPLITS) -> dict[str, Any]:
    """Images and annotations per split (same stems), objectInfo150.txt with 150 classes."""
    info = root / "objectInfo150.txt"
    if not info.is_file():
        raise DataFormatError(info, "class table does not exist")
    rows = [r for r in info.read_text().splitlines()[1:] if r.strip()]
    _expect_count(info, len(rows), 150, "classes")
    for split, n in splits.items():
        images = _stems(root / "images" / split, ".jpg")
        _expect_count(root / "images" / split, len(images), n, "images")
        masks = _stems(root / "annotations" / split, ".png")
        if set(masks) != set(images):
            odd = sorted(set(images) ^ set(masks))
            raise DataFormatError(root / "annotations" / split, f"images without masks: {odd[:3]}")
        _index_png(root / "annotations" / split / f"{min(masks)}.png")
    return {f"{k}_images": v for k, v in splits.items()}


@register("sam")
def check_sam(root: Path) -> dict[str, Any]:
    """One ``sam_vit_*.pth`` checkpoint in a torch format (zip, or the legacy pickle)."""
    found = sorted(root.glob("sam_vit_*.pth"))
    if len(found) != 1:
        raise DataFormatError(root, f"expected one sam_vit_*.pth checkpoint, found {len(found)}")
    with open(found[0], "rb") as fh:
        legacy = fh.read(2) == b"\x80\x02"  # torch's pre-1.6 format starts with a pickle
    if not legacy and not zipfile.is_zipfile(found[0]):
        raise DataFormatError(found[0], "not a torch checkpoint (zip or legacy pickle)")
    return {"checkpoint": found[0].name, "bytes": found[0].stat().st_size}


register("scannet")(check_scannet)
register("voc")(check_voc)
register("sbd")(check_sbd)
register("ade20k")(check_ade20k)
