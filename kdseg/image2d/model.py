"""The 2D segmentation networks of the IGNet teacher, their registry and their checkpoint format.

Every network maps an RGB batch ``(B, 3, H, W)`` (float, values in [0, 1]) to a dict with

* ``"features"``: ``(B, C, H/4, W/4)`` decoder embedding (the one distilled into the LiDAR net),
* ``"logits"``: ``(B, K, H, W)`` class scores (K = 19), bilinearly upsampled from 1/4.

``H`` and ``W`` must be multiples of :data:`STRIDE`; :func:`pad_to_stride` pads other images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kdseg.errors import DataFormatError
from kdseg.io import atomic_open

NUM_CLASSES: int = 19
"""SemanticKITTI train ids 0..18."""

STRIDE: int = 16
"""Total down-sampling of the encoder; input sizes must be multiples of it."""

FEATURE_STRIDE: int = 4
"""The decoder features are at 1/FEATURE_STRIDE of the input resolution."""

CHECKPOINT_FORMAT: str = "kdseg.teacher2d"
CHECKPOINT_VERSION: int = 1

# ImageNet statistics: a fixed input normalisation (no pretrained weights are used).
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    """Conv (k×k, no bias) + BatchNorm + ReLU."""
    pad = dilation * (k // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Down(nn.Module):
    """Strided 3×3 conv then a residual 3×3 conv: ``(B, cin, h, w) -> (B, cout, h/2, w/2)``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = _cbr(cin, cout, stride=2)
        self.body = nn.Sequential(
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return F.relu(x + self.body(x))


class _LightASPP(nn.Module):
    """Parallel dilated 3×3 branches + image pooling, fused by a 1×1 conv (DeepLab-style)."""

    def __init__(self, cin: int, cout: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_cbr(cin, cout, k=1)] + [_cbr(cin, cout, dilation=d) for d in dilations]
        )
        self.pool = _cbr(cin, cout, k=1)
        self.fuse = _cbr(cout * (len(dilations) + 2), cout, k=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        pooled = self.pool(x.mean(dim=(2, 3), keepdim=True))
        outs.append(pooled.expand(-1, -1, x.shape[2], x.shape[3]))
        return self.fuse(torch.cat(outs, dim=1))


class TinySegNet(nn.Module):
    """Encoder (four residual strided stages, 1/2 .. 1/16) + light ASPP + FPN-style decoder.

    Args:
        widths: channels of the 1/2, 1/4, 1/8 and 1/16 stages.
        feature_dim: C, channels of the decoder features at 1/4.
        num_classes: K, number of output classes.
        dilations: dilation rates of the ASPP's 3×3 branches (at 1/16).
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (16, 32, 64, 96),
        feature_dim: int = 48,
        num_classes: int = NUM_CLASSES,
        dilations: tuple[int, ...] = (2, 4),
    ) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = _cbr(3, w1, stride=2)
        self.stage2 = _Down(w1, w2)
        self.stage3 = _Down(w2, w3)
        self.stage4 = _Down(w3, w4)
        self.aspp = _LightASPP(w4, feature_dim, dilations)
        self.lat8 = _cbr(w3, feature_dim, k=1)
        self.lat4 = _cbr(w2, feature_dim, k=1)
        self.smooth8 = _cbr(feature_dim, feature_dim)
        self.smooth4 = _cbr(feature_dim, feature_dim)
        self.classifier = nn.Conv2d(feature_dim, num_classes, 1)
        self.feature_dim = feature_dim
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images`` ``(B, 3, H, W)`` in [0, 1] -> ``{"features": (B, C, H/4, W/4),
        "logits": (B, K, H, W)}``."""
        h, w = images.shape[-2:]
        if h % STRIDE or w % STRIDE:
            raise ValueError(f"input size {h}x{w} must be a multiple of {STRIDE} (pad_to_stride)")
        x = (images - self.mean) / self.std
        c2 = self.stage2(self.stem(x))  # 1/4
        c3 = self.stage3(c2)  # 1/8
        top = self.aspp(self.stage4(c3))  # 1/16
        p8 = self.smooth8(self.lat8(c3) + F.interpolate(top, size=c3.shape[-2:], mode="bilinear"))
        p4 = self.smooth4(self.lat4(c2) + F.interpolate(p8, size=c2.shape[-2:], mode="bilinear"))
        logits = F.interpolate(self.classifier(p4), size=(h, w), mode="bilinear")
        return {"features": p4, "logits": logits}


def _tiny_fpn(feature_dim: int = 48, num_classes: int = NUM_CLASSES) -> nn.Module:
    return TinySegNet((16, 32, 64, 96), feature_dim, num_classes)


def _small_fpn(feature_dim: int = 64, num_classes: int = NUM_CLASSES) -> nn.Module:
    return TinySegNet((32, 64, 128, 192), feature_dim, num_classes, dilations=(2, 4, 6))


MODELS: dict[str, Callable[..., nn.Module]] = {"tiny_fpn": _tiny_fpn, "small_fpn": _small_fpn}
"""Registry name -> builder ``(feature_dim, num_classes) -> nn.Module``; add bigger nets here."""


def build_model(arch: str, feature_dim: int, num_classes: int = NUM_CLASSES) -> nn.Module:
    """Build a registered network (randomly initialised; no weights are downloaded)."""
    if arch not in MODELS:
        raise ValueError(f"unknown 2D network {arch!r}; registered: {sorted(MODELS)}")
    return MODELS[arch](feature_dim=feature_dim, num_classes=num_classes)


def pad_to_stride(images: torch.Tensor) -> torch.Tensor:
    """Replicate-pad ``(B, 3, H, W)`` at the bottom/right to multiples of :data:`STRIDE`."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % STRIDE, (-w) % STRIDE
    return F.pad(images, (0, pw, 0, ph), mode="replicate") if ph or pw else images


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or frozen)."""
    return sum(p.numel() for p in model.parameters())


@dataclass
class Teacher2D:
    """A trained 2D teacher: the network (eval mode, frozen) plus what identifies it.

    Attributes:
        model: the network.
        arch: registry name; feature_dim: C; num_classes: K.
        fingerprint: SHA-256 of the checkpoint file it was loaded from (or of its weights).
        options: the training options it was built with (JSON-like dict).
    """

    model: nn.Module
    arch: str
    feature_dim: int
    num_classes: int
    fingerprint: str
    options: dict[str, Any]


def _state_hash(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_teacher(model: nn.Module, arch: str, options: dict[str, Any]) -> Teacher2D:
    """Freeze ``model`` (eval mode, no gradients) and wrap it; fingerprint = hash of weights."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher2D(
        model=model,
        arch=arch,
        feature_dim=int(model.feature_dim),
        num_classes=int(model.num_classes),
        fingerprint=_state_hash(model.state_dict()),
        options=dict(options),
    )


def save_teacher(path: str | Path, model: nn.Module, arch: str, options: dict[str, Any]) -> None:
    """Atomically write a ``torch.load(weights_only=True)``-loadable teacher checkpoint."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch,
        "feature_dim": int(model.feature_dim),
        "num_classes": int(model.num_classes),
        "options": dict(options),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def load_teacher(path: str | Path) -> Teacher2D:
    """Load a teacher checkpoint (written by :func:`save_teacher` or supplied by a user).

    Raises:
        DataFormatError: naming ``path`` if it is missing, not a torch file, not a kdseg 2D
            teacher, names an unknown network, or its weights do not fit that network.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "2D teacher checkpoint does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt/foreign files
        raise DataFormatError(path, f"not a loadable torch checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise DataFormatError(
            path, f"not a kdseg 2D teacher checkpoint (format != {CHECKPOINT_FORMAT!r})"
        )
    missing = [k for k in ("arch", "feature_dim", "num_classes", "state_dict") if k not in state]
    if missing:
        raise DataFormatError(path, f"teacher checkpoint lacks keys {missing}")
    if state.get("version") != CHECKPOINT_VERSION:
        raise DataFormatError(
            path, f"checkpoint version {state.get('version')} is not {CHECKPOINT_VERSION}"
        )
    try:
        model = build_model(state["arch"], int(state["feature_dim"]), int(state["num_classes"]))
    except ValueError as exc:
        raise DataFormatError(path, str(exc)) from None
    try:
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise DataFormatError(path, f"weights do not fit {state['arch']!r}: {exc}") from None
    teacher = make_teacher(model, state["arch"], state.get("options", {}))
    teacher.fingerprint = file_sha256(path)
    return teacher
