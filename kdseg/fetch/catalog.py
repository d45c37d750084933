"""The catalog of real datasets: one typed entry per dataset, every URL, size and checksum here.

Sources: ``shared/specs/datasets.md`` §7 (URLs, sizes, checksums and who published them) and
§1-6 (layouts). Paths in an entry are relative to the workflow's ``data_root``; the readers open
``<data_root>/<Dataset.target>`` (``config/config.yaml``: ``datasets.*.real_path``).

A file without a published checksum must be a compressed archive (zip, tar.gz, tar.bz2): its
transfer is then verified by the archive's own CRCs while it is extracted, and the sha256 we saw
is recorded. ``validate_catalog`` enforces this.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .errors import FetchError
from .model import GB, MB, Checksum, Dataset, Gate, RemoteFile

_CAI = "CompressAI (third party), shared/specs/datasets.md §7"
_TV = "torchvision (third party), shared/specs/datasets.md §7"
_GLUON = "gluoncv (third party), shared/specs/datasets.md §7"
_SAM = "third-party consensus; its first 6 digits are the suffix of the official file name"
_S3 = "https://s3.eu-central-1.amazonaws.com/avg-kitti"
_SK_SEQ = "semantickitti/dataset/sequences"
_NUS_CDN = "https://d36yt3mvayqw5m.cloudfront.net/public/v1.0"
_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything"

KITTI_GATE = Gate(
    licence="KITTI: CC BY-NC-SA 3.0, registration required",
    register="https://www.cvlibs.net/datasets/kitti/user_register.php",
    download_page="https://www.cvlibs.net/datasets/kitti/eval_odometry.php",
)
NUSCENES_GATE = Gate(
    licence="nuScenes / nuScenes-lidarseg: CC BY-NC-SA 4.0 and the nuScenes terms of use, "
    "log-in required",
    register="https://www.nuscenes.org/sign-up",
    download_page="https://www.nuscenes.org/nuscenes#download",
)
SCANNET_GATE = Gate(
    licence="ScanNet Terms of Use (non-commercial, no redistribution), granted by e-mail",
    register="fill in the ScanNet Terms of Use (http://kaldir.vc.in.tum.de/scannet/ScanNet_TOS.pdf)"
    " with your institutional e-mail address and send it to scannet@googlegroups.com; the ScanNet"
    " team replies with the download script download-scannet.py",
    download_page="https://github.com/ScanNet/ScanNet#scannet-data",
    extra_steps=(
        "for T in _vh_clean_2.ply _vh_clean_2.labels.ply _vh_clean_2.0.010000.segs.json "
        ".aggregation.json .txt; do python download-scannet.py -o {data_root}/scannet --type $T;"
        " done",
        "python download-scannet.py -o {data_root}/scannet --label_map   "
        "(writes scannetv2-labels.combined.tsv)",
        "copy scannetv2_train.txt and scannetv2_val.txt from "
        "https://github.com/ScanNet/ScanNet/tree/master/Tasks/Benchmark into {data_root}/scannet/",
    ),
)


def _nuscenes_trainval_blobs() -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(
            f"v1.0-trainval{i:02d}_blobs.tgz",
            f"{_NUS_CDN}/v1.0-trainval{i:02d}_blobs.tgz",
            30 * GB,
            None,
            dest="nuscenes",
            gated=True,
            where=f'"Full dataset (v1.0)", "Trainval", file blobs part {i}',
        )
        for i in range(1, 11)
    )


def _sam(variant: str, suffix: str, md5: str, approx: int) -> Dataset:
    name = f"sam_{variant}_{suffix}.pth"
    return Dataset(
        name=f"sam-{variant.replace('_', '-')}",
        title=f"Segment Anything checkpoint ({variant.replace('_', '-').upper()})",
        licence="Apache-2.0 (segment-anything)",
        target=f"sam-{variant.replace('_', '-')}",
        layout=(f"sam-{variant.replace('_', '-')}/{name}",),
        check="sam",
        files=(
            RemoteFile(
                name,
                f"{_SAM_URL}/{name}",
                approx,
                Checksum("md5", md5, _SAM),
                dest=f"sam-{variant.replace('_', '-')}/{name}",
            ),
        ),
    )


_DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="semantickitti",
        title="SemanticKITTI (KITTI odometry scans + calibration, SemanticKITTI labels + poses)",
        licence="KITTI: CC BY-NC-SA 3.0; SemanticKITTI labels: CC BY-NC-SA 4.0",
        target="semantickitti",
        layout=(
            f"{_SK_SEQ}/XX/velodyne/NNNNNN.bin   XX = 00..21  (data_odometry_velodyne.zip)",
            f"{_SK_SEQ}/XX/calib.txt, times.txt           (data_odometry_calib.zip)",
            f"{_SK_SEQ}/XX/labels/NNNNNN.label, poses.txt  XX = 00..10 labels  "
            "(data_odometry_labels.zip)",
        ),
        check="semantickitti",
        files=(
            RemoteFile(
                "data_odometry_velodyne.zip",
                f"{_S3}/data_odometry_velodyne.zip",
                80 * GB,
                Checksum(
                    "sha256",
                    "062a45667bec6874ac27f733bd6809919f077265e7ac0bb25ac885798fa85ab5",
                    _CAI,
                ),
                dest=_SK_SEQ,
                anchor="sequences",
                gated=True,
                present=f"{_SK_SEQ}/00/velodyne",
                where='"Download odometry data set (velodyne laser data, 80 GB)"',
            ),
            RemoteFile(
                "data_odometry_calib.zip",
                f"{_S3}/data_odometry_calib.zip",
                1 * MB,
                Checksum(
                    "sha256",
                    "fa45d2bbff828776e6df689b161415fb7cd719345454b6d3567c2ff81fa4d075",
                    _CAI,
                ),
                dest=_SK_SEQ,
                anchor="sequences",
                gated=True,
                present=f"{_SK_SEQ}/00/calib.txt",
                where='"Download odometry data set (calibration files, 1 MB)"',
            ),
            RemoteFile(
                "data_odometry_labels.zip",
                "http://www.semantic-kitti.org/assets/data_odometry_labels.zip",
                179 * MB,
                Checksum(
                    "sha256",
                    "408ec524636a393bae0288a0b2f48bf5418a1af988e82dee8496f89ddb7e6dda",
                    _CAI,
                ),
                dest=_SK_SEQ,
                anchor="sequences",
                present=f"{_SK_SEQ}/00/labels",
            ),
        ),
        gate=KITTI_GATE,
    ),
    Dataset(
        name="scribblekitti",
        title="ScribbleKITTI scribble labels (train sequences 00-07, 09, 10)",
        licence="not stated; derived from SemanticKITTI, so treat as CC BY-NC-SA",
        target="semantickitti",
        layout=(f"{_SK_SEQ}/XX/scribbles/NNNNNN.label  XX = 00..07, 09, 10",),
        check="scribblekitti",
        files=(
            RemoteFile(
                "scribblekitti.zip",
                "https://data.vision.ee.ethz.ch/ouenal/scribblekitti/scribblekitti.zip",
                118 * MB,
                None,
                dest=_SK_SEQ,
                anchor="sequences",
                present=f"{_SK_SEQ}/00/scribbles",
            ),
        ),
    ),
    Dataset(
        name="kitti-odometry-color",
        title="KITTI odometry colour images (image_2, image_3) for the 2D teacher",
        licence="KITTI: CC BY-NC-SA 3.0, registration required",
        target="semantickitti",
        layout=(f"{_SK_SEQ}/XX/image_2/NNNNNN.png, image_3/  XX = 00..21",),
        check="kitti_images",
        files=(
            RemoteFile(
                "data_odometry_color.zip",
                f"{_S3}/data_odometry_color.zip",
                65 * GB,
                None,
                dest=_SK_SEQ,
                anchor="sequences",
                gated=True,
                present=f"{_SK_SEQ}/00/image_2",
                where='"Download odometry data set (color, 65 GB)"',
            ),
        ),
        gate=KITTI_GATE,
    ),
    Dataset(
        name="nuscenes-mini",
        title="nuScenes v1.0-mini with nuScenes-lidarseg (10 scenes, 404 labelled keyframes)",
        licence=NUSCENES_GATE.licence,
        target="nuscenes",
        layout=(
            "nuscenes/samples/{LIDAR_TOP,CAM_FRONT,...}/*, nuscenes/sweeps/*, nuscenes/maps/*",
            "nuscenes/v1.0-mini/*.json   (lidarseg.json; category.json with `index`)",
            "nuscenes/lidarseg/v1.0-mini/<token>_lidarseg.bin",
        ),
        check="nuscenes_mini",
        files=(
            RemoteFile(
                "v1.0-mini.tgz",
                "https://www.nuscenes.org/data/v1.0-mini.tgz",
                4 * GB,
                None,
                dest="nuscenes",
                gated=True,
                present="nuscenes/v1.0-mini/sample.json",
                where='"Full dataset (v1.0)", "Mini"',
            ),
            RemoteFile(
                "nuScenes-lidarseg-mini-v1.0.tar.bz2",
                "https://www.nuscenes.org/data/nuScenes-lidarseg-mini-v1.0.tar.bz2",
                0,
                None,
                dest="nuscenes",
                gated=True,
                present="nuscenes/v1.0-mini/lidarseg.json",
                where='"nuScenes-lidarseg", "Mini"',
            ),
        ),
        gate=NUSCENES_GATE,
    ),
    Dataset(
        name="nuscenes",
        title="nuScenes v1.0-trainval with nuScenes-lidarseg (850 scenes)",
        licence=NUSCENES_GATE.licence,
        target="nuscenes",
        layout=(
            "nuscenes/samples/*, nuscenes/sweeps/*, nuscenes/maps/*",
            "nuscenes/v1.0-trainval/*.json   (lidarseg.json; category.json with `index`)",
            "nuscenes/lidarseg/v1.0-trainval/<token>_lidarseg.bin",
        ),
        check="nuscenes_trainval",
        files=(
            RemoteFile(
                "v1.0-trainval_meta.tgz",
                f"{_NUS_CDN}/v1.0-trainval_meta.tgz",
                0,
                None,
                dest="nuscenes",
                gated=True,
                present="nuscenes/v1.0-trainval/sample.json",
                where='"Full dataset (v1.0)", "Trainval", metadata',
            ),
            *_nuscenes_trainval_blobs(),
            RemoteFile(
                "nuScenes-lidarseg-all-v1.0.tar.bz2",
                "https://d36yt3mvayqw5m.cloudfront.net/public/nuscenes-lidarseg-v1.0/"
                "nuScenes-lidarseg-all-v1.0.tar.bz2",
                0,
                None,
                dest="nuscenes",
                gated=True,
                present="nuscenes/v1.0-trainval/lidarseg.json",
                where='"nuScenes-lidarseg", "All"',
            ),
        ),
        gate=NUSCENES_GATE,
    ),
    Dataset(
        name="scannet",
        title="ScanNet v2 (1,513 scans; meshes, labels, segments, aggregations)",
        licence=SCANNET_GATE.licence,
        target="scannet",
        layout=(
            "scannet/scans/sceneXXXX_YY/sceneXXXX_YY{_vh_clean_2.ply, _vh_clean_2.labels.ply, "
            "_vh_clean_2.0.010000.segs.json, .aggregation.json, .txt}",
            "scannet/scannetv2-labels.combined.tsv",
            "scannet/scannetv2_train.txt, scannet/scannetv2_val.txt",
        ),
        check="scannet",
        files=(),
        gate=SCANNET_GATE,
    ),
    Dataset(
        name="voc",
        title="Pascal VOC 2012 with the SBD-augmented masks (SegmentationClassAug, trainaug list)",
        licence="VOC: images under their Flickr owners' terms, annotations for research use",
        target="voc/PascalVOC2012",
        layout=(
            "voc/PascalVOC2012/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets}/",
            "voc/PascalVOC2012/SegmentationClassAug/*.png",
            "voc/PascalVOC2012/list/train_aug.txt",
        ),
        check="voc",
        files=(
            RemoteFile(
                "VOCtrainval_11-May-2012.tar",
                "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
                1900 * MB,
                Checksum("md5", "6cd6e144f989b92b3379bac3b3de84fd", _TV),
                dest="voc/PascalVOC2012/VOCdevkit",
                anchor="VOCdevkit",
                present="voc/PascalVOC2012/VOCdevkit/VOC2012/JPEGImages",
            ),
            RemoteFile(
                "SegmentationClassAug.zip",
                "http://cs.jhu.edu/~cxliu/data/SegmentationClassAug.zip",
                0,
                None,
                dest="voc/PascalVOC2012/SegmentationClassAug",
                anchor="SegmentationClassAug",
                present="voc/PascalVOC2012/SegmentationClassAug",
            ),
            RemoteFile(
                "list.zip",
                "http://cs.jhu.edu/~cxliu/data/list.zip",
                0,
                None,
                dest="voc/PascalVOC2012/list",
                anchor="list",
                present="voc/PascalVOC2012/list/train_aug.txt",
            ),
        ),
    ),
    Dataset(
        name="sbd",
        title="Semantic Boundaries Dataset (the source of VOC trainaug)",
        licence="research use (Hariharan et al.)",
        target="sbd",
        layout=(
            "sbd/benchmark_RELEASE/dataset/{img,cls,inst}/, train.txt, val.txt",
            "sbd/train_noval.txt",
        ),
        check="sbd",
        files=(
            RemoteFile(
                "benchmark.tgz",
                "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/"
                "semantic_contours/benchmark.tgz",
                1400 * MB,
                Checksum("md5", "82b4d87ceb2ed10f6038a1cba92111cb", _TV),
                dest="sbd/benchmark_RELEASE",
                anchor="benchmark_RELEASE",
            ),
            RemoteFile(
                "train_noval.txt",
                "http://home.bharathh.info/pubs/codes/SBD/train_noval.txt",
                0,
                Checksum("md5", "79bff800c5f0b1ec6b21080a3c066722", _TV),
                dest="sbd/train_noval.txt",
            ),
        ),
    ),
    Dataset(
        name="ade20k",
        title="ADE20K SceneParsing (ADEChallengeData2016, 150 classes)",
        licence="ADE20K terms of use (images under their owners' terms)",
        target="ade20k/ADEChallengeData2016",
        layout=(
            "ade20k/ADEChallengeData2016/images/{training,validation}/ADE_*.jpg",
            "ade20k/ADEChallengeData2016/annotations/{training,validation}/ADE_*.png",
            "ade20k/ADEChallengeData2016/objectInfo150.txt, sceneCategories.txt",
        ),
        check="ade20k",
        files=(
            RemoteFile(
                "ADEChallengeData2016.zip",
                "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
                923 * MB,
                Checksum("sha1", "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7", _GLUON),
                dest="ade20k/ADEChallengeData2016",
                anchor="ADEChallengeData2016",
            ),
        ),
    ),
    _sam("vit_b", "01ec64", "01ec64d29a2fca3f0661936605ae66f8", 375 * MB),
    _sam("vit_l", "0b3195", "0b3195507c641ddb6910d2bb5adee89c", 1250 * MB),
    _sam("vit_h", "4b8939", "4b8939a88964f0f4ff5f5b2642c598a6", 2560 * MB),
)

CATALOG: dict[str, Dataset] = {d.name: d for d in _DATASETS}


def get_dataset(name: str, catalog: dict[str, Dataset] | None = None) -> Dataset:
    """The catalog entry ``name``; an unknown name is a one-line :class:`FetchError`."""
    catalog = CATALOG if catalog is None else catalog
    if name not in catalog:
        raise FetchError(name, f"unknown dataset; the catalog has {', '.join(sorted(catalog))}")
    return catalog[name]


def _relative(path: str) -> bool:
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts and str(p) not in ("", ".")


def validate_catalog(catalog: dict[str, Dataset] | None = None) -> None:
    """Check the invariants the fetch code relies on; raises ``ValueError`` naming the entry."""
    catalog = CATALOG if catalog is None else catalog
    for key, ds in catalog.items():
        if key != ds.name:
            raise ValueError(f"catalog key {key!r} names dataset {ds.name!r}")
        if not _relative(ds.target) or not _relative(ds.name):
            raise ValueError(f"{ds.name}: target and name must be relative paths")
        if any(f.gated for f in ds.files) and ds.gate is None:
            raise ValueError(f"{ds.name}: gated files need a Gate with the steps")
        if not ds.files and ds.gate is None:
            raise ValueError(f"{ds.name}: no files and no gate: nothing to fetch")
        names = [f.name for f in ds.files]
        if len(set(names)) != len(names):
            raise ValueError(f"{ds.name}: duplicate file names")
        for f in ds.files:
            if "/" in f.name or f.name.startswith("."):
                raise ValueError(f"{ds.name}/{f.name}: file names must be plain")
            if not _relative(f.dest) or (f.present and not _relative(f.present)):
                raise ValueError(f"{ds.name}/{f.name}: dest/present must be relative paths")
            if f.checksum is None and not f.compressed:
                raise ValueError(
                    f"{ds.name}/{f.name}: no checksum and no archive CRCs: cannot be verified"
                )
            if f.kind == "file" and f.anchor is not None:
                raise ValueError(f"{ds.name}/{f.name}: a plain file has no anchor")
