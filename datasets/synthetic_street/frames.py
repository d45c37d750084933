"""Simulation of whole frames (LiDAR scan + labels + scribbles + camera image) and source views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdseg.datasets.semantickitti import Calibration

from .camera import camera_rays, make_calibration
from .config import StreetConfig
from .entities import Scene
from .lidar import lidar_pose, sensor_directions, simulate_scan
from .raycast import cast
from .render import SOURCE_STYLE, TARGET_STYLE, Style, render
from .scene import LIDAR_HEIGHT, build_scene
from .scribbles import scribble_mask

SOURCE_VIEWS_PER_SCENE = 50
"""Source images rendered from one source scene before a new scene is generated."""
_SOURCE_STREAM = 1000
"""Offset of the source scenes' seed streams (sequence numbers are below 100)."""


@dataclass(frozen=True)
class FrameData:
    """Everything written for one frame (``N`` points, ``H x W`` image).

    Attributes:
        points: ``(N, 4)`` float32; raw, instance: ``(N,)`` uint16 dense labels;
        scribble_raw, scribble_instance: ``(N,)`` uint16 (0 where not scribbled);
        image: ``(H, W, 3)`` uint8; labels_2: ``(H, W)`` uint8 train ids (255 = ignore/sky);
        world: ``(N, 3)`` world coordinates of the points (metres).
    """

    points: np.ndarray
    raw: np.ndarray
    instance: np.ndarray
    scribble_raw: np.ndarray
    scribble_instance: np.ndarray
    image: np.ndarray
    labels_2: np.ndarray
    world: np.ndarray


def render_view(
    scene: Scene,
    calib: Calibration,
    pose: np.ndarray,
    time: float,
    size: tuple[int, int],
    style: Style,
    max_range: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Render camera 2 of a rig whose LiDAR sits at ``pose`` (LiDAR -> world, ``(4, 4)``).

    Returns ``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8 train ids.
    """
    centre, dirs = camera_rays(calib, *size)
    origin = pose[:3, :3] @ centre + pose[:3, 3]
    dirs_w = dirs @ pose[:3, :3].T
    hits = cast(
        origin,
        dirs_w,
        scene.primitives_at(time),
        scene.ground,
        scene.curb_height,
        scene.extent,
        max_range,
    )
    return render(hits, origin, dirs_w, scene, style, size)


class SequenceSimulator:
    """The scene, rig and ego path of one sequence; :meth:`frame` simulates one frame."""

    def __init__(self, cfg: StreetConfig, sequence: str, n_frames: int) -> None:
        self.cfg = cfg
        self.number = int(sequence)
        self.n_frames = n_frames
        rng = np.random.default_rng([cfg.seed, self.number, 0])
        self.scene = build_scene(
            rng, n_frames, cfg.frame_interval_s, cfg.max_range_m, cfg.scribble_spacing_m
        )
        self.calib = make_calibration(cfg.image_width, cfg.image_height, cfg.camera_hfov_deg)
        self.dirs = sensor_directions(cfg.beams, cfg.azimuth_steps)
        self.times = np.arange(n_frames) * cfg.frame_interval_s

    def world_poses(self) -> np.ndarray:
        """``(F, 4, 4)`` LiDAR -> world transforms of the frames."""
        s = self.scene
        return np.stack(
            [lidar_pose(s.ego_xy[i], s.ego_yaw[i], LIDAR_HEIGHT) for i in range(self.n_frames)]
        )

    def camera_poses(self) -> np.ndarray:
        """``(F, 4, 4)`` KITTI ``poses.txt``: camera 0 at frame i in camera 0 at frame 0."""
        tr_inv = np.linalg.inv(self.calib.Tr)
        cams = self.world_poses() @ tr_inv[None]
        return np.linalg.inv(cams[0])[None] @ cams

    def frame(self, index: int) -> FrameData:
        """Simulate frame ``index`` (deterministic in (seed, sequence, index))."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, self.number, 1, index])
        pose = lidar_pose(self.scene.ego_xy[index], self.scene.ego_yaw[index], LIDAR_HEIGHT)
        time = float(self.times[index])
        scan = simulate_scan(
            self.scene,
            pose,
            time,
            self.dirs,
            rng,
            max_range=cfg.max_range_m,
            min_range=cfg.min_range_m,
            noise=cfg.range_noise_m,
            dropout=cfg.dropout,
            range_dropout=cfg.range_dropout,
        )
        mask = scribble_mask(
            scan.world[:, :2],
            scan.entity,
            scan.raw,
            self.scene.entities,
            time,
            cfg.scribble_half_width_m,
        )
        image, labels_2 = render_view(
            self.scene,
            self.calib,
            pose,
            time,
            (cfg.image_width, cfg.image_height),
            TARGET_STYLE,
            cfg.camera_max_range_m,
        )
        return FrameData(
            points=scan.points,
            raw=scan.raw,
            instance=scan.instance,
            scribble_raw=np.where(mask, scan.raw, 0).astype(np.uint16),
            scribble_instance=np.where(mask, scan.instance, 0).astype(np.uint16),
            image=image,
            labels_2=labels_2,
            world=scan.world,
        )


def source_views(cfg: StreetConfig, chunk: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` source-style ``(image, labels)`` pairs from source scene number ``chunk``.

    Views are taken along the scene's ego path with random lateral offset and heading jitter.
    """
    rng = np.random.default_rng([cfg.seed, _SOURCE_STREAM + chunk, 0])
    scene = build_scene(rng, SOURCE_VIEWS_PER_SCENE, 0.5, cfg.max_range_m, cfg.scribble_spacing_m)
    calib = make_calibration(cfg.source_width, cfg.source_height, cfg.camera_hfov_deg)
    views = []
    for j in range(count):
        vr = np.random.default_rng([cfg.seed, _SOURCE_STREAM + chunk, 1, j])
        i = int(vr.integers(SOURCE_VIEWS_PER_SCENE))
        xy = scene.ego_xy[i] + np.array([0.0, vr.uniform(-0.6, 0.6)])
        pose = lidar_pose(xy, scene.ego_yaw[i] + vr.normal(0, 0.15), LIDAR_HEIGHT)
        views.append(
            render_view(
                scene,
                calib,
                pose,
                0.5 * i,
                (cfg.source_width, cfg.source_height),
                SOURCE_STYLE,
                cfg.camera_max_range_m,
            )
        )
    return views
