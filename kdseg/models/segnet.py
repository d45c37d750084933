"""Segmentation network: a registered backbone plus a linear classifier on voxel features."""

from __future__ import annotations

import torch
from torch import nn

from kdseg.models.registry import Backbone
from kdseg.sparse import SparseTensor


class SegNet(nn.Module):
    """``backbone`` + ``Linear(backbone.out_channels, num_classes)``.

    ``forward(st)`` returns ``(voxel_feats (V, C), voxel_logits (V, K))`` in the voxel order of
    ``st``; methods devoxelize to points themselves (:func:`kdseg.voxelize.devoxelize`).
    """

    def __init__(self, backbone: Backbone, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.classifier = nn.Linear(backbone.out_channels, num_classes)

    @property
    def out_channels(self) -> int:
        """Width ``C`` of the voxel features."""
        return self.backbone.out_channels

    def forward(self, st: SparseTensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(st).feats
        return feats, self.classifier(feats)
