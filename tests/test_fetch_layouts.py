"""Layout checks of the ``prepare`` step on the real samples in ../shared/realdata (with the
published counts replaced by the sample's) and on small trees linked to them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from kdseg.datasets.semantickitti import read_label, write_label
from kdseg.errors import DataFormatError
from kdseg.fetch import layouts
from tests.conftest import realdata_path

SEQ = ("dataset", "sequences", "00")


def _link_tree(src: Path, dst: Path) -> None:
    """Mirror ``src`` under ``dst``: folders created, files symlinked (nothing copied)."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)


@pytest.fixture
def kitti(tmp_path) -> Path:
    _link_tree(realdata_path("semantickitti", "dataset"), tmp_path / "dataset")
    return tmp_path


def test_semantickitti_sample_passes_and_full_counts_are_required(kitti):
    summary = layouts.check_semantickitti(kitti, scans={"00": 2}, labelled=("00",))
    assert summary == {"sequences": 1, "scans": 2, "labelled_scans": 2}
    with pytest.raises(DataFormatError, match="2 scans, the dataset has 4541") as err:
        layouts.check_semantickitti(kitti)
    assert "\n" not in str(err.value)


def test_semantickitti_label_of_the_wrong_size_is_found(kitti):
    label = kitti.joinpath(*SEQ, "labels", "000001.label")
    data = label.read_bytes()
    label.unlink()
    label.write_bytes(data[:-4])
    with pytest.raises(DataFormatError, match=r"000001\.label: size does not match its scan"):
        layouts.check_semantickitti(kitti, scans={"00": 2}, labelled=("00",))


def test_scribbles_and_images(kitti):
    seq = kitti.joinpath(*SEQ)
    for i in range(2):  # scribbles derived from the real labels: every 10th point kept
        raw, inst = read_label(seq / "labels" / f"{i:06d}.label")
        write_label(
            seq / "scribbles" / f"{i:06d}.label", np.where(np.arange(raw.size) % 10, 0, raw), inst
        )
    summary = layouts.check_scribblekitti(kitti, scans={"00": 2})
    assert 0.05 < summary["labelled_fraction_first_frames"] < 0.1
    (seq / "scribbles" / "000001.label").write_bytes(bytes(8))
    with pytest.raises(DataFormatError, match=r"000001\.label: size does not match"):
        layouts.check_scribblekitti(kitti, scans={"00": 2})
    from PIL import Image

    (seq / "image_2").mkdir()
    Image.new("RGB", (8, 4)).save(seq / "image_2" / "000000.png")
    with pytest.raises(DataFormatError, match="1 images, the dataset has 2"):
        layouts.check_kitti_images(kitti, scans={"00": 2})
    Image.new("RGB", (8, 4)).save(seq / "image_2" / "000002.png")
    with pytest.raises(DataFormatError, match=r"not 000000\.\.000001"):
        layouts.check_kitti_images(kitti, scans={"00": 2})


def test_ade20k_sample(tmp_path):
    root = realdata_path("ade20k", "ADEChallengeData2016")
    assert layouts.check_ade20k(root, {"validation": 2}) == {"validation_images": 2}
    with pytest.raises(DataFormatError, match="training: folder does not exist"):
        layouts.check_ade20k(root)


def test_voc_with_trainaug(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    _link_tree(realdata_path("voc", "PascalVOC2012", "VOCdevkit", "VOC2012"), voc)
    ids = ["2011_000003", "2011_000006"]
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    (tmp_path / "list").mkdir()
    lines = [f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png" for i in ids]
    (tmp_path / "list" / "train_aug.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "SegmentationClassAug").mkdir()
    for i in ids:
        (tmp_path / "SegmentationClassAug" / f"{i}.png").symlink_to(
            voc / "SegmentationClass" / f"{i}.png"
        )
    summary = layouts.check_voc(tmp_path, {"train": 2}, trainaug=2)
    assert summary == {"train_images": 2, "trainaug_images": 2}
    (tmp_path / "SegmentationClassAug" / f"{ids[1]}.png").unlink()
    with pytest.raises(DataFormatError, match="1 of 2 masks missing"):
        layouts.check_voc(tmp_path, {"train": 2}, trainaug=2)


def test_scannet_by_file_presence(tmp_path):
    tsv = realdata_path("scannet", "meta_data", "scannetv2-labels.combined.tsv")
    (tmp_path / tsv.name).symlink_to(tsv)
    for split, scene in (("train", "scene0000_00"), ("val", "scene0011_00")):
        (tmp_path / f"scannetv2_{split}.txt").write_text(scene + "\n")
        (tmp_path / "scans" / scene).mkdir(parents=True)
        for suffix in layouts.SCANNET_SUFFIXES:
            header = b"ply\nformat ascii 1.0\nelement vertex 0\nproperty ushort label\n"
            (tmp_path / "scans" / scene / f"{scene}{suffix}").write_bytes(header)
    assert layouts.check_scannet(tmp_path, {"train": 1, "val": 1}) == {"scenes": 2}
    (tmp_path / "scans" / "scene0011_00" / "scene0011_00.aggregation.json").unlink()
    with pytest.raises(DataFormatError, match="1 of 5 scene files missing"):
        layouts.check_scannet(tmp_path, {"train": 1, "val": 1})


def test_sam_checkpoint_format(tmp_path):
    with zipfile.ZipFile(tmp_path / "sam_vit_b_01ec64.pth", "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert layouts.check_sam(tmp_path)["checkpoint"] == "sam_vit_b_01ec64.pth"
    (tmp_path / "sam_vit_b_01ec64.pth").write_text("<html>not found</html>")
    with pytest.raises(DataFormatError, match="not a torch checkpoint"):
        layouts.check_sam(tmp_path)
