"""Spinning multi-beam LiDAR (HDL-64E-like) simulated by ray casting the scene."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .entities import Scene
from .raycast import cast

#: HDL-64E-like elevation table (degrees): 32 upper beams 2.0 .. -8.33 (dense near the horizon),
#: 32 lower beams -8.83 .. -24.8
HDL64_ELEVATIONS_DEG: np.ndarray = np.concatenate(
    [np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)]
)

#: mean remission per raw id (material); unknown ids use 0.3
REMISSION: dict[int, float] = {
    1: 0.1,
    10: 0.35,
    11: 0.3,
    15: 0.35,
    18: 0.4,
    20: 0.4,
    30: 0.3,
    31: 0.3,
    32: 0.3,
    40: 0.18,
    44: 0.22,
    48: 0.3,
    49: 0.28,
    50: 0.35,
    51: 0.3,
    52: 0.35,
    60: 0.75,
    70: 0.12,
    71: 0.2,
    72: 0.25,
    80: 0.4,
    81: 0.9,
    99: 0.3,
    252: 0.35,
    253: 0.3,
    254: 0.3,
    255: 0.35,
    258: 0.4,
    259: 0.4,
}
_REMISSION_LUT = np.full(1 << 16, 0.3)
for _raw, _value in REMISSION.items():
    _REMISSION_LUT[_raw] = _value

OUTLIER_RATE = 0.002
"""Fraction of returns replaced by spurious points (raw id 1, 'outlier') along the same ray."""


def beam_elevations(beams: int) -> np.ndarray:
    """``(beams,)`` elevations in radians, evenly subsampled from the HDL-64E table."""
    idx = np.round(np.linspace(0, 63, beams)).astype(np.int64)
    return np.deg2rad(HDL64_ELEVATIONS_DEG[idx])


def sensor_directions(beams: int, azimuth_steps: int) -> np.ndarray:
    """Unit ray directions ``(beams * azimuth_steps, 3)`` in the LiDAR frame, beam-major.

    The azimuth starts behind the sensor and turns clockwise (as a Velodyne spins).
    """
    el = beam_elevations(beams)[:, None]
    az = (np.pi - 2 * np.pi * (np.arange(azimuth_steps) + 0.5) / azimuth_steps)[None, :]
    dirs = np.stack(
        [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el) * np.ones_like(az)], axis=-1
    )
    return dirs.reshape(-1, 3)


def lidar_pose(xy: np.ndarray, yaw: float, height: float) -> np.ndarray:
    """``(4, 4)`` LiDAR -> world transform for a sensor at ``xy`` (m), heading ``yaw`` (rad)."""
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:2, :2] = [[c, -s], [s, c]]
    pose[:3, 3] = [xy[0], xy[1], height]
    return pose


@dataclass(frozen=True)
class LidarScan:
    """One scan of ``N`` points.

    Attributes:
        points: ``(N, 4)`` float32 x, y, z (LiDAR frame, metres), remission in [0, 1].
        raw: ``(N,)`` uint16 raw SemanticKITTI ids.
        instance: ``(N,)`` uint16 instance ids (0 for stuff and outliers).
        entity: ``(N,)`` int64 entity index, -1 for outliers.
        world: ``(N, 3)`` float64 points in the world frame (noise-free surface point).
    """

    points: np.ndarray
    raw: np.ndarray
    instance: np.ndarray
    entity: np.ndarray
    world: np.ndarray


def simulate_scan(
    scene: Scene,
    pose: np.ndarray,
    time: float,
    dirs: np.ndarray,
    rng: np.random.Generator,
    *,
    max_range: float,
    min_range: float,
    noise: float,
    dropout: float,
    range_dropout: float,
) -> LidarScan:
    """Cast ``dirs (R, 3)`` (LiDAR frame) from ``pose`` at ``time`` s and turn hits into points.

    Adds range noise (sigma ``noise`` m), random + range-dependent dropout, remission by
    material with incidence falloff, and a few outlier points.
    """
    n = dirs.shape[0]
    rot = pose[:3, :3]
    dirs_w = dirs @ rot.T
    hits = cast(
        pose[:3, 3],
        dirs_w,
        scene.primitives_at(time),
        scene.ground,
        scene.curb_height,
        scene.extent,
        max_range,
    )
    # every random stream has a fixed size so the draws never depend on the scene
    u_drop, eps, u_out, u_frac = rng.random(n), rng.normal(0, 1, n), rng.random(n), rng.random(n)
    rem_noise = rng.normal(0, 0.05, n)
    t = hits.t
    p_drop = dropout + range_dropout * (np.minimum(t, max_range) / max_range) ** 2
    keep = np.isfinite(t) & (t >= min_range) & (u_drop >= p_drop)
    ents = scene.entities
    raw = np.where(keep, ents.raw[np.maximum(hits.entity, 0)], 0).astype(np.uint16)
    inst = np.where(keep, ents.instance[np.maximum(hits.entity, 0)], 0).astype(np.uint16)
    entity = hits.entity.copy()
    cos_inc = np.abs((hits.normal * dirs_w).sum(axis=1))
    remission = _REMISSION_LUT[raw] * (0.35 + 0.65 * cos_inc) + rem_noise
    outlier = keep & (u_out < OUTLIER_RATE)
    r = np.where(outlier, t * (0.1 + 0.8 * u_frac), t)
    raw[outlier], inst[outlier], entity[outlier] = 1, 0, -1
    remission[outlier] = 0.05 + 0.1 * u_frac[outlier]
    r_noisy = r + noise * eps
    idx = np.flatnonzero(keep)
    xyz = dirs[idx] * r_noisy[idx, None]
    points = np.concatenate([xyz, np.clip(remission[idx], 0.0, 1.0)[:, None]], axis=1)
    world = pose[:3, 3] + dirs_w[idx] * r[idx, None]
    return LidarScan(
        points=points.astype(np.float32),
        raw=raw[idx],
        instance=inst[idx],
        entity=entity[idx],
        world=world,
    )
