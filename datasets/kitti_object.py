"""KITTI 3D-object frames (``training/image_2``, ``velodyne[_reduced]``, ``calib``).

The official object calibration file has ``P0..P3``, ``R0_rect``, ``Tr_velo_to_cam`` and
``Tr_imu_to_velo``; the LiDAR -> rectified camera-0 transform is ``R0_rect @ Tr_velo_to_cam``.
mmdetection3d's info ``.pkl`` stores the same as ``cam2img`` (P2 as 4x4) and ``lidar2cam``.
Both are turned into the odometry-style :class:`~kdseg.datasets.semantickitti.Calibration`, so
points go through the one projection function :func:`kdseg.geometry.project_points`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdseg.errors import DataFormatError
from kdseg.geometry import Projection, project_points

from .semantickitti import Calibration, parse_calib_lines, read_image, read_points

_OBJECT_KEYS = {"P0": 12, "P1": 12, "P2": 12, "P3": 12, "R0_rect": 9, "Tr_velo_to_cam": 12}


def read_object_calib(path: str | Path) -> Calibration:
    """Parse a KITTI object ``calib/NNNNNN.txt`` (Tr = R0_rect · Tr_velo_to_cam)."""
    vals = parse_calib_lines(path, _OBJECT_KEYS)
    R0 = np.eye(4)
    R0[:3, :3] = vals["R0_rect"].reshape(3, 3)
    Tv = np.vstack([vals["Tr_velo_to_cam"].reshape(3, 4), [0, 0, 0, 1]])
    Ps = tuple(vals[f"P{k}"].reshape(3, 4) for k in range(4))
    return Calibration(P=Ps, Tr=R0 @ Tv)  # type: ignore[arg-type]


def calib_from_mmdet3d_info(path: str | Path, camera: str = "CAM2") -> Calibration:
    """Calibration from an mmdetection3d KITTI info ``.pkl`` (``cam2img`` and ``lidar2cam``).

    Only ``P[2]`` (from ``cam2img``) is meaningful; the other projections are copies of it.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            info = pickle.load(fh)
        cam = info["data_list"][0]["images"][camera]
        P2 = np.asarray(cam["cam2img"], dtype=np.float64)[:3, :4]
        Tr = np.asarray(cam["lidar2cam"], dtype=np.float64)
    except FileNotFoundError:
        raise DataFormatError(path, "info file does not exist") from None
    except (KeyError, IndexError, TypeError, pickle.UnpicklingError) as exc:
        raise DataFormatError(path, f"not an mmdet3d KITTI info file ({exc!r})") from None
    return Calibration(P=(P2, P2, P2, P2), Tr=Tr)


@dataclass
class ObjectFrame:
    """A KITTI object frame: ``points (N, 4)`` float32, ``image (H, W, 3)`` uint8, calibration."""

    points: np.ndarray
    image: np.ndarray
    calib: Calibration

    def image_projection(self) -> Projection:
        h, w = self.image.shape[:2]
        return project_points(self.points[:, :3], self.calib.P2, self.calib.Tr, (w, h))


def read_object_frame(
    root: str | Path, index: int, calib: Calibration | None = None, velodyne: str = "velodyne"
) -> ObjectFrame:
    """Read ``<root>/training/{velodyne,image_2,calib}/<index>``; pass ``calib`` to override."""
    root = Path(root) / "training"
    name = f"{index:06d}"
    points = read_points(root / velodyne / f"{name}.bin")
    image = read_image(root / "image_2" / f"{name}.png")
    if calib is None:
        calib = read_object_calib(root / "calib" / f"{name}.txt")
    return ObjectFrame(points=points, image=image, calib=calib)
