"""Pictures of frames: a bird's-eye view coloured by class, and the camera image with the
LiDAR points projected onto it (through :func:`kdseg.geometry.project_points`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti import Frame
from kdseg.datasets.semantickitti_labels import CLASS_COLORS_RGB, CLASS_NAMES
from kdseg.geometry import project_points
from kdseg.io import atomic_open

if TYPE_CHECKING:  # torch stays unimported for the picture helpers that do not need it
    from kdseg.segmenter import Segmenter

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


def label_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``image (H, W, 3)`` uint8 blended with the class colours of ``labels (H, W)`` train ids
    (255 pixels keep the image) -> ``(H, W, 3)`` uint8."""
    colors = class_colors(labels.reshape(-1)).reshape(*labels.shape, 3).astype(np.float32)
    out = image.astype(np.float32)
    mask = labels != IGNORE_INDEX
    out[mask] = (1.0 - alpha) * out[mask] + alpha * colors[mask]
    return out.round().astype(np.uint8)


def _load_run_network(run_dir: Path) -> Segmenter:
    """The deployed network of a run folder (``metrics.json`` network spec + ``model.pt``)."""
    import json

    import torch

    from kdseg.errors import DataFormatError
    from kdseg.segmenter import build_segmenter

    metrics, model = run_dir / "metrics.json", run_dir / "model.pt"
    for path in (metrics, model):
        if not path.is_file():
            raise DataFormatError(path, "run output does not exist")
    spec = json.loads(metrics.read_text()).get("network")
    if not isinstance(spec, dict):
        raise DataFormatError(metrics, "has no 'network' spec (written by an older kdseg: rerun)")
    net = build_segmenter(**spec)
    net.load_state_dict(torch.load(model, map_location="cpu", weights_only=True))
    return net.eval()


def save_ignet_figure(
    data_root: str | Path,
    teacher: str | Path,
    sup_only_run: str | Path,
    ignet_run: str | Path,
    val_frame: int,
    out_png: str | Path,
    out_pdf: str | Path,
) -> tuple[str, int]:
    """IGNet's picture of one validation frame, as PNG and PDF.

    Top: the camera image with the 2D teacher's per-pixel prediction overlaid. Bottom: BEV
    renders (±40 m, 0.2 m pixels) of the ground truth and of the Sup-only and IGNet predictions
    (the networks of the two run folders' ``model.pt``), each titled with its mIoU (over the
    classes present in the frame) and accuracy on this frame. Returns ``(sequence, index)``.
    """
    import torch
    from matplotlib.figure import Figure

    from kdseg.datasets.semantickitti import SemanticKITTI
    from kdseg.datasets.splits import split_frames
    from kdseg.errors import ConfigError
    from kdseg.evaluator import ConfusionMatrix
    from kdseg.image2d import load_teacher
    from kdseg.image2d.train import predict

    frames = split_frames(data_root, "val")
    if not 0 <= val_frame < len(frames):
        raise ConfigError("val_frame", f"{val_frame} is not in [0, {len(frames)})")
    seq, idx = frames[val_frame]
    frame = SemanticKITTI(data_root).frame(seq, idx, with_image=True)
    assert frame.image is not None and frame.labels is not None
    image = torch.from_numpy(np.array(frame.image)).permute(2, 0, 1)[None].contiguous()
    pixels = predict(load_teacher(teacher).model, image)[0].argmax(dim=0).numpy()
    points = torch.from_numpy(frame.points)
    panels = [("ground truth", frame.labels)]
    for name, run in (("Sup-only", sup_only_run), ("IGNet", ignet_run)):
        pred = _load_run_network(Path(run)).predict(points).numpy()
        cm = ConfusionMatrix(len(CLASS_NAMES))
        cm.update(pred, frame.labels)
        scores = cm.compute(absent="exclude")  # one frame: average over the classes it shows
        panels.append(
            (f"{name}: mIoU {100 * scores.miou:.1f}%, acc. {100 * scores.accuracy:.1f}%", pred)
        )

    fig = Figure(figsize=(12, 8.6), layout="constrained")
    grid = fig.add_gridspec(3, 3, height_ratios=[1.0, 1.25, 0.38])
    top = fig.add_subplot(grid[0, :])
    top.imshow(label_overlay(frame.image, pixels))
    top.set_title(f"2D teacher prediction on image_2, sequence {seq} frame {idx:06d}")
    for k, (title, labels) in enumerate(panels):
        ax = fig.add_subplot(grid[1, k])
        ax.imshow(bev_image(frame.points, labels, resolution=0.2))
        ax.set_title(f"BEV: {title}", fontsize=10)
    legend = fig.add_subplot(grid[2, :])
    legend.imshow(legend_image(1200, columns=5))
    for ax in fig.axes:
        ax.set_axis_off()
    for path, fmt in ((out_png, "png"), (out_pdf, "pdf")):
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=110)
    return seq, idx
