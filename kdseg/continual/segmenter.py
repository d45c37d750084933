"""The deployed network of the continual 2D methods: a :class:`ContinualSegmenter` that can be
rebuilt from its :meth:`~ImageSegmenter.spec` (the run record keeps it, ``model.pt`` the
weights) and predicts class channels from normalised images.

This is to the 2D family what :class:`kdseg.segmenter.Segmenter` is to the LiDAR one: the
network every method of the family deploys (backbone + the classifier grown step by step), so
parameter counts and latencies compare like with like, and the next continual step (or any
tool) rebuilds it with :func:`image_segmenter_from_spec` and ``model.pt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from kdseg.errors import ConfigError
from kdseg.models.registry import backbone_view, build_backbone

from .networks import ContinualSegmenter, ImageBackbone

SPEC_KIND = "image_continual"


class ImageSegmenter(ContinualSegmenter):
    """A registered image backbone (view ``"image"``) with the per-step classifier.

    Args:
        backbone: registered image backbone name (``kdseg backbones``: ``cseg_tiny``,
            ``deeplabv3_resnet101``, ...).
        classes_per_step: channels per step so far, step 0 with background (``[16]``, then
            ``[16, 1]``, ... on VOC 15-1).
        backbone_options: keyword arguments of the backbone's factory.

    Input: ``(B, 3, H, W)`` float RGB normalised with the ImageNet mean/std
    (:data:`~kdseg.continual.networks.IMAGENET_MEAN`, the data pipeline's job, as in the
    official code); :meth:`predict` returns channel ids ``(B, H, W)`` int64 (channel ``c`` =
    the ``c``-th class seen, background 0).
    """

    def __init__(
        self,
        backbone: str,
        classes_per_step: Sequence[int],
        backbone_options: Mapping[str, Any] | None = None,
    ) -> None:
        if backbone_view(backbone) != "image":
            view = backbone_view(backbone)
            raise ConfigError("backbone", f"{backbone!r} is a {view} backbone, not an image one")
        net = build_backbone(backbone, **dict(backbone_options or {}))
        assert isinstance(net, ImageBackbone)
        super().__init__(net, list(classes_per_step))
        self.backbone_name = backbone
        self.backbone_options = dict(backbone_options or {})

    @property
    def classes_per_step(self) -> list[int]:
        return self.classifier.classes_per_step

    def spec(self) -> dict[str, Any]:
        """What rebuilds this architecture (:func:`image_segmenter_from_spec`), classifier
        steps included; JSON-serialisable."""
        return {
            "kind": SPEC_KIND,
            "backbone": self.backbone_name,
            "classes_per_step": self.classes_per_step,
            "backbone_options": dict(self.backbone_options),
        }

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Channel ids ``(B, H, W)`` int64 of normalised images ``(B, 3, H, W)``."""
        return self(images).logits.argmax(dim=1)


def image_segmenter_from_spec(spec: Mapping[str, Any]) -> ImageSegmenter:
    """A fresh (randomly initialised) network of ``spec`` (:meth:`ImageSegmenter.spec`)."""
    if spec.get("kind") != SPEC_KIND:
        raise ConfigError("network", f"not an image segmenter spec (kind {spec.get('kind')!r})")
    try:
        return ImageSegmenter(
            str(spec["backbone"]),
            [int(n) for n in spec["classes_per_step"]],
            dict(spec.get("backbone_options") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        problem = f"malformed image segmenter spec {dict(spec)!r}: {exc}"
        raise ConfigError("network", problem) from None
