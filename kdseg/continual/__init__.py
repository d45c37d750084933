"""Continual semantic segmentation in 2D: networks and losses of FT, LwF, ILT, MiB, PLOP and
LGKD (issue 14, items 4-5), as pure modules and functions with the official code's semantics.

Importing this package registers the image backbones ``deeplabv3_resnet101``,
``deeplabv3_resnet50`` and ``cseg_tiny`` in :mod:`kdseg.models.registry` (view ``"image"``).
See ``docs/continual_methods.md``.
"""

from kdseg.continual.heads import ASPPHead, IncrementalClassifier
from kdseg.continual.losses import (
    cross_entropy,
    downsample_labels,
    feature_distillation_loss,
    kd_loss,
    lgkd_loss,
    unbiased_cross_entropy,
    unbiased_kd_loss,
)
from kdseg.continual.networks import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BackboneFeatures,
    ContinualSegmenter,
    DeepLabV3Backbone,
    ImageBackbone,
    SegmentationOutput,
    TinySegBackbone,
    deeplabv3,
    frozen_copy,
)
from kdseg.continual.pod import fold_new_channels, local_pod_embedding, pod_loss
from kdseg.continual.presets import (
    LGKD_WEIGHTS,
    METHOD_WEIGHTS,
    LGKDWeights,
    MethodWeights,
    PODWeights,
    lgkd_weights,
    pod_weights,
)
from kdseg.continual.pseudo import (
    EntropyStatistics,
    PseudoLabels,
    entropy_pseudo_labels,
    plop_entropy,
)
from kdseg.continual.recipes import Recipe, loss_terms, recipe
from kdseg.continual.resnet import ResNetBody, load_backbone_weights, resnet_body

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LGKD_WEIGHTS",
    "METHOD_WEIGHTS",
    "ASPPHead",
    "BackboneFeatures",
    "ContinualSegmenter",
    "DeepLabV3Backbone",
    "EntropyStatistics",
    "ImageBackbone",
    "IncrementalClassifier",
    "LGKDWeights",
    "MethodWeights",
    "PODWeights",
    "PseudoLabels",
    "Recipe",
    "ResNetBody",
    "SegmentationOutput",
    "TinySegBackbone",
    "cross_entropy",
    "deeplabv3",
    "downsample_labels",
    "entropy_pseudo_labels",
    "feature_distillation_loss",
    "fold_new_channels",
    "frozen_copy",
    "kd_loss",
    "lgkd_loss",
    "lgkd_weights",
    "load_backbone_weights",
    "local_pod_embedding",
    "loss_terms",
    "plop_entropy",
    "pod_loss",
    "pod_weights",
    "recipe",
    "resnet_body",
    "unbiased_cross_entropy",
    "unbiased_kd_loss",
]
