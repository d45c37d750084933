"""Experiment tracking behind one small interface.

The Trainer and the benchmark scripts talk only to :class:`Tracker`; concrete back-ends (a local
JSONL log here, MLflow later) are interchangeable. :class:`JsonlTracker` appends one JSON object per
call and flushes it, so the history of a run survives a crash. It is the one file of the project
that is appended to rather than written atomically: rewriting a growing log on every call would be
quadratic, and a crash can at worst cut the last line short, which :func:`read_jsonl` tolerates.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kdseg.errors import DataFormatError


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


class JsonlTracker:
    """Appends one JSON object per call to ``path``: ``{"event", "time", ...payload}``.

    Events: ``params`` (``params``), ``metrics`` (``metrics``, ``step``), ``tags`` (``tags``),
    ``artifact`` (``path``), ``finish`` (``status``). ``time`` is Unix time in seconds.
    Non-finite metric values are written as JSON ``NaN``/``Infinity`` (Python's json reads them).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _append(self, event: str, **payload: Any) -> None:
        record = {"event": event, "time": time.time(), **payload}
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._append("params", params={str(k): str(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {str(k): float(v) for k, v in metrics.items()}
        self._append("metrics", metrics=values, step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._append("tags", tags={str(k): str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path) -> None:
        self._append("artifact", path=str(Path(path).resolve()))

    def finish(self, status: str = "FINISHED") -> None:
        self._append("finish", status=str(status))


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


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a :class:`JsonlTracker` log. A final line cut short by a crash is skipped; a corrupt
    line elsewhere raises :class:`~kdseg.errors.DataFormatError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "tracking log does not exist")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == len(lines):  # no trailing newline: the write was interrupted
                break
            raise DataFormatError(path, f"line {lineno}: invalid JSON ({exc.msg})") from None
    return records


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
