"""Pascal VOC reader: real samples (palette decoding, void, class lists) and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kdseg.datasets.continual_images import write_jpeg, write_palette_png
from kdseg.datasets.continual_lists import read_class_lists
from kdseg.datasets.voc import (
    NUM_CLASSES,
    VOC_CLASSES,
    VOCSegmentation,
    read_voc_mask,
    voc_palette,
)
from kdseg.errors import DataFormatError
from tests.conftest import realdata_path

REAL_IDS = ("2011_000003", "2011_000006")


@pytest.fixture(scope="module")
def real_voc() -> VOCSegmentation:
    return VOCSegmentation(realdata_path("voc"), ids=REAL_IDS)


def test_palette_is_the_voc_colour_map():
    pal = voc_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert pal[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert pal[15].tolist() == [192, 128, 128]  # person
    assert pal[255].tolist() == [224, 224, 192]  # void
    assert len({tuple(c) for c in pal}) == 256


def test_class_names():
    assert NUM_CLASSES == 21
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[15] == "person"
    assert VOC_CLASSES[20] == "tvmonitor"


def test_real_masks_decode_to_class_ids(real_voc):
    a, b = real_voc
    assert a.image_id == "2011_000003" and a.image.shape == (338, 500, 3)
    assert a.image.dtype == np.uint8 and a.mask.dtype == np.uint8
    assert set(np.unique(a.mask)) == {0, 5, 15, 255}  # background, bottle, person, void
    assert set(np.unique(b.mask)) == {0, 9, 15, 18, 255}  # chair, person, sofa
    assert b.image.shape == (375, 500, 3) and b.mask.shape == (375, 500)
    # void pixels counted by hand on the files (labelme draws void as regions)
    assert int((a.mask == 255).sum()) == 9460 and int((b.mask == 255).sum()) == 909
    assert a.classes() == [0, 5, 15] and [VOC_CLASSES[c] for c in b.classes()[1:]] == [
        "chair",
        "person",
        "sofa",
    ]


def test_real_palette_equals_ours():
    from PIL import Image

    path = realdata_path("voc", "PascalVOC2012/VOCdevkit/VOC2012/SegmentationClass")
    with Image.open(path / "2011_000003.png") as im:
        assert im.mode == "P"
        assert np.array_equal(np.array(im.getpalette()).reshape(-1, 3), voc_palette())


def test_class_lists_from_masks_match_cl_metadata(real_voc):
    ours = real_voc.class_lists()
    ref = read_class_lists(realdata_path("voc", "cl_metadata", "train_cls.txt"), NUM_CLASSES)
    rows = ref.rows_of(REAL_IDS)
    assert ours.ids == REAL_IDS
    assert np.array_equal(ours.presence, ref.presence[rows])


def _layout(tmp_path: Path, n: int = 2, size: tuple[int, int] = (8, 12)) -> Path:
    """A tiny VOC layout: n images of size (H, W) with masks and train/val lists."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    rng = np.random.default_rng(0)
    ids = [f"2000_{i:06d}" for i in range(n)]
    for i, name in enumerate(ids):
        write_jpeg(voc / "JPEGImages" / f"{name}.jpg", rng.integers(0, 256, (*size, 3), np.uint8))
        mask = np.zeros(size, np.uint8)
        mask[2:5, 3:7] = i + 1
        mask[5, 3:7] = 255
        write_palette_png(voc / "SegmentationClass" / f"{name}.png", mask, voc_palette())
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(ids) + "\n")
    (lists / "val.txt").write_text(ids[0] + "\n")
    return tmp_path


def test_layout_lists_and_roots(tmp_path):
    root = _layout(tmp_path)
    ds = VOCSegmentation(root, "train")
    assert len(ds) == 2 and [s.classes() for s in ds] == [[0, 1], [0, 2]]
    assert VOCSegmentation(root / "VOCdevkit" / "VOC2012", "val").ids == ("2000_000000",)
    assert ds[1].mask[5, 3] == 255


