"""KITTI-like camera rig: calibration (P0..P3, Tr) and the pixel rays of camera 2."""

from __future__ import annotations

import numpy as np

from kdseg.datasets.semantickitti import Calibration

CAM0_IN_LIDAR = np.array([0.27, 0.0, -0.08])
"""Centre of camera 0 in the LiDAR frame, metres (0.27 m forward, 0.08 m lower)."""
CAM_OFFSETS_X = (0.0, 0.54, -0.06, 0.47)
"""x of the centres of cameras 0..3 in camera-0 coordinates (x right), metres (KITTI rig)."""
_TILT_DEG = (0.4, -0.3, 0.2)
"""Small mounting rotation (about camera x, y, z), degrees."""


def _rotation(axis: int, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def make_calibration(width: int, height: int, hfov_deg: float) -> Calibration:
    """Calibration of a KITTI-like rig whose rectified cameras see ``hfov_deg`` horizontally.

    ``Tr`` maps LiDAR (x forward, y left, z up) to camera 0 (x right, y down, z forward);
    ``P[k] = K [I | -c_k]`` with ``c_k`` the centre of camera k in camera-0 coordinates.
    """
    f = (width / 2) / np.tan(np.deg2rad(hfov_deg) / 2)
    K = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    axes = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    tilt = _rotation(0, _TILT_DEG[0]) @ _rotation(1, _TILT_DEG[1]) @ _rotation(2, _TILT_DEG[2])
    R = tilt @ axes
    Tr = np.eye(4)
    Tr[:3, :3] = R
    Tr[:3, 3] = -R @ CAM0_IN_LIDAR
    Ps = tuple(K @ np.hstack([np.eye(3), np.array([[-x], [0.0], [0.0]])]) for x in CAM_OFFSETS_X)
    return Calibration(P=Ps, Tr=Tr)  # type: ignore[arg-type]


def camera_rays(
    calib: Calibration, width: int, height: int, cam: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``(3,)`` and unit pixel rays ``(height * width, 3)`` of camera ``cam`` (LiDAR frame).

    Rays are row-major (``v * width + u``) through pixel centres, so a LiDAR point projected with
    ``project_points(xyz, P[cam], Tr, (width, height))`` lands on the pixel whose ray hits it.
    """
    K = calib.P[cam][:, :3]
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    d_cam = pix @ np.linalg.inv(K).T
    d_lidar = d_cam @ calib.Tr[:3, :3]  # R^T d for each row
    d_lidar /= np.linalg.norm(d_lidar, axis=1, keepdims=True)
    return calib.camera_center_lidar(cam), d_lidar
