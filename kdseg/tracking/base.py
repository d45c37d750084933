"""The tracker interface the Trainer talks to, and back-end independent helpers.

A training process writes only its local log (:class:`kdseg.tracking.jsonl.JsonlTracker`) and its
run record; MLflow is fed afterwards from those files (:mod:`kdseg.tracking.sync`). Any object with
the five methods of :class:`Tracker` can stand in (:class:`NullTracker`, :class:`MultiTracker`,
:class:`kdseg.tracking.mlflow.MlflowTracker`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: the statuses a run ends with (MLflow's terminal statuses)
STATUSES: tuple[str, ...] = ("FINISHED", "FAILED", "KILLED")


@runtime_checkable
class Tracker(Protocol):
    """Where a run's parameters, metrics, tags and artifacts go."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record run parameters (flat ``"a.b.c"`` keys; see :func:`flatten_params`)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record scalar metrics, optionally at a training iteration ``step``."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Attach string tags to the run."""

    def log_artifact(self, path: str | Path) -> None:
        """Register a file produced by the run."""

    def finish(self, status: str = "FINISHED") -> None:
        """Close the run with a status such as ``FINISHED``, ``FAILED`` or ``KILLED``."""


class NullTracker:
    """A tracker that records nothing."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def log_artifact(self, path: str | Path) -> None:
        pass

    def finish(self, status: str = "FINISHED") -> None:
        pass


class MultiTracker:
    """Forwards every call to each of ``trackers`` in order."""

    def __init__(self, trackers: Iterable[Tracker]) -> None:
        self.trackers: list[Tracker] = list(trackers)

    def log_params(self, params: Mapping[str, Any]) -> None:
        for t in self.trackers:
            t.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for t in self.trackers:
            t.log_metrics(metrics, step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for t in self.trackers:
            t.set_tags(tags)

    def log_artifact(self, path: str | Path) -> None:
        for t in self.trackers:
            t.log_artifact(path)

    def finish(self, status: str = "FINISHED") -> None:
        for t in self.trackers:
            t.finish(status)


def _leaf_str(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, list | tuple | bool | int | float) else str(value)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings into ``{"a.b.c": "value"}`` with string values (MLflow params).

    Leaves are converted with ``json.dumps`` when they are JSON scalars or lists (``true``,
    ``0.001``, ``[1, 2]``, ``null`` for None) and ``str`` otherwise. An empty nested mapping gives
    no key. Two paths that flatten to the same key raise ``ValueError``.
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            items = flatten_params(value, name).items()
        else:
            items = [(name, "null" if value is None else _leaf_str(value))]
        for k, v in items:
            if k in out:
                raise ValueError(f"parameter key {k!r} occurs twice after flattening")
            out[k] = v
    return out
