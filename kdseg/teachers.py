"""Teachers: the networks a method learns from, built and owned by the Trainer.

A method declares its teacher with :meth:`~kdseg.methods.base.Method.teacher_spec`: a
:class:`TeacherSpec` naming a registered kind (:data:`TEACHERS`) and that kind's options. The
Trainer builds the teacher before the first step (:func:`build_teacher`), sets
``method.teacher`` to its :attr:`Teacher.network` without registering it as a submodule (so the
optimizer, ``method.state_dict()`` and ``method.train()`` never see it), calls
:meth:`Teacher.after_step` after every optimizer update, and checkpoints its state.

Kinds:

* ``"ema"`` (:class:`kdseg.ema.EmaTeacher`): the exponential moving average of one of the
  method's networks (Mean Teacher, LaserMix, IGNet's consistency);
* ``"frozen"`` (:class:`FrozenTeacher`): a network trained by another rule and loaded from its
  checkpoint through an input provider (``teacher_checkpoint``: another run's ``metrics.json``
  network spec + ``model.pt``); the route of M2SKD's multi-scan teacher and LGKD's old model.

A new kind is one :class:`Teacher` subclass registered with ``@TEACHERS.register("name")``;
``tests/test_teachers.py`` is parametrized over the registry.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from kdseg.errors import ConfigError
from kdseg.options import build as build_options
from kdseg.options import option
from kdseg.registry import Registry


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    """What teacher a method wants: a registered ``kind`` and that kind's ``options``."""

    kind: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Teacher(abc.ABC):
    """A teacher network and how it evolves during training.

    Attributes:
        kind: the registry name (set by registration).
        Options: the dataclass of the kind's options (:mod:`kdseg.options`).
    """

    kind: ClassVar[str] = ""
    Options: ClassVar[type] = type(None)

    @classmethod
    @abc.abstractmethod
    def build(cls, opts: Any, method: nn.Module, inputs: Mapping[str, Any]) -> Teacher:
        """The teacher of ``method`` (already on its device) from the kind's options and the
        run's bound inputs (:mod:`kdseg.inputs`)."""

    @property
    @abc.abstractmethod
    def network(self) -> nn.Module:
        """The frozen network the method reads as ``method.teacher`` (no gradients)."""

    def after_step(self, method: nn.Module) -> dict[str, float]:
        """Called after every optimizer update; returns values to log (e.g. the momentum)."""
        return {}

    @property
    def moving_module(self) -> nn.Module | None:
        """The module whose buffers a training step moves (rolled back with the method's on an
        interrupt), or ``None``."""
        return None

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint keeps of the teacher (``None``: nothing, it is rebuilt)."""
        return None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict` on resume (a teacher with no state ignores it)."""
        del state


def _check_teacher(name: str, cls: Any) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Teacher)):
        raise TypeError(f"teacher kind {name!r} must be a kdseg.teachers.Teacher subclass")
    cls.kind = cls.kind or name


TEACHERS: Registry[type[Teacher]] = Registry(
    "teacher kind",
    "teacher",
    discover=lambda: importlib.import_module("kdseg.ema"),
    check=_check_teacher,
)


def build_teacher(
    spec: TeacherSpec | None, method: nn.Module, inputs: Mapping[str, Any] | None = None
) -> Teacher | None:
    """The teacher ``spec`` asks for (``None`` for no teacher); its options are checked with
    the options helper (``ConfigError`` naming ``teacher.<kind>.<key>``)."""
    if spec is None:
        return None
    cls = TEACHERS.get(spec.kind)
    opts = build_options(
        cls.Options, spec.options, prefix=f"teacher.{spec.kind}.", what=f"{spec.kind} option"
    )
    return cls.build(opts, method, inputs or {})


def freeze(module: nn.Module) -> nn.Module:
    """``module`` in eval mode with ``requires_grad=False`` everywhere (returned)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


@dataclasses.dataclass(frozen=True)
class FrozenOptions:
    input: str = option(
        "teacher_checkpoint", "the input (kdseg.inputs provider) that loads the teacher network"
    )


@TEACHERS.register("frozen")
class FrozenTeacher(Teacher):
    """A network loaded from another run's checkpoint, frozen, in eval mode (BatchNorm running
    statistics), never updated. Its weights are not checkpointed: they are the input's."""

    Options = FrozenOptions

    def __init__(self, network: nn.Module) -> None:
        self._network = freeze(network)

    @classmethod
    def build(cls, opts: FrozenOptions, method: nn.Module, inputs: Mapping[str, Any]) -> Teacher:
        source = inputs.get(opts.input)
        load = getattr(source, "load_network", None)
        if load is None:
            raise ConfigError(
                f"inputs.{opts.input}",
                f"a frozen teacher needs the {opts.input!r} input (the method must require it "
                f"and the run must be given it: kdseg train --input {opts.input}=RUN_DIR)",
            )
        device = next((p.device for p in method.parameters()), torch.device("cpu"))
        return cls(load().to(device))

    @property
    def network(self) -> nn.Module:
        return self._network
