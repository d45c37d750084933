"""The method interface and the method registry.

A method is one file holding a :class:`Method` subclass decorated with :func:`register_method`
(in ``methods/``, in an installed package that declares it in the ``kdseg.methods`` entry-point
group, or anywhere importable and named ``package.module:Class`` by a variant). It builds its
networks, declares the inputs it needs (``requires``: names of :mod:`kdseg.inputs` providers) and
its teacher (:meth:`Method.teacher_spec`: an EMA of its student or a frozen network, built by the
Trainer), turns a batch into named loss terms and names the network used at inference. It never
opens files, loops over epochs or talks to MLflow: the Trainer, the data pipeline and the
tracking job do.

Options: every method has a frozen ``Options`` dataclass; each field is one named choice
(papers' hyper-parameters and our [DESIGN] decisions), with its help text (:func:`option`). A
config entry may override any of them; unknown or ill-typed keys are a ``ConfigError``
(:func:`kdseg.options.build`, the same rules as every other settings block).
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
from kdseg.options import build as build_options
from kdseg.options import helps, option
from kdseg.registry import Registry
from kdseg.segmenter import Segmenter, build_segmenter
from kdseg.teachers import TeacherSpec

__all__ = [
    "METHODS",
    "BaseMethod",
    "Method",
    "Options",
    "TeacherSpec",
    "build_method",
    "list_methods",
    "method_class",
    "option",
    "options_help",
    "parse_options",
    "register_method",
]


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


class BaseMethod(nn.Module, abc.ABC):
    """What every method has, whatever its task family (LiDAR :class:`Method`, the continual 2D
    methods of ``kdseg.methods.continual``).

    Class attributes:
        name: the registry name (set by :func:`register_method`).
        family: the task family whose run trains it (``"lidar"``: :mod:`kdseg.run`;
            ``"image_continual"``: :mod:`kdseg.run_continual`); the workflow and the tests pick
            the data, the batches and the run by it, never by the method's name.
        requires: inputs the run must provide beyond the data, by provider name
            (:data:`kdseg.inputs.PROVIDERS`: ``features_2d``, ``mix_partners``,
            ``teacher_checkpoint``, ``old_model``, ...). Batches then carry their ``extras``; a
            frozen teacher reads ``teacher_checkpoint`` (or the input its spec names).
        Options: the options dataclass.
        parity_reference: the registered method whose deployed network (built with this run's
            shared options) is the inference-parity reference; ``None`` (default): a fresh
            network of the deployed network's own spec (what Sup-only deploys).
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    Options: ClassVar[type] = Options
    parity_reference: ClassVar[str | None] = None

    def __init__(self, opts: Any, num_classes: int) -> None:
        super().__init__()
        self.opts = opts
        self.num_classes = num_classes
        self.student: nn.Module
        self.teacher: nn.Module | None = None  # set by the Trainer (teacher_spec)
        self.total_iterations: int | None = None  # set by the run before training (schedules)

    def teacher_spec(self) -> TeacherSpec | None:
        """The teacher the Trainer builds and sets as ``self.teacher`` before the first step
        (:mod:`kdseg.teachers`): ``TeacherSpec("ema", {...})`` for an EMA of the student,
        ``TeacherSpec("frozen")`` for a network loaded from the ``teacher_checkpoint`` input
        (then ``requires`` must name it); ``None`` (default): no teacher."""
        return None

    @classmethod
    def options_from_inputs(cls, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Options that the run's bound inputs fix (e.g. a feature width); an explicit option
        that contradicts one is a ``ConfigError``. Default: none."""
        return {}

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named, weighted scalar loss terms for one batch; the Trainer sums them."""

    def evaluation_networks(self) -> dict[str, nn.Module]:
        """Every network worth evaluating: ``{"student": ...}`` plus ``{"teacher": ...}`` once
        the Trainer has attached an EMA teacher (a frozen teacher was scored by its own run)."""
        nets: dict[str, nn.Module] = {"student": self.student}
        spec = self.teacher_spec()
        if spec is not None and spec.kind == "ema" and isinstance(self.teacher, nn.Module):
            nets["teacher"] = self.teacher
        return nets

    @property
    def deployed(self) -> str:
        """The key of :meth:`evaluation_networks` that is deployed (reported, timed, saved)."""
        return "student"

    def inference_network(self) -> nn.Module:
        """The deployed network (evaluated, timed and saved)."""
        return self.evaluation_networks()[self.deployed]


class Method(BaseMethod):
    """Base class of the LiDAR methods (family ``"lidar"``): the student is a point-cloud
    :class:`~kdseg.segmenter.Segmenter` built from the shared LiDAR :class:`Options`; batches are
    :class:`~kdseg.lidar_data.LidarBatch` objects (:mod:`kdseg.run`)."""

    family: ClassVar[str] = "lidar"
    Options: ClassVar[type[Options]] = Options
    opts: Options

    def __init__(self, opts: Options, num_classes: int) -> None:
        super().__init__(opts, num_classes)
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

    def evaluation_networks(self) -> dict[str, Segmenter]:  # type: ignore[override]
        """The student (a :class:`Segmenter`) and, once attached, the EMA teacher."""
        return super().evaluation_networks()  # type: ignore[return-value]

    def inference_network(self) -> Segmenter:
        """The deployed point-cloud network (evaluated, timed and saved)."""
        net = super().inference_network()
        assert isinstance(net, Segmenter)
        return net


M = TypeVar("M", bound=type[BaseMethod])


def _discover() -> None:
    """Import every module of ``kdseg.methods`` so their decorators register them."""
    import kdseg.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"kdseg.methods.{info.name}")


