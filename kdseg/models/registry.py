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

Register a factory with ``@register_backbone("name", view=...)``; build with
``build_backbone("name", **kwargs)``; ``kdseg backbones`` lists them with their arguments. The
model tests are parametrised over :func:`list_backbones`, so a new entry is smoke-tested
automatically.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import nn

from kdseg.options import build as build_options
from kdseg.options import options_from_signature
from kdseg.registry import Registry
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


BackboneFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=BackboneFactory)

VIEWS: tuple[str, ...] = ("voxel", "range", "image")


def _check_factory(name: str, factory: object) -> None:
    if not callable(factory):
        raise TypeError(f"backbone {name!r} must be registered with a factory, got {factory!r}")


def _discover() -> None:
    """Import the modules that register the built-in backbones (LiDAR and image)."""
    for module in ("kdseg.models", "kdseg.continual.networks"):
        importlib.import_module(module)


BACKBONES: Registry[BackboneFactory] = Registry(
    "backbone", "backbone", discover=_discover, check=_check_factory
)
"""Every backbone factory; ``info``: ``view`` and ``options`` (the arguments' dataclass)."""


def register_backbone(
    name: str, view: str = "voxel", options: type | Callable[..., object] | None = None
) -> Callable[[F], F]:
    """Decorator registering ``factory(**kwargs) -> backbone`` under ``name`` (unique).

    Args:
        name: the registry name (method option ``backbone``).
        view: the kind of backbone it builds: ``"voxel"``, ``"range"`` or ``"image"``.
        options: a dataclass of the factory's keyword arguments (fields with help texts), or a
            callable whose signature and docstring ``Args:`` describe them; default: the
            factory's own signature (``kdseg backbones`` lists them, :func:`build_backbone`
            checks them).
    """
    if view not in VIEWS:
        raise ValueError(f"backbone view must be one of {VIEWS}, got {view!r}")

    def decorate(factory: F) -> F:
        spec = options if options is not None else factory
        opts = spec if dataclasses.is_dataclass(spec) else options_from_signature(spec, name)
        BACKBONES.register(name, factory, view=view, options=opts)
        return factory

    return decorate


def backbone_view(name: str) -> str:
    """``"voxel"``, ``"range"`` or ``"image"``: the kind of the registered backbone ``name``."""
    return str(BACKBONES.info(name)["view"])


def backbone_options(name: str) -> type:
    """The dataclass of the keyword arguments :func:`build_backbone` accepts for ``name``."""
    return BACKBONES.info(name)["options"]


def list_backbones() -> list[str]:
    """Registered names, sorted."""
    return BACKBONES.names()


def build_backbone(name: str, **kwargs: object) -> nn.Module:
    """Build the backbone registered as ``name`` with ``kwargs`` passed to its factory.

    The keyword arguments are checked against the backbone's options (an unknown key or a
    value of the wrong type is a ``ConfigError`` naming ``<name>.<key>``) and passed on as
    given (converted to the annotated type).

    Raises:
        ConfigError: unknown name (the message lists the registered ones) or bad argument.
    """
    factory = BACKBONES.get(name)
    checked = build_options(
        backbone_options(name), kwargs, prefix=f"{name}.", what=f"argument of backbone {name}"
    )
    return factory(**{k: getattr(checked, k) for k in kwargs})
