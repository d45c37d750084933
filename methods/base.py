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

import numpy as np
import torch
from torch import nn

from kdseg.errors import ConfigError
from kdseg.losses import CLASS_WEIGHTINGS, class_weights
from kdseg.segmenter import Segmenter, build_segmenter


def option(default: Any, help: str) -> Any:
    """A method option with its help text (use inside ``Options`` dataclasses)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Options:
    """Options shared by all LiDAR methods."""

    backbone: str = option("minkunet_tiny", "registered backbone (kdseg.models.list_backbones)")
    voxel_size: float | None = option(
        None, "voxel backbones: voxel edge in metres; None = backbone default"
    )
    coord_scale: float = option(
        20.0, "x, y, z (and range) input features are divided by this (metres) [DESIGN: O(1)]"
    )
    range_height: int = option(32, "range backbones: image rows (elevation bins)")
    range_width: int = option(512, "range backbones: image columns (azimuth bins over 360°)")
    fov_up_deg: float = option(
        3.0, "range backbones: elevation of the top image edge, degrees [RangeNet++: 3]"
    )
    fov_down_deg: float = option(
        -25.0, "range backbones: elevation of the bottom image edge, degrees [RangeNet++: -25]"
    )
    labelled_per_batch: int = option(2, "labelled clouds per iteration")
    unlabelled_per_batch: int | None = option(
        0, "unlabelled clouds per iteration; None = as many as labelled_per_batch"
    )
    lovasz_weight: float = option(0.0, "weight of the Lovász-softmax term of the supervised loss")
    class_weighting: str = option(
        "none",
        "per-class weights of the supervised CE from the labelled points' class frequencies: "
        "'none' [CODE LaserMix MinkUNet], 'enet_log' 1/ln(1.02 + f) [ENet, PolarNet], "
        "'inverse' 1/(f + 0.001) [RangeNet++, SalsaNext]",
    )

    def __post_init__(self) -> None:
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(
                "class_weighting",
                f"must be one of {CLASS_WEIGHTINGS}, got {self.class_weighting!r}",
            )
        if self.labelled_per_batch < 1:
            raise ConfigError("labelled_per_batch", f"must be >= 1, got {self.labelled_per_batch}")
        if self.unlabelled_per_batch is not None and self.unlabelled_per_batch < 0:
            raise ConfigError(
                "unlabelled_per_batch", f"must be >= 0 or None, got {self.unlabelled_per_batch}"
            )

    @property
    def clouds_per_batch(self) -> tuple[int, int]:
        """``(labelled, unlabelled)`` clouds per iteration, ``None`` resolved."""
        unl = self.unlabelled_per_batch
        return self.labelled_per_batch, self.labelled_per_batch if unl is None else unl


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
        self.student = build_segmenter(
            opts.backbone,
            num_classes,
            coord_scale=opts.coord_scale,
            voxel_size=opts.voxel_size,
            range_height=opts.range_height,
            range_width=opts.range_width,
            fov_up_deg=opts.fov_up_deg,
            fov_down_deg=opts.fov_down_deg,
        )
        self.teacher: nn.Module | None = None  # set by the Trainer when ema_momentum is not None
        self.total_iterations: int | None = None  # set by the run before training (schedules)
        self.register_buffer("class_weight", torch.ones(num_classes), persistent=True)

    def set_class_frequencies(self, frequencies: np.ndarray) -> None:
        """Set the supervised CE's class weights from the labelled points' class shares
        ``(K,)`` (``opts.class_weighting``; a no-op for ``"none"``)."""
        weights = class_weights(frequencies, self.opts.class_weighting)
        self.class_weight.copy_(torch.from_numpy(weights))

    def supervised(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The supervised loss terms on ``logits (M, K)`` / ``labels (M,)`` (255 = ignore)."""
        from kdseg.methods.sup_only import supervised_terms

        weight = None if self.opts.class_weighting == "none" else self.class_weight
        return supervised_terms(self.opts, logits, labels, weight)

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

    @property
    def ema_buffers(self) -> str:
        """How the EMA teacher treats buffers (:data:`kdseg.ema.EMA_BUFFERS`)."""
        return "own"

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named, weighted scalar loss terms for one batch; the Trainer sums them."""

    def evaluation_networks(self) -> dict[str, Segmenter]:
        """Every network worth evaluating: ``{"student": ...}`` plus ``{"teacher": ...}`` once
        the Trainer has attached an EMA teacher."""
        nets: dict[str, Segmenter] = {"student": self.student}
        if isinstance(self.teacher, Segmenter):
            nets["teacher"] = self.teacher
        return nets

    @property
    def deployed(self) -> str:
        """The key of :meth:`evaluation_networks` that is deployed (reported, timed, saved)."""
        return "student"

    def inference_network(self) -> Segmenter:
        """The deployed network (evaluated, timed and saved)."""
        return self.evaluation_networks()[self.deployed]


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
