"""2D image samples of the continual protocols and the JPEG/PNG I/O shared by the VOC and
ADE20K readers (:mod:`kdseg.datasets.voc`, :mod:`kdseg.datasets.ade20k`) and the synthetic VOC
generator.

Every reader returns an :class:`ImageSample`; every decoding problem is a one-line
:class:`~kdseg.errors.DataFormatError` that names the file. Writers are atomic
(:func:`kdseg.io.atomic_open`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kdseg.errors import DataFormatError
from kdseg.io import atomic_open


@dataclass(frozen=True)
class ImageSample:
    """One labelled image.

    Attributes:
        image_id: the dataset's id (file stem), e.g. ``"2011_000003"``, ``"ADE_val_00000001"``.
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` uint8 label ids of the reader's label space (VOC 0..20, ADE20K
            0..150 or 0..149), 255 = ignore (:data:`kdseg.IGNORE_INDEX`).
    """

    image_id: str
    image: np.ndarray
    mask: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def classes(self) -> list[int]:
        """Label ids present in the mask, ascending, 255 excluded."""
        return [int(c) for c in np.unique(self.mask) if c != 255]

    def relabelled(self, lut: np.ndarray) -> ImageSample:
        """The same sample with ``mask`` mapped through a ``(256,)`` uint8 look-up table."""
        lut = np.asarray(lut)
        if lut.shape != (256,) or lut.dtype != np.uint8:
            raise ValueError(f"lut must be (256,) uint8, got {lut.shape} {lut.dtype}")
        return ImageSample(self.image_id, self.image, lut[self.mask])


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file (JPEG, PNG) completely: ``(H, W, 3)`` uint8 RGB.

    Missing, truncated or undecodable files raise :class:`DataFormatError` naming the file.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "image file does not exist")
    try:
        with Image.open(path) as im:
            im.load()  # decode every byte now: a truncated JPEG fails here, not later
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataFormatError(path, f"cannot decode image: {_one_line(exc)}") from None


def read_index_png(path: str | Path, what: str) -> np.ndarray:
    """Decode a single-channel PNG of class indices (mode ``P`` or ``L``): ``(H, W)`` uint8.

    ``what`` names the expected content in the error (e.g. ``"VOC class-index mask"``). RGB or
    other multi-channel masks are refused: their pixel values are colours, not class ids.
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, f"{what} does not exist")
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise DataFormatError(path, f"{what} must be a PNG file, got {im.format}")
            if im.mode not in ("P", "L"):
                raise DataFormatError(
                    path,
                    f"{what} has mode {im.mode} (colours); expected a palette ('P') or "
                    "single-channel ('L') PNG of class indices",
                )
            im.load()
            return np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        raise DataFormatError(path, f"cannot decode PNG: {_one_line(exc)}") from None


def check_same_size(mask_path: str | Path, mask: np.ndarray, image: np.ndarray) -> None:
    """Raise :class:`DataFormatError` on ``mask_path`` if mask and image sizes differ."""
    if mask.shape != image.shape[:2]:
        raise DataFormatError(
            mask_path,
            f"mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
            f"{image.shape[1]}x{image.shape[0]}",
        )


def check_label_values(path: str | Path, mask: np.ndarray, max_id: int, dataset: str) -> None:
    """Raise :class:`DataFormatError` if ``mask`` holds ids outside ``0..max_id`` and 255."""
    values = np.unique(mask)
    bad = values[(values > max_id) & (values != 255)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
        raise DataFormatError(
            path, f"unknown class ids {shown}; {dataset} masks hold 0..{max_id} and 255"
        )


def write_jpeg(path: str | Path, image: np.ndarray, quality: int = 90) -> None:
    """Atomically write an ``(H, W, 3)`` uint8 image as a baseline JPEG (4:2:0 subsampling)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    with atomic_open(path, "wb") as fh:
        Image.fromarray(image, "RGB").save(fh, format="JPEG", quality=quality)


def write_palette_png(path: str | Path, mask: np.ndarray, palette: np.ndarray) -> None:
    """Atomically write an ``(H, W)`` uint8 index mask as a palette ('P') PNG.

    Args:
        palette: ``(256, 3)`` uint8 RGB colours of the 256 indices.
    """
    from PIL import Image

    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W) uint8, got {mask.shape} {mask.dtype}")
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.shape != (256, 3):
        raise ValueError(f"palette must be (256, 3), got {palette.shape}")
    mask = np.ascontiguousarray(mask)
    im = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    im.putpalette(palette.reshape(-1).tolist())
    with atomic_open(path, "wb") as fh:
        im.save(fh, format="PNG", optimize=False)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
