"""The registry of input providers (:class:`kdseg.inputs.base.InputProvider` subclasses)."""

from __future__ import annotations

import importlib
from typing import Any

from kdseg.registry import Registry

BUILTIN_MODULES = ("features_2d", "mix_partners", "teacher_checkpoint", "old_model")


def _discover() -> None:
    for name in BUILTIN_MODULES:
        importlib.import_module(f"kdseg.inputs.{name}")


def _check(name: str, cls: Any) -> None:
    from kdseg.inputs.base import InputProvider

    if not (isinstance(cls, type) and issubclass(cls, InputProvider)):
        raise TypeError(f"input provider {name!r} must subclass kdseg.inputs.base.InputProvider")
    cls.name = cls.name or name


PROVIDERS: Registry[Any] = Registry(
    "input", "inputs", discover=_discover, entry_points="kdseg.inputs", check=_check
)
"""Every input provider class; ``PROVIDERS.get(name)()`` is an instance."""
