"""Synthetic VOC generator: layout read back by the VOC reader, class lists consistent with the
masks, determinism, VOC statistics embedded and reproduced, continual filtering on it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from kdseg.datasets.continual import filter_images, get_task
from kdseg.datasets.continual_lists import ClassLists, read_class_lists
from kdseg.datasets.continual_split import write_task_split
from kdseg.datasets.synthetic_voc import SyntheticVOCConfig, generate, voc_dir
from kdseg.datasets.synthetic_voc.class_sets import VOC_TRAINAUG_CLASS_SETS, class_set_counts
from kdseg.datasets.synthetic_voc.realism import (
    compare_lists,
    format_markdown,
    image_level_stats,
    mask_stats,
    realism_table,
)
from kdseg.datasets.synthetic_voc.writer import split_class_sets
from kdseg.datasets.voc import VOCSegmentation, voc_palette
from kdseg.errors import ConfigError, DataFormatError
from tests.conftest import realdata_path

TINY = {"train_images": 40, "val_images": 20, "min_images_per_class": 1}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    return generate(
        tmp_path_factory.mktemp("synvoc") / "smoke", SyntheticVOCConfig.for_preset("smoke")
    )


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != "meta.json":
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_layout_reads_back(smoke):
    cfg = SyntheticVOCConfig.for_preset("smoke")
    train = VOCSegmentation(smoke, "train")
    assert len(train) == cfg.train_images and len(VOCSegmentation(smoke, "val")) == cfg.val_images
    assert len(VOCSegmentation(smoke, "trainval")) == cfg.train_images + cfg.val_images
    sample = train[0]
    assert sample.image.shape == (64, 64, 3) and sample.mask.shape == (64, 64)
    with Image.open(train.mask_path(sample.image_id)) as im:
        assert im.mode == "P"
        assert np.array_equal(np.array(im.getpalette()).reshape(-1, 3), voc_palette())
    with Image.open(train.image_path(sample.image_id)) as im:
        assert im.format == "JPEG"
    assert voc_dir(smoke) == train.voc_dir


def test_class_lists_equal_masks(smoke):
    for split in ("train", "val"):
        from_masks = VOCSegmentation(smoke, split).class_lists()
        written = read_class_lists(smoke / "cl_metadata" / f"{split}_cls.txt", 21)
        assert written.ids == from_masks.ids
        assert np.array_equal(written.presence, from_masks.presence)


def test_images_show_the_sampled_classes(smoke):
    cfg = SyntheticVOCConfig.for_preset("smoke")
    lists = read_class_lists(smoke / "cl_metadata" / "train_cls.txt", 21)
    sets = split_class_sets(cfg, "train")
    same = sum(tuple(lists.classes_of(r)) == s for r, s in enumerate(sets))
    assert same >= 0.95 * len(sets)  # only occlusion may hide a class
    per_image = lists.presence[:, 1:].sum(axis=1)
    assert (per_image >= 1).all() and (per_image >= 2).any()
    assert (lists.images_per_class()[1:] >= 1).all()


def test_void_borders_outline_objects(smoke):
    ds = VOCSegmentation(smoke, "train")
    near = total = 0
    for name in ds.ids:
        m = ds.load_mask(name)
        void, fg = m == 255, (m > 0) & (m < 255)
        near += int((void & ndimage.binary_dilation(fg, iterations=2)).sum())
        total += int(void.sum())
    assert total > 0 and near >= 0.85 * total  # the rest: difficult objects, all void


def test_continual_filtering_on_synthetic(smoke, tmp_path):
    summary = json.loads(
        write_task_split(smoke / "cl_metadata", "voc", "15-1", "overlap", tmp_path).read_text()
    )
    assert all(n >= 2 for n in summary["counts"]["train"])  # min_images_per_class = 2
    assert summary["counts"]["test"][-1] == 40


def test_default_class_sets_give_nonempty_steps():
    """The default preset's class sets (what is rendered) keep every 15-1/15-5/19-1 step busy."""
    cfg = SyntheticVOCConfig.for_preset("default")
    sets = split_class_sets(cfg, "train")
    presence = np.zeros((len(sets), 21), bool)
    for r, s in enumerate(sets):
        presence[r, list(s)] = True
    lists = ClassLists(tuple(f"train_{r:06d}" for r in range(len(sets))), presence)
    for name in ("15-1", "15-5", "19-1"):
        task = get_task("voc", name)
        counts = [len(filter_images(lists, task, t, "overlap")) for t in range(task.num_steps)]
        assert min(counts) >= 30, (name, counts)


