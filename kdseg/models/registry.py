"""Typed backbone registry (timm-like).

A backbone maps a :class:`~kdseg.sparse.SparseTensor` of voxel features to a ``SparseTensor``
of per-voxel features at stride 1 (same coordinates and order as its input) and exposes:

* ``in_channels``: input feature width it was built for;
* ``out_channels``: output feature width ``C``;
* ``default_voxel_size``: the voxel edge in metres the configuration is meant for (the training
  code reads it when the config does not set a voxel size).

Register a factory with ``@register_backbone("name")``; build with ``build_backbone("name",
**kwargs)``. The model tests are parametrised over :func:`list_backbones`, so a new entry is
smoke-tested automatically.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TypeVar

from torch import nn

from kdseg.errors import ConfigError
from kdseg.sparse import SparseTensor


class Backbone(nn.Module, abc.ABC):
    """Sparse backbone base: ``forward(SparseTensor (V, C_in)) -> SparseTensor (V, C)``."""

    in_channels: int
    out_channels: int
    default_voxel_size: float

    @abc.abstractmethod
    def forward(self, x: SparseTensor) -> SparseTensor:
        """Features of the same voxels (same coordinates and row order) at ``out_channels``."""


BackboneFactory = Callable[..., Backbone]
F = TypeVar("F", bound=BackboneFactory)

_REGISTRY: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[F], F]:
    """Decorator registering ``factory(**kwargs) -> Backbone`` under ``name`` (unique)."""

    def decorate(factory: F) -> F:
        if name in _REGISTRY:
            raise ValueError(f"backbone '{name}' is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def list_backbones() -> list[str]:
    """Registered names, sorted."""
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs: object) -> Backbone:
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