def _check_method(name: str, cls: Any) -> None:
    if not (isinstance(cls, type) and issubclass(cls, BaseMethod)):
        raise TypeError(f"method {name!r} ({cls!r}) must subclass kdseg.methods.base.Method")
    if not cls.__dict__.get("name"):  # loaded by entry point or path without the decorator
        cls.name = name


METHODS: Registry[type[BaseMethod]] = Registry(
    "method",
    "method",
    discover=_discover,
    entry_points="kdseg.methods",
    allow_paths=True,
    check=_check_method,
)
"""Built-in methods (``methods/``), the ``kdseg.methods`` entry-point group and
``package.module:Class`` paths."""


def register_method(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`Method` subclass under ``name``."""

    def decorate(cls: M) -> M:
        _check_method(name, cls)
        cls.name = name
        return METHODS.register(name, cls)

    return decorate


def list_methods(family: str | None = None) -> list[str]:
    """Names of all registered methods (entry points included), sorted; only those of
    ``family`` (e.g. ``"lidar"``, ``"image_continual"``) when given."""
    names = METHODS.names()
    if family is None:
        return names
    return [n for n in names if METHODS.get(n).family == family]


def method_class(name: str, family: str | None = None) -> type[Any]:
    """The class of ``name`` (registered, entry point or ``module:Class``); ``ConfigError``
    listing the known names otherwise, or naming the family when ``family`` is given and the
    method belongs to another one."""
    cls = METHODS.get(name)
    if family is not None and cls.family != family:
        raise ConfigError(
            "method",
            f"{name!r} is a method of the {cls.family!r} family, not {family!r} "
            f"(methods of {family!r}: {list_methods(family)})",
        )
    return cls


def parse_options(cls: type[BaseMethod], overrides: Mapping[str, Any]) -> Any:
    """Build ``cls.Options`` from ``overrides``; unknown keys or wrong types raise ConfigError
    naming ``<method>.<key>``."""
    return build_options(
        cls.Options, overrides, prefix=f"{cls.name}.", what=f"option of {cls.name}"
    )


def build_method(name: str, num_classes: int, options: Mapping[str, Any] | None = None) -> Any:
    """Instantiate the method ``name`` with option overrides (a :class:`BaseMethod`)."""
    cls = method_class(name)
    return cls(parse_options(cls, options or {}), num_classes)


def options_help(name: str) -> dict[str, str]:
    """Option name -> help text of a registered method."""
    return helps(method_class(name).Options)