def test_deterministic_by_seed(tmp_path):
    cfg = SyntheticVOCConfig.for_preset("smoke", **TINY)
    a, b = generate(tmp_path / "a", cfg), generate(tmp_path / "b", cfg, workers=2)
    assert _digest(a) == _digest(b)
    c = generate(tmp_path / "c", SyntheticVOCConfig.for_preset("smoke", **TINY, seed=1))
    assert _digest(a) != _digest(c)


def test_existing_output(tmp_path):
    cfg = SyntheticVOCConfig.for_preset("smoke", **TINY)
    out = generate(tmp_path / "d", cfg)
    stamp = (out / "meta.json").stat().st_mtime_ns
    assert generate(out, cfg) == out and (out / "meta.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataFormatError, match="another config"):
        generate(out, SyntheticVOCConfig.for_preset("smoke", **TINY, seed=5))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"] == cfg.to_dict() and meta["stats"]["train"]["images"] == 40


def test_config_presets_and_errors():
    assert SyntheticVOCConfig.for_preset("default") == SyntheticVOCConfig()
    paper = SyntheticVOCConfig.for_preset("paper")
    assert (paper.train_images, paper.val_images, paper.width) == (10582, 1449, 96)
    cfg = SyntheticVOCConfig.for_preset("smoke", seed=3)
    assert SyntheticVOCConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="preset"):
        SyntheticVOCConfig.for_preset("huge")
    with pytest.raises(ConfigError, match="width"):
        SyntheticVOCConfig(width=8)
    with pytest.raises(ConfigError, match="difficult_prob"):
        SyntheticVOCConfig(difficult_prob=1.5)
    with pytest.raises(ConfigError, match="min_images_per_class"):
        SyntheticVOCConfig(train_images=30, min_images_per_class=2)
    with pytest.raises(ConfigError, match="colour"):
        SyntheticVOCConfig.from_dict({"colour": 1})


# ------------------------------------------------------------------------------ VOC statistics
def test_embedded_class_sets_equal_trainaug_lists():
    lists = read_class_lists(realdata_path("voc", "cl_metadata", "train_cls.txt"), 21)
    assert dict(VOC_TRAINAUG_CLASS_SETS) == dict(class_set_counts(lists))
    assert sum(n for _, n in VOC_TRAINAUG_CLASS_SETS) == 10582


def test_sampler_follows_voc_frequencies_and_cooccurrence():
    lists = read_class_lists(realdata_path("voc", "cl_metadata", "train_cls.txt"), 21)
    sets = split_class_sets(SyntheticVOCConfig.for_preset("default"), "train")
    presence = np.zeros((len(sets), 21), bool)
    for r, s in enumerate(sets):
        presence[r, list(s)] = True
    synthetic = ClassLists(tuple(f"{r:05d}" for r in range(len(sets))), presence)
    d = compare_lists(synthetic, lists)
    assert d["class frequency TV distance to trainaug"] < 0.05
    assert d["co-occurrence correlation with trainaug"] > 0.95
    shares = image_level_stats(synthetic)
    assert abs(shares["person (% of images)"] - 36.84) < 4  # trainaug: 3898 of 10582


def test_mask_stats_hand_count():
    m = np.zeros((10, 10), np.uint8)
    m[0:3, 0:3] = 15
    m[6:9, 6:9] = 15
    m[0:2, 7:10] = 5
    m[5, :] = 255
    stats = mask_stats([m])
    assert stats["objects per image"] == 3
    assert stats["void pixels (%)"] == pytest.approx(10.0)
    assert stats["background pixels (%)"] == pytest.approx(100 - 9 - 9 - 6 - 10)


def test_realism_table(smoke):
    voc = realdata_path("voc")
    rows = realism_table(
        smoke, voc / "cl_metadata" / "train_cls.txt", voc, ["2011_000003", "2011_000006"]
    )
    by_name = {r.name: r for r in rows}
    assert by_name["images"].voc_trainaug == 10582 and by_name["images"].voc_samples == 2
    assert (
        by_name["classes per image"].voc_samples == 2.5
    )  # {bottle, person}, {chair, person, sofa}
    assert 40 < by_name["background pixels (%)"].synthetic < 95
    text = format_markdown(rows)
    assert text.count("\n") == len(rows) + 2 and "| person (% of images) |" in text
