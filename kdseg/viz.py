"""Pictures of frames: a bird's-eye view coloured by class, and the camera image with the
LiDAR points projected onto it (through :func:`kdseg.geometry.project_points`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti import Frame
from kdseg.datasets.semantickitti_labels import CLASS_COLORS_RGB, CLASS_NAMES
from kdseg.geometry import project_points
from kdseg.io import atomic_open

IGNORE_COLOR = np.array([110, 110, 110], np.uint8)
BACKGROUND = np.array([255, 255, 255], np.uint8)  # white: every official colour shows


def class_colors(labels: np.ndarray) -> np.ndarray:
    """``(N,)`` train ids (255 = ignore) -> ``(N, 3)`` uint8 RGB."""
    out = np.empty((labels.shape[0], 3), np.uint8)
    ign = labels == IGNORE_INDEX
    out[ign] = IGNORE_COLOR
    out[~ign] = CLASS_COLORS_RGB[labels[~ign]]
    return out


def bev_image(
    points: np.ndarray, labels: np.ndarray, half_extent: float = 40.0, resolution: float = 0.1
) -> np.ndarray:
    """Rasterise points seen from above, coloured by class.

    Args:
        points: ``(N, >=3)`` LiDAR-frame points, metres (x forward = up in the image, y left).
        labels: ``(N,)`` train ids.
        half_extent: metres shown on each side of the sensor.
        resolution: metres per pixel.
    Returns:
        ``(H, W, 3)`` uint8 with ``H = W = 2 * half_extent / resolution``.
    """
    size = round(2 * half_extent / resolution)
    img = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    row = ((half_extent - points[:, 0]) / resolution).astype(np.int64)
    col = ((half_extent - points[:, 1]) / resolution).astype(np.int64)
    keep = (row >= 0) & (row < size) & (col >= 0) & (col < size)
    order = np.argsort(points[keep, 2], kind="stable")  # higher points drawn last
    r, c = row[keep][order], col[keep][order]
    img[r, c] = class_colors(labels[keep][order])
    centre = size // 2
    img[centre - 2 : centre + 3, centre - 2 : centre + 3] = (0, 0, 0)  # the sensor
    return img


def camera_overlay(frame: Frame, labels: np.ndarray | None = None, radius: int = 1) -> np.ndarray:
    """The frame's ``image_2`` with its points drawn on top, coloured by class (or by depth).

    Returns ``(H, W, 3)`` uint8.
    """
    if frame.image is None:
        raise ValueError(f"frame {frame.sequence}/{frame.index:06d} has no image loaded")
    h, w = frame.image.shape[:2]
    proj = project_points(frame.points[:, :3], frame.calib.P2, frame.calib.Tr, (w, h))
    px = proj.pixels()
    if labels is not None:
        colors = class_colors(labels[proj.valid])
    else:
        d = np.clip(proj.depth[proj.valid] / 60.0, 0, 1)
        colors = (np.stack([1 - d, 4 * d * (1 - d), d], 1) * 255).astype(np.uint8)
    img = (frame.image.astype(np.float32) * 0.6).astype(np.uint8)
    order = np.argsort(-proj.depth[proj.valid])  # far first, near on top
    for dv in range(-radius + 1, radius):
        for du in range(-radius + 1, radius):
            u = np.clip(px[order, 0] + du, 0, w - 1)
            v = np.clip(px[order, 1] + dv, 0, h - 1)
            img[v, u] = colors[order]
    return img


def legend_image(width: int, row_height: int = 16, columns: int = 4) -> np.ndarray:
    """A colour legend of the 19 classes (plus ignore), ``(H, width, 3)`` uint8."""
    names = [*CLASS_NAMES, "ignore"]
    cols = [*CLASS_COLORS_RGB.tolist(), IGNORE_COLOR.tolist()]
    rows = -(-len(names) // columns)
    img = Image.new("RGB", (width, rows * row_height + 4), tuple(BACKGROUND.tolist()))
    draw = ImageDraw.Draw(img)
    cell = width // columns
    for k, (name, col) in enumerate(zip(names, cols, strict=True)):
        x, y = (k % columns) * cell + 4, (k // columns) * row_height + 2
        draw.rectangle([x, y + 2, x + 10, y + 12], fill=tuple(col))
        draw.text((x + 14, y), name, fill=(20, 20, 20))
    return np.asarray(img)


def save_png(path: str | Path, img: np.ndarray) -> None:
    """Atomically save an RGB array as PNG."""
    with atomic_open(path, "wb") as fh:
        Image.fromarray(img).save(fh, format="PNG")


def with_legend(img: np.ndarray) -> np.ndarray:
    """Stack a class legend under ``img``."""
    return np.concatenate([img, legend_image(img.shape[1])], axis=0)
