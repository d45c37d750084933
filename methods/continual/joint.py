"""Joint training: every class in one step (the ``offline`` task), the upper bound."""

from __future__ import annotations

from typing import ClassVar

from kdseg.methods.base import register_method

from .base import ContinualMethod


@register_method("joint")
class Joint(ContinualMethod):
    """Joint training (upper bound): CE on every class at once (MiB's ``offline`` task). The
    workflow trains it once per seed on the offline task and reads each task's old / new / all
    columns from its per-class IoU."""

    preset = "joint"
    requires: ClassVar[frozenset[str]] = frozenset()
    single_step: ClassVar[bool] = True