def test_trainaug_lgkd_layout(tmp_path):
    root = _layout(tmp_path)
    aug = root / "SegmentationClassAug"
    aug.mkdir()
    for name in ("2000_000000", "2000_000001"):
        mask = np.full((8, 12), 7, np.uint8)  # single-channel 'L' PNG as in SegmentationClassAug
        from PIL import Image

        Image.fromarray(mask, "L").save(aug / f"{name}.png")
    (root / "list").mkdir()
    (root / "list" / "train_aug.txt").write_text(
        "/JPEGImages/2000_000001.jpg /SegmentationClassAug/2000_000001.png\n"
        "/JPEGImages/2000_000000.jpg /SegmentationClassAug/2000_000000.png\n"
    )
    ds = VOCSegmentation(root, "trainaug")
    assert ds.ids == ("2000_000001", "2000_000000")
    assert ds.mask_dir == aug and ds[0].classes() == [7]


# ------------------------------------------------------------------------------ bad input
def _one_line_error(call, path: Path, match: str) -> None:
    with pytest.raises(DataFormatError, match=match) as err:
        call()
    assert err.value.path == path
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_image(tmp_path):
    root = _layout(tmp_path)
    ds = VOCSegmentation(root)
    path = ds.image_path("2000_000000")
    path.unlink()
    _one_line_error(lambda: ds.load("2000_000000"), path, "does not exist")


def test_missing_mask(tmp_path):
    root = _layout(tmp_path)
    ds = VOCSegmentation(root)
    path = ds.mask_path("2000_000001")
    path.unlink()
    _one_line_error(lambda: ds.load("2000_000001"), path, "does not exist")


def test_truncated_jpeg(tmp_path):
    root = _layout(tmp_path, size=(64, 64))
    ds = VOCSegmentation(root)
    path = ds.image_path("2000_000000")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _one_line_error(lambda: ds.load("2000_000000"), path, "cannot decode image")


def test_corrupt_png(tmp_path):
    root = _layout(tmp_path)
    ds = VOCSegmentation(root)
    path = ds.mask_path("2000_000000")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    _one_line_error(lambda: ds.load("2000_000000"), path, "cannot decode PNG")


def test_mask_size_differs_from_image(tmp_path):
    root = _layout(tmp_path)
    ds = VOCSegmentation(root)
    path = ds.mask_path("2000_000001")
    write_palette_png(path, np.zeros((9, 12), np.uint8), voc_palette())
    _one_line_error(lambda: ds.load("2000_000001"), path, r"mask is 12x9 .* image is 12x8")


def test_unknown_class_ids(tmp_path):
    root = _layout(tmp_path)
    ds = VOCSegmentation(root)
    path = ds.mask_path("2000_000000")
    mask = np.zeros((8, 12), np.uint8)
    mask[0, 0], mask[1, 1] = 21, 100
    write_palette_png(path, mask, voc_palette())
    _one_line_error(lambda: ds.load("2000_000000"), path, r"unknown class ids 21, 100")


def test_rgb_mask_is_refused(tmp_path):
    from PIL import Image

    root = _layout(tmp_path)
    ds = VOCSegmentation(root)
    path = ds.mask_path("2000_000000")
    colours = voc_palette()[np.zeros((8, 12), np.uint8)]  # a colour rendering of the mask
    Image.fromarray(colours, "RGB").save(path)
    _one_line_error(lambda: ds.load("2000_000000"), path, "mode RGB")


def test_jpeg_given_as_mask(tmp_path):
    root = _layout(tmp_path)
    path = tmp_path / "mask.png"
    path.write_bytes((root / "VOCdevkit/VOC2012/JPEGImages/2000_000000.jpg").read_bytes())
    _one_line_error(lambda: read_voc_mask(path), path, "must be a PNG")


def test_missing_split_list_and_layout(tmp_path):
    root = _layout(tmp_path)
    lst = root / "VOCdevkit/VOC2012/ImageSets/Segmentation/trainval.txt"
    _one_line_error(lambda: VOCSegmentation(root, "trainval"), lst, "does not exist")
    _one_line_error(lambda: VOCSegmentation(tmp_path / "nowhere"), tmp_path / "nowhere", "JPEG")
    with pytest.raises(DataFormatError, match="unknown VOC split"):
        VOCSegmentation(root, "test")
