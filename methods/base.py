"""The method interface and the method registry.

A method is one file in ``methods/`` holding a :class:`Method` subclass decorated with
:func:`register_method`. It builds its networks, declares the extra inputs it needs, turns a
batch into named loss terms and names the network used at inference. It never opens files,
loops over epochs or talks to MLflow: the Trainer, the data pipeline and the Tracker do.

Options: every method has a frozen ``Options`` dataclass; each field is one named choice
(papers' hyper-parameters and our [DESIGN] decisions), with its help text in the field metadata.
A config entry may override any of them; unknown or ill-typed keys are a ``ConfigError``.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from kdseg.errors import ConfigError
from kdseg.segmenter import PointSegmenter


def option(default: Any, help: str) -> Any:
    """A method option with its help text (use inside ``Options`` dataclasses)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Options:
    """Options shared by all LiDAR methods."""

    backbone: str = option("minkunet_tiny", "registered backbone (kdseg.models.list_backbones)")
    voxel_size: float | None = option(None, "voxel edge in metres; None = backbone default")
    coord_scale: float = option(
        20.0, "x, y, z input features are divided by this (metres) [DESIGN: O(1) features]"
    )
    labelled_per_batch: int = option(2, "labelled clouds per iteration")
    unlabelled_per_batch: int = option(0, "unlabelled clouds per iteration")
    lovasz_weight: float = option(0.0, "weight of the Lovász-softmax term of the supervised loss")


class Method(nn.Module, abc.ABC):
    """Base class of all methods.

    Class attributes:
        name: the registry name (set by :func:`register_method`).
        requires: extra inputs the data pipeline must provide beyond the clouds
            (e.g. ``{"image"}``, ``{"features_2d"}``); empty for pure LiDAR methods.
        Options: the options dataclass.
        ema_momentum: EMA momentum of the teacher the Trainer maintains, or ``None``.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    Options: ClassVar[type[Options]] = Options

    def __init__(self, opts: Options, num_classes: int) -> None:
        super().__init__()
        self.opts = opts
        self.num_classes = num_classes
        self.student = PointSegmenter(
            opts.backbone, num_classes, voxel_size=opts.voxel_size, coord_scale=opts.coord_scale
        )
        self.teacher: nn.Module | None = None  # set by the Trainer when ema_momentum is not None
        self.total_iterations: int | None = None  # set by the run before training (schedules)

    @property
    def ema_source(self) -> nn.Module | None:
        """The network whose EMA the Trainer maintains as ``self.teacher`` (None = no teacher)."""
        return self.student if self.ema_momentum is not None else None

    @property
    def ema_momentum(self) -> float | None:
        """Momentum of the EMA teacher the Trainer should maintain (``None`` = no teacher)."""
        return None

    @property
    def ema_warmup(self) -> bool:
        """Whether the teacher's momentum warms up as ``min(1 - 1/(k+1), m)``."""
        return False

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named, weighted scalar loss terms for one batch; the Trainer sums them."""

    def inference_network(self) -> PointSegmenter:
        """The deployed network (evaluated, timed and saved)."""
        return self.student


M = TypeVar("M", bound=type[Method])
_REGISTRY: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`Method` subclass under ``name``."""

    def decorate(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method {name!r} is registered twice")
        if not issubclass(cls, Method):
            raise TypeError(f"{cls.__name__} must subclass kdseg.methods.base.Method")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _discover() -> None:
    """Import every module of ``kdseg.methods`` so their decorators register them."""
    import kdseg.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"kdseg.methods.{info.name}")


def list_methods() -> list[str]:
    """Names of all registered methods, sorted."""
    _discover()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    """The registered class of ``name``; ``ConfigError`` listing the known names otherwise."""
    _discover()
    if name not in _REGISTRY:
        raise ConfigError("method", f"unknown method {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def parse_options(cls: type[Method], overrides: Mapping[str, Any]) -> Options:
    """Build ``cls.Options`` from ``overrides``; unknown keys or wrong types raise ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(cls.Options)}
    for key, value in overrides.items():
        if key not in fields:
            raise ConfigError(
                f"{cls.name}.{key}", f"unknown option; {cls.name} has {sorted(fields)}"
            )
        default = fields[key].default
        ok = (
            value is None
            or default is None
            or isinstance(value, type(default))
            or (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            )
        )
        if not ok or (
            isinstance(default, int | float)
            and isinstance(value, bool) != isinstance(default, bool)
        ):
            raise ConfigError(
                f"{cls.name}.{key}", f"expected {type(default).__name__}, got {value!r}"
            )
    return cls.Options(**dict(overrides))


def build_method(name: str, num_classes: int, options: Mapping[str, Any] | None = None) -> Method:
    """Instantiate the registered method ``name`` with option overrides."""
    cls = method_class(name)
    return cls(parse_options(cls, options or {}), num_classes)


def options_help(name: str) -> dict[str, str]:
    """Option name -> help text of a registered method."""
    return {
        f.name: f.metadata.get("help", "") for f in dataclasses.fields(method_class(name).Options)
    }
