"""ADE20K SceneParsing reader: real samples (label sets, label spaces, objectInfo150) and bad
input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kdseg.datasets.ade20k import ADE20K, label_lut, read_ade_annotation, read_object_info
from kdseg.datasets.continual_images import write_jpeg
from kdseg.datasets.continual_lists import read_class_lists
from kdseg.errors import ConfigError, DataFormatError
from tests.conftest import realdata_path

# the label sets named in shared/realdata/README.md
REAL_LABELS = {
    "ADE_val_00000001": {1, 2, 3, 5, 7, 10, 18},
    "ADE_val_00000002": {1, 2, 3, 5, 14, 18},
}


@pytest.fixture(scope="module")
def real_root() -> Path:
    return realdata_path("ade20k")


def test_real_annotations_continual_space(real_root):
    ds = ADE20K(real_root, "validation")
    assert ds.ids == tuple(REAL_LABELS) and ds.num_classes == 151
    for sample in ds:
        assert sample.mask.dtype == np.uint8 and sample.mask.shape == sample.image.shape[:2]
        # 0 ("other objects") is present in both and kept as class 0 (background)
        assert set(sample.classes()) == {0} | REAL_LABELS[sample.image_id]
    assert ds[0].image.shape == (512, 683, 3) and ds[1].image.shape == (364, 500, 3)


def test_real_annotations_official_space(real_root):
    cont = ADE20K(real_root, "validation")
    off = ADE20K(real_root, "validation", labels="official")
    assert off.num_classes == 150
    for a, b in zip(cont, off, strict=True):
        assert set(b.classes()) == {c - 1 for c in REAL_LABELS[a.image_id]}
        assert np.array_equal(b.mask == 255, a.mask == 0)
        assert np.array_equal(b.mask[a.mask > 0], a.mask[a.mask > 0] - 1)


def test_label_lut():
    off = label_lut("official")
    assert off[0] == 255 and off[1] == 0 and off[150] == 149 and off[255] == 255
    assert np.array_equal(label_lut("continual"), np.arange(256))
    with pytest.raises(ConfigError, match="labels"):
        label_lut("raw")


def test_class_lists_match_cl_metadata(real_root):
    ours = ADE20K(real_root, "validation").class_lists()
    ref = read_class_lists(realdata_path("ade20k", "cl_metadata", "val_cls.txt"), 151)
    assert np.array_equal(ours.presence, ref.presence[ref.rows_of(ours.ids)])


def test_object_info(real_root):
    rows = read_object_info(real_root / "ADEChallengeData2016" / "objectInfo150.txt")
    assert len(rows) == 150 and [r.index for r in rows] == list(range(1, 151))
    names = {r.index: r.name for r in rows}
    # first synonyms as listed in shared/specs/datasets.md §6 (leading spaces stripped)
    expected = {1: "wall", 2: "building", 13: "person", 21: "car", 45: "chest of drawers"}
    expected |= {91: "airplane", 127: "animal", 142: "crt screen", 150: "flag"}
    assert {k: names[k] for k in expected} == expected
    assert rows[0].ratio == pytest.approx(0.1576) and rows[0].train == 11664
    assert ADE20K(real_root, "validation").class_names()[:3] == ["other", "wall", "building"]


# ------------------------------------------------------------------------------ bad input
def _layout(tmp_path: Path) -> Path:
    root = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    for i in (1, 2):
        name = f"ADE_train_{i:08d}"
        write_jpeg(root / "images/training" / f"{name}.jpg", rng.integers(0, 256, (6, 9, 3), "u1"))
        (root / "annotations/training").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 9), 149 + i, np.uint8), "L").save(
            root / "annotations/training" / f"{name}.png"
        )
    return tmp_path


def _raises(call, path: Path, match: str) -> None:
    with pytest.raises(DataFormatError, match=match) as err:
        call()
    assert err.value.path == path and "\n" not in str(err.value)


def test_layout_reads(tmp_path):
    ds = ADE20K(_layout(tmp_path))
    assert ds.ids == ("ADE_train_00000001", "ADE_train_00000002")
    assert ds[0].classes() == [150]  # the second one holds an invalid 151 (next test)
    assert ADE20K(tmp_path, labels="official", ids=ds.ids[:1])[0].classes() == [149]


def test_value_above_150(tmp_path):
    ds = ADE20K(_layout(tmp_path))
    path = ds.mask_path("ADE_train_00000002")  # holds 151
    _raises(lambda: ds.load("ADE_train_00000002"), path, "unknown class ids 151; .*0..150")


def test_255_in_annotation(tmp_path):
    ds = ADE20K(_layout(tmp_path))
    path = ds.mask_path("ADE_train_00000001")
    Image.fromarray(np.full((6, 9), 255, np.uint8), "L").save(path)
    _raises(lambda: read_ade_annotation(path), path, "unknown class ids 255")


def test_rgb_annotation(tmp_path):
    ds = ADE20K(_layout(tmp_path))
    path = ds.mask_path("ADE_train_00000001")
    Image.fromarray(np.zeros((6, 9, 3), np.uint8), "RGB").save(path)
    _raises(lambda: ds.load("ADE_train_00000001"), path, "mode RGB")


def test_size_mismatch(tmp_path):
    ds = ADE20K(_layout(tmp_path))
    path = ds.mask_path("ADE_train_00000001")
    Image.fromarray(np.zeros((7, 9), np.uint8), "L").save(path)
    _raises(lambda: ds.load("ADE_train_00000001"), path, r"mask is 9x7 .* image is 9x6")


def test_missing_and_corrupt_files(tmp_path):
    ds = ADE20K(_layout(tmp_path))
    img = ds.image_path("ADE_train_00000001")
    img.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    _raises(lambda: ds.load("ADE_train_00000001"), img, "cannot decode image")
    img.unlink()
    _raises(lambda: ds.load("ADE_train_00000001"), img, "does not exist")
    mask = ds.mask_path("ADE_train_00000002")
    mask.unlink()
    _raises(lambda: ds.load_mask("ADE_train_00000002"), mask, "does not exist")


def test_bad_object_info(tmp_path):
    path = tmp_path / "objectInfo150.txt"
    path.write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1\t5\t1\twall\n")
    _raises(lambda: read_object_info(path), path, "has 1 classes, expected 150")
    path.write_text("Idx\tRatio\tTrain\tVal\tName\n1\tx\t5\t1\twall\n")
    _raises(lambda: read_object_info(path), path, "line 2: malformed")
    path.write_text("wall\n")
    _raises(lambda: read_object_info(path), path, "header")


def test_bad_root_and_split(tmp_path):
    _raises(lambda: ADE20K(tmp_path), tmp_path, "no ADEChallengeData2016")
    with pytest.raises(ConfigError, match="split"):
        ADE20K(_layout(tmp_path), "test")
