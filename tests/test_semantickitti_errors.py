"""Bad input gets a clear error that names the file and the problem (one test per case)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kdseg.datasets import semantickitti as sk
from kdseg.errors import DataFormatError

N = 50


def _calib() -> sk.Calibration:
    K = np.array([[700.0, 0, 300], [0, 700, 90], [0, 0, 1]])
    P = tuple(np.hstack([K, np.array([[-0.5 * k * 700], [0], [0]])]) for k in range(4))
    Tr = np.array([[0, -1, 0, 0], [0, 0, -1, -0.08], [1, 0, 0, -0.27], [0, 0, 0, 1]], float)
    return sk.Calibration(P=P, Tr=Tr)  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A one-frame SemanticKITTI-layout dataset that reads back fine."""
    seq = tmp_path / "dataset" / "sequences" / "00"
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(N, 4)).astype(np.float32)
    sk.write_points(seq / "velodyne" / "000000.bin", pts)
    sk.write_label(
        seq / "labels" / "000000.label", np.full(N, 40, np.uint16), np.zeros(N, np.uint16)
    )
    sk.write_calib(seq / "calib.txt", _calib())
    sk.write_poses(seq / "poses.txt", np.eye(4)[None])
    sk.write_times(seq / "times.txt", np.zeros(1))
    sk.SemanticKITTI(tmp_path).frame("00", 0)  # sanity: the fixture itself is valid
    return tmp_path


def _seq(root: Path) -> Path:
    return root / "dataset" / "sequences" / "00"


def test_bin_size_not_multiple_of_16(root):
    path = _seq(root) / "velodyne" / "000000.bin"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataFormatError, match="not a multiple of 16") as err:
        sk.SemanticKITTI(root).frame("00", 0)
    assert err.value.path == path


def test_label_count_differs_from_point_count(root):
    path = _seq(root) / "labels" / "000000.label"
    sk.write_label(path, np.full(N - 1, 40, np.uint16), np.zeros(N - 1, np.uint16))
    with pytest.raises(
        DataFormatError, match=f"has {N - 1} labels but the scan has {N} points"
    ) as err:
        sk.SemanticKITTI(root).frame("00", 0)
    assert err.value.path == path


def test_unknown_raw_id(root):
    path = _seq(root) / "labels" / "000000.label"
    sem = np.full(N, 40, np.uint16)
    sem[3] = 77
    sk.write_label(path, sem, np.zeros(N, np.uint16))
    with pytest.raises(DataFormatError, match=r"unknown raw label ids \[77\]") as err:
        sk.SemanticKITTI(root).frame("00", 0)
    assert err.value.path == path


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("P2: 1 2 3", "P2.*expected 12 numbers, got 3"),
        ("P2 1 2 3 4 5 6 7 8 9 10 11 12", "expected 'KEY: values'"),
        ("P2: 1 2 3 4 5 6 7 8 9 10 11 x", "non-numeric"),
        ("P2: 1 2 3 4 5 6 7 8 9 10 11 nan", "NaN/inf"),
    ],
)
def test_malformed_calib_line(root, line, problem):
    path = _seq(root) / "calib.txt"
    lines = [ln if not ln.startswith("P2:") else line for ln in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=problem) as err:
        sk.SemanticKITTI(root).frame("00", 0)
    assert err.value.path == path


def test_missing_calib_key(root):
    path = _seq(root) / "calib.txt"
    path.write_text(
        "\n".join(ln for ln in path.read_text().splitlines() if not ln.startswith("Tr"))
    )
    with pytest.raises(DataFormatError, match=r"missing calibration keys \['Tr'\]"):
        sk.SemanticKITTI(root).frame("00", 0)


def test_missing_calibration_file(root):
    (_seq(root) / "calib.txt").unlink()
    with pytest.raises(DataFormatError, match="calibration file does not exist"):
        sk.SemanticKITTI(root).frame("00", 0)


def test_missing_image_for_frame_that_needs_one(root):
    sk.SemanticKITTI(root).frame("00", 0, with_image=False)  # fine without the camera
    with pytest.raises(DataFormatError, match="camera image missing") as err:
        sk.SemanticKITTI(root).frame("00", 0, with_image=True)
    assert err.value.path == _seq(root) / "image_2" / "000000.png"


def test_nan_coordinates(root):
    path = _seq(root) / "velodyne" / "000000.bin"
    pts = sk.read_points(path)
    pts[7, 1] = np.nan
    pts.tofile(path)
    with pytest.raises(
        DataFormatError, match=r"1 points have NaN/inf coordinates \(first at index 7\)"
    ):
        sk.SemanticKITTI(root).frame("00", 0)


def test_missing_scribbles_named(root):
    with pytest.raises(DataFormatError, match="label file does not exist") as err:
        sk.SemanticKITTI(root).frame("00", 0, supervision="scribbles")
    assert err.value.path.parent.name == "scribbles"


def test_poses_shorter_than_scans(root):
    sk.write_points(_seq(root) / "velodyne" / "000001.bin", np.zeros((N, 4), np.float32))
    sk.write_label(
        _seq(root) / "labels" / "000001.label", np.full(N, 40, np.uint16), np.zeros(N, np.uint16)
    )
    with pytest.raises(DataFormatError, match="has 1 poses but scan 1 was requested"):
        sk.SemanticKITTI(root).frame("00", 1)


def test_writers_round_trip(root):
    seq = _seq(root)
    ds = sk.SemanticKITTI(root)
    calib = ds.calib("00")
    for k in range(4):
        np.testing.assert_allclose(calib.P[k], _calib().P[k])
    np.testing.assert_allclose(calib.Tr, _calib().Tr)
    assert sk.read_times(seq / "times.txt").shape == (1,)
    # an atomic write leaves no temporary file behind
    assert not [p for p in seq.rglob("*.tmp")]
