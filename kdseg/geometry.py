"""Rigid transforms and the one LiDAR -> image projection of the code base."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def to_homogeneous(xyz: np.ndarray) -> np.ndarray:
    """``(N, 3)`` -> ``(N, 4)`` with a trailing column of ones (float64)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    return np.concatenate([xyz, np.ones((xyz.shape[0], 1))], axis=1)


def transform_points(T: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to ``(N, 3)`` points (metres); returns float64 ``(N, 3)``."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"transform must be 4x4, got {T.shape}")
    xyz = np.asarray(xyz, dtype=np.float64)
    return xyz @ T[:3, :3].T + T[:3, 3]


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform (rotation transposed, translation rotated back)."""
    T = np.asarray(T, dtype=np.float64)
    inv = np.eye(4)
    inv[:3, :3] = T[:3, :3].T
    inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inv


def lidar_poses(cam0_poses: np.ndarray, Tr: np.ndarray) -> np.ndarray:
    """LiDAR poses from KITTI camera-0 poses: ``T_i = inv(Tr) @ pose_i @ Tr``.

    Args:
        cam0_poses: ``(F, 4, 4)`` poses of camera 0 at scan i in the frame of camera 0 at scan 0.
        Tr: ``(4, 4)`` velodyne -> camera 0.
    Returns:
        ``(F, 4, 4)`` poses of the LiDAR at scan i in the LiDAR frame of scan 0, so that
        ``inv(T_i) @ T_j`` takes points of scan j into the frame of scan i.
    """
    Tr = np.asarray(Tr, dtype=np.float64)
    return np.linalg.inv(Tr)[None] @ np.asarray(cam0_poses, dtype=np.float64) @ Tr[None]


def relative_transform(poses: np.ndarray, i: int, j: int) -> np.ndarray:
    """``inv(T_i) @ T_j``: takes points of scan ``j`` into the frame of scan ``i``."""
    return invert_rigid(poses[i]) @ poses[j]


@dataclass(frozen=True)
class Projection:
    """Result of :func:`project_points` for ``N`` points.

    Attributes:
        uv: ``(N, 2)`` float64 pixel coordinates (u = column, v = row). Pixel ``(i, j)`` covers
            ``[i, i+1) x [j, j+1)`` (KITTI/mmdetection3d convention): its index is ``floor(uv)``.
        depth: ``(N,)`` float64 depth along the camera's optical axis, metres.
        valid: ``(N,)`` bool, depth > ``min_depth`` and inside the image.
    """

    uv: np.ndarray
    depth: np.ndarray
    valid: np.ndarray

    def pixels(self) -> np.ndarray:
        """Integer ``(M, 2)`` pixel indices (column, row) of the valid points: ``floor(uv)``."""
        return np.floor(self.uv[self.valid]).astype(np.int64)


def project_points(
    xyz: np.ndarray,
    P: np.ndarray,
    Tr: np.ndarray,
    image_size: tuple[int, int],
    min_depth: float = 1e-3,
) -> Projection:
    """Project LiDAR points into an image: ``uv ~ P @ Tr @ [x y z 1]``.

    This is the only projection function of kdseg; every method and visualisation calls it.

    Args:
        xyz: ``(N, 3)`` points in the LiDAR frame, metres.
        P: ``(3, 4)`` camera projection (KITTI ``P2`` for ``image_2``).
        Tr: ``(4, 4)`` (or ``(3, 4)``) LiDAR -> reference camera transform (KITTI ``Tr``).
        image_size: ``(width, height)`` in pixels.
        min_depth: points closer than this (metres, along the optical axis) are invalid.
    """
    P = np.asarray(P, dtype=np.float64)
    Tr = np.asarray(Tr, dtype=np.float64)
    if P.shape != (3, 4):
        raise ValueError(f"P must be 3x4, got {P.shape}")
    if Tr.shape == (3, 4):
        Tr = np.vstack([Tr, [0.0, 0.0, 0.0, 1.0]])
    if Tr.shape != (4, 4):
        raise ValueError(f"Tr must be 3x4 or 4x4, got {Tr.shape}")
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise ValueError(f"points must be (N, >=3), got {xyz.shape}")
    hom = to_homogeneous(xyz[:, :3])
    img = hom @ (P @ Tr).T
    depth = img[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = img[:, :2] / depth[:, None]
    width, height = image_size
    valid = (
        (depth > min_depth)
        & (uv[:, 0] >= 0)
        & (uv[:, 0] < width)
        & (uv[:, 1] >= 0)
        & (uv[:, 1] < height)
    )
    return Projection(uv=uv, depth=depth, valid=valid)
