"""Image sets of the 2D teacher (source, target, evaluation) and their augmentation.

Images are held in memory as ``(N, 3, H, W)`` uint8 tensors, labels as ``(N, H, W)`` uint8
tensors of train ids (255 = ignore). Random draws come from ``np.random.default_rng`` seeded by
``(seed, stream, step, sample)``, so a batch depends only on those numbers (deterministic by
seed, independent of the global generators).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kdseg import IGNORE_INDEX
from kdseg.datasets.semantickitti import SemanticKITTI, read_image, read_label_image
from kdseg.errors import DataFormatError


def _stack_images(paths: list[Path]) -> torch.Tensor:
    arrays = [read_image(p) for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataFormatError(paths[0].parent, f"images of different sizes {sorted(shapes)}")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _stack_labels(paths: list[Path], images: torch.Tensor) -> torch.Tensor:
    labels = []
    for p in paths:
        lab = read_label_image(p)
        if lab.shape != tuple(images.shape[-2:]):
            raise DataFormatError(p, f"label size {lab.shape} != image size {images.shape[-2:]}")
        labels.append(lab.astype(np.uint8))
    return torch.from_numpy(np.stack(labels))


def load_source(root: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Source-domain images ``(N, 3, H, W)`` uint8 and labels ``(N, H, W)`` uint8."""
    folder = Path(root) / "source"
    paths = sorted((folder / "images").glob("*.png"))
    if not paths:
        raise DataFormatError(folder / "images", "no source images (needed to train the teacher)")
    images = _stack_images(paths)
    return images, _stack_labels([folder / "labels" / p.name for p in paths], images)


def load_target_images(root: str | Path, sequences: tuple[str, ...] | list[str]) -> torch.Tensor:
    """``image_2`` of ``sequences`` (every frame), ``(N, 3, H, W)`` uint8; reads no labels."""
    ds = SemanticKITTI(root)
    paths = [ds.path(s, "image_2", i) for s in sequences for i in ds.frame_ids(s)]
    if not paths:
        raise DataFormatError(ds.sequences_dir, f"no camera images in sequences {sequences}")
    return _stack_images(paths)


def load_target_eval(
    root: str | Path, sequences: tuple[str, ...] | list[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``image_2`` and their dense 2D labels ``labels_2`` (evaluation only)."""
    ds = SemanticKITTI(root)
    frames = [(s, i) for s in sequences for i in ds.frame_ids(s)]
    if not frames:
        raise DataFormatError(ds.sequences_dir, f"no frames in sequences {sequences}")
    images = _stack_images([ds.path(s, "image_2", i) for s, i in frames])
    return images, _stack_labels([ds.path(s, "labels_2", i) for s, i in frames], images)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters (see :class:`kdseg.image2d.train.TeacherOptions` for help)."""

    crop_height: int = 128
    crop_width: int = 256
    scale_min: float = 0.75
    scale_max: float = 1.5
    flip_prob: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    channel_gain: float = 0.15


def _rng(seed: int, stream: int, step: int, sample: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, step, sample])


def geometric(
    image: torch.Tensor, label: torch.Tensor | None, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random scale, crop (padding with 0 / ignore when too small) and horizontal flip.

    Args:
        image: ``(3, H, W)`` float in [0, 1]. label: ``(H, W)`` int64 or ``None``.
    Returns:
        ``(3, crop_height, crop_width)`` image and ``(crop_height, crop_width)`` label (or None).
    """
    h, w = image.shape[-2:]
    s = rng.uniform(cfg.scale_min, cfg.scale_max)
    sh, sw = max(1, round(h * s)), max(1, round(w * s))
    img = F.interpolate(image[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
    lab = None
    if label is not None:
        lab = F.interpolate(label[None, None].float(), size=(sh, sw), mode="nearest")[0, 0].long()
    ch, cw = cfg.crop_height, cfg.crop_width
    if sh < ch or sw < cw:
        ph, pw = max(0, ch - sh), max(0, cw - sw)
        img = F.pad(img, (0, pw, 0, ph), value=0.0)
        if lab is not None:
            lab = F.pad(lab, (0, pw, 0, ph), value=IGNORE_INDEX)
        sh, sw = sh + ph, sw + pw
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    img = img[:, y0 : y0 + ch, x0 : x0 + cw]
    lab = lab[y0 : y0 + ch, x0 : x0 + cw] if lab is not None else None
    if rng.random() < cfg.flip_prob:
        img = img.flip(-1)
        lab = lab.flip(-1) if lab is not None else None
    return img, lab


def photometric(image: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Colour jitter of a ``(3, H, W)`` image in [0, 1]: brightness, contrast, saturation
    (factors ``U(1-a, 1+a)``) and a per-channel gain ``U(1-g, 1+g)``; clamped to [0, 1]."""
    b = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    s = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
    gain = torch.from_numpy(rng.uniform(1 - cfg.channel_gain, 1 + cfg.channel_gain, 3)).float()
    x = image * b
    x = (x - x.mean()) * c + x.mean()
    grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    x = (x - grey) * s + grey
    return (x * gain.view(3, 1, 1)).clamp(0.0, 1.0)


def source_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: AugmentConfig,
    batch_size: int,
    seed: int,
    step: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """An augmented labelled batch: ``(B, 3, ch, cw)`` float in [0, 1], ``(B, ch, cw)`` int64."""
    n = images.shape[0]
    pick = _rng(seed, 0, step, 0).choice(n, batch_size, replace=batch_size > n)
    xs, ys = [], []
    for b, i in enumerate(pick):
        rng = _rng(seed, 1, step, b)
        img, lab = geometric(images[i].float() / 255.0, labels[i].long(), cfg, rng)
        xs.append(photometric(img, cfg, rng))
        ys.append(lab)
    return torch.stack(xs), torch.stack(ys)


def target_batch(
    images: torch.Tensor, cfg: AugmentConfig, batch_size: int, seed: int, step: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views of the same unlabelled crops: clean (for the EMA teacher) and colour-jittered
    (for the student), each ``(B, 3, ch, cw)`` float in [0, 1]."""
    n = images.shape[0]
    pick = _rng(seed, 2, step, 0).choice(n, batch_size, replace=batch_size > n)
    clean, strong = [], []
    for b, i in enumerate(pick):
        rng = _rng(seed, 3, step, b)
        img, _ = geometric(images[i].float() / 255.0, None, cfg, rng)
        clean.append(img)
        strong.append(photometric(img, cfg, rng))
    return torch.stack(clean), torch.stack(strong)
