"""The image batch source of the continual 2D runs: a step's images (from its index file),
label masking of old and future classes, MiB/PLOP's augmentation, evaluation.

* :func:`open_reader`: the reader of a dataset layout (``voc``: Pascal VOC 2012, trainaug when
  ``SegmentationClassAug`` exists, else the ``train`` list, which is what the synthetic VOC data
  provide; ``ade20k``: ADEChallengeData2016).
* :class:`ImageSet`: the images of a list of ids with their masks mapped through a ``(256,)``
  look-up table (the step's ``train_lut`` for training: old and future classes -> 0; its
  ``eval_lut`` for testing: unseen classes -> 0), decoded once and kept in memory up to
  ``cache_mb``.
* :class:`ImageBatches`: ``batches(step) -> ImageBatch``: epochs over the set in a permutation
  drawn from ``(seed, epoch)`` (every image once per epoch, as a shuffled ``DataLoader``), each
  image augmented as MiB/PLOP/LGKD's ``train_transform``: random resized crop (area scale
  ``(0.5, 2.0)`` of the image, log-uniform aspect ratio in ``(3/4, 4/3)``, 10 attempts, then a
  central crop; resized to ``crop_size``, bilinear for the image, nearest for the mask), a
  horizontal flip with probability 0.5, normalisation with the ImageNet mean/std. Deterministic
  in ``(seed, step)``.
* :func:`evaluate`: the one confusion-matrix evaluator on a test set, after the official
  ``val_transform`` (shorter side resized to ``eval_size``, central ``eval_size`` crop; or the
  native size when ``eval_size`` is None).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdseg.datasets.continual_images import ImageSample
from kdseg.errors import ConfigError, DataFormatError
from kdseg.evaluator import ConfusionMatrix
from kdseg.options import option

from .networks import IMAGENET_MEAN, IMAGENET_STD

DATASET_FORMATS: tuple[str, ...] = ("voc", "ade20k")


@dataclass(frozen=True)
class ImageAugment:
    """Training augmentation and test-time resizing of the continual 2D runs."""

    crop_size: int = option(512, "side of the square training crops, pixels [CODE: 512]")
    scale_min: float = option(0.5, "random resized crop: smallest crop area / image area [CODE]")
    scale_max: float = option(2.0, "random resized crop: largest crop area / image area [CODE]")
    hflip: float = option(0.5, "probability of a horizontal flip [CODE]")
    eval_size: int | None = option(
        512,
        "test images: shorter side resized to this, then a central square crop [CODE: 512]; "
        "None = native size",
    )

    def __post_init__(self) -> None:
        if self.crop_size < 8:
            raise ConfigError("augment.crop_size", f"must be >= 8, got {self.crop_size}")
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError("augment.scale_min", "need 0 < scale_min <= scale_max")
        if not 0 <= self.hflip <= 1:
            raise ConfigError("augment.hflip", f"must be in [0, 1], got {self.hflip}")
        if self.eval_size is not None and self.eval_size < 8:
            raise ConfigError("augment.eval_size", f"must be >= 8 or None, got {self.eval_size}")


@dataclass
class ImageBatch:
    """One training batch: ``images (B, 3, H, W)`` float32 normalised RGB, ``labels (B, H, W)``
    int64 step labels (old and future classes 0, 255 ignore)."""

    images: torch.Tensor
    labels: torch.Tensor


class Reader(Protocol):
    def load(self, image_id: str) -> ImageSample: ...


def open_reader(root: str | Path, dataset: str, part: str) -> Reader:
    """The reader of ``dataset`` (``voc`` or ``ade20k``) for ``part`` (``train``: the training
    images of the step files, ``val``: their in-training validation and test images)."""
    from kdseg.datasets.ade20k import ADE20K
    from kdseg.datasets.voc import VOCSegmentation

    if part not in ("train", "val"):
        raise ConfigError("part", f"must be 'train' or 'val', got {part!r}")
    if dataset == "ade20k":
        return ADE20K(root, "training" if part == "train" else "validation", ids=())
    if dataset != "voc":
        raise ConfigError("dataset", f"unknown image dataset {dataset!r}; {DATASET_FORMATS}")
    if part == "val":
        return VOCSegmentation(root, "val", ids=())
    try:  # real VOC: the SBD trainaug masks; synthetic VOC: the train list's masks
        return VOCSegmentation(root, "trainaug", ids=())
    except DataFormatError:
        return VOCSegmentation(root, "train", ids=())


def class_names(root: str | Path, dataset: str) -> list[str]:
    """Name of every label id of ``dataset`` in the continual label space (0 = background)."""
    if dataset == "voc":
        from kdseg.datasets.voc import VOC_CLASSES

        return list(VOC_CLASSES)
    from kdseg.datasets.ade20k import ADE20K

    names = ADE20K(root, "validation", ids=()).class_names()
    return ["background", *names[1:]]


class ImageSet:
    """The images ``ids`` of ``reader`` with masks mapped by ``lut`` (``(256,)`` uint8).

    ``image(i)`` is ``(3, H, W)`` uint8, ``mask(i)`` ``(H, W)`` uint8 (torch tensors). Decoded
    samples are cached until they use ``cache_mb`` megabytes, then decoded on demand.
    """

    def __init__(
        self, reader: Reader, ids: Sequence[str], lut: np.ndarray, cache_mb: float = 2048.0
    ) -> None:
        if not ids:
            raise DataFormatError("<step file>", "an image set needs at least one image id")
        self.reader, self.ids, self.lut = reader, tuple(ids), np.asarray(lut, dtype=np.uint8)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._budget = cache_mb * 2**20
        self._used = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image (3, H, W) uint8, mask (H, W) uint8)`` of the ``i``-th id."""
        hit = self._cache.get(i)
        if hit is not None:
            return hit
        s = self.reader.load(self.ids[i])
        out = (torch.from_numpy(np.array(s.image)).permute(2, 0, 1).contiguous(),
               torch.from_numpy(self.lut[s.mask]))  # fmt: skip
        size = out[0].numel() + out[1].numel()
        if self._used + size <= self._budget:
            self._cache[i] = out
            self._used += size
        return out


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float32 normalised with the ImageNet mean/std."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def crop_box(
    height: int, width: int, rng: np.random.Generator, scale: tuple[float, float]
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of MiB's ``RandomResizedCrop.get_params`` (ratio 3/4..4/3)."""
    area = height * width
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    for _ in range(10):
        target = rng.uniform(*scale) * area
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    ratio = width / height  # fallback: central crop, aspect ratio clamped to [3/4, 4/3]
    if ratio < 3 / 4:
        w, h = width, round(width / (3 / 4))
    elif ratio > 4 / 3:
        h, w = height, round(height * (4 / 3))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augment(
    image: torch.Tensor, mask: torch.Tensor, aug: ImageAugment, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training sample: random resized crop to ``aug.crop_size`` and a random flip;
    ``image`` ``(3, H, W)`` uint8 -> float32 in [0, 1], ``mask`` -> int64."""
    top, left, h, w = crop_box(image.shape[1], image.shape[2], rng, (aug.scale_min, aug.scale_max))
    size = (aug.crop_size, aug.crop_size)
    x = image[:, top : top + h, left : left + w].float().unsqueeze(0) / 255.0
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)[0]
    y = mask[top : top + h, left : left + w][None, None].float()
    y = F.interpolate(y, size=size, mode="nearest")[0, 0].long()
    if rng.random() < aug.hflip:
        x, y = x.flip(-1), y.flip(-1)
    return x, y


class ImageBatches:
    """``batches(step) -> ImageBatch`` over ``images`` (see the module docstring)."""

    def __init__(self, images: ImageSet, batch_size: int, aug: ImageAugment, seed: int) -> None:
        if batch_size < 1:
            raise ConfigError("images_per_batch", f"must be >= 1, got {batch_size}")
        self.images, self.batch_size, self.aug, self.seed = images, batch_size, aug, seed
        self._perms: dict[int, np.ndarray] = {}

    def _index(self, position: int) -> int:
        n = len(self.images)
        epoch = position // n
        if epoch not in self._perms:  # keep two: a batch may straddle two epochs
            if len(self._perms) >= 2:
                del self._perms[min(self._perms)]
            self._perms[epoch] = np.random.default_rng([self.seed, 1, epoch]).permutation(n)
        return int(self._perms[epoch][position % n])

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(len(self.images) / self.batch_size))

    def __call__(self, step: int) -> ImageBatch:
        rng = np.random.default_rng([self.seed, 2, step])
        xs, ys = [], []
        for j in range(self.batch_size):
            image, mask = self.images.sample(self._index(step * self.batch_size + j))
            x, y = augment(image, mask, self.aug, rng)
            xs.append(x)
            ys.append(y)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ImageBatch((torch.stack(xs) - mean) / std, torch.stack(ys))


def eval_sample(
    image: torch.Tensor, mask: torch.Tensor, size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``val_transform``: shorter side resized to ``size`` (bilinear image,
    nearest mask), central ``size`` x ``size`` crop; unchanged when ``size`` is None."""
    if size is None:
        return image, mask
    h, w = image.shape[1:]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    x = F.interpolate(image[None].float(), size=(nh, nw), mode="bilinear", align_corners=False)
    y = F.interpolate(mask[None, None].float(), size=(nh, nw), mode="nearest")
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[0, :, top : top + size, left : left + size].round().clamp(0, 255).to(torch.uint8)
    return x, y[0, 0, top : top + size, left : left + size].to(torch.uint8)


@torch.no_grad()
def evaluate(
    net: nn.Module,
    images: ImageSet,
    num_classes: int,
    eval_size: int | None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> ConfusionMatrix:
    """Confusion matrix ``(C, C)`` of ``net`` (eval mode, ``logits (B, C, H, W)``) on every
    image of ``images`` (masks already mapped by the step's ``eval_lut``); images of equal size
    are batched."""
    cm = ConfusionMatrix(num_classes)
    pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def flush() -> None:
        x = normalize(torch.stack([p[0] for p in pending]).to(device))
        pred = net(x).logits.argmax(dim=1).cpu()
        cm.update(pred, torch.stack([p[1] for p in pending]).long())
        pending.clear()

    for i in range(len(images)):
        sample = eval_sample(*images.sample(i), eval_size)
        if pending and (sample[0].shape != pending[0][0].shape or len(pending) >= batch_size):
            flush()
        pending.append(sample)
    if pending:
        flush()
    return cm


def augment_from_dict(values: dict[str, Any]) -> ImageAugment:
    """:class:`ImageAugment` from a settings block (``ConfigError`` naming ``augment.<key>``)."""
    from kdseg.options import build

    return build(ImageAugment, values, prefix="augment.", what="image augmentation")


def augment_dict(aug: ImageAugment) -> dict[str, Any]:
    return dataclasses.asdict(aug)
