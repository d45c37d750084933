"""Typed backbone registry (timm-like).

Two kinds of backbone share the registry; ``view`` tells them apart:

* ``"voxel"`` (:class:`Backbone`): maps a :class:`~kdseg.sparse.SparseTensor` of voxel features
  to a ``SparseTensor`` of per-voxel features at stride 1 (same coordinates and order as its
  input); ``default_voxel_size`` is the voxel edge in metres the configuration is meant for (the
  training code reads it when the config does not set a voxel size).
* ``"range"`` (:class:`RangeBackbone`): maps a ``(B, C_in, H, W)`` range image to
  ``(B, C, H, W)`` per-pixel features.
* ``"image"``: 2D segmentation backbones for camera images (continual 2D segmentation).

Both expose ``in_channels`` (input feature width it was built for) and ``out_channels`` (output
width ``C``). :func:`kdseg.segmenter.build_segmenter` wraps either into the point-cloud interface
every method uses.

Register a factory with ``@register_backbone("name")``; build with ``build_backbone("name",
**kwargs)``. The model tests are parametrised over :func:`list_backbones`, so a new entry is
smoke-tested automatically.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import nn

from kdseg.errors import ConfigError
from kdseg.sparse import SparseTensor


class Backbone(nn.Module, abc.ABC):
    """Sparse backbone base: ``forward(SparseTensor (V, C_in)) -> SparseTensor (V, C)``."""

    view: ClassVar[str] = "voxel"
    in_channels: int
    out_channels: int
    default_voxel_size: float

    @abc.abstractmethod
    def forward(self, x: SparseTensor) -> SparseTensor:
        """Features of the same voxels (same coordinates and row order) at ``out_channels``."""


class RangeBackbone(nn.Module, abc.ABC):
    """Range-image backbone base: ``forward((B, C_in, H, W)) -> (B, C, H, W)``."""

    view: ClassVar[str] = "range"
    in_channels: int
    out_channels: int

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel features at ``out_channels``, same ``H`` and ``W``."""


BackboneFactory = Callable[..., Backbone | RangeBackbone]
F = TypeVar("F", bound=BackboneFactory)

_REGISTRY: dict[str, BackboneFactory] = {}
_VIEWS: dict[str, str] = {}
VIEWS: tuple[str, ...] = ("voxel", "range", "image")


def register_backbone(name: str, view: str = "voxel") -> Callable[[F], F]:
    """Decorator registering ``factory(**kwargs) -> Backbone`` under ``name`` (unique);
    ``view`` is the kind of backbone it builds (``"voxel"`` or ``"range"``)."""
    if view not in VIEWS:
        raise ValueError(f"backbone view must be one of {VIEWS}, got {view!r}")

    def decorate(factory: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"backbone '{name}' is already registered")
        _REGISTRY[name] = factory
        _VIEWS[name] = view
        return factory

    return decorate


def backbone_view(name: str) -> str:
    """``"voxel"`` or ``"range"``: the kind of the registered backbone ``name``."""
    if name not in _VIEWS:
        raise ConfigError(
            "backbone", f"unknown backbone '{name}'; known: {', '.join(list_backbones())}"
        )
    return _VIEWS[name]


def list_backbones() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs: object) -> Backbone | RangeBackbone:
    """Build the backbone registered as ``name`` with ``kwargs`` passed to its factory.

    Raises:
        ConfigError: unknown name (the message lists the known ones) or bad keyword.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(
            "backbone", f"unknown backbone '{name}'; known: {', '.join(list_backbones())}"
        )
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            "backbone", f"cannot build '{name}' with {sorted(kwargs)}: {exc}"
        ) from exc
