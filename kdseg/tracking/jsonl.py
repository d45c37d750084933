"""The local log of a training run: one JSON object per line, appended and fsynced.

:class:`JsonlTracker` is the one file of the project that is appended to rather than written
atomically: rewriting a growing log on every call would be quadratic, and a crash can at worst cut
the last line short, which :func:`read_jsonl` tolerates. :func:`parse_run_log` reads a run's log
back as what tracking needs: the attempt id, the per-step metrics, the tags and the final status.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdseg.errors import DataFormatError

#: tag of the run's local log naming its training attempt (also ``attempt`` of the run record)
ATTEMPT_TAG = "kdseg.attempt"


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


@dataclass
class RunLog:
    """A run's local log, summarised for tracking (:func:`parse_run_log`).

    Attributes:
        attempt: the id of the training attempt (first ``kdseg.attempt`` tag), or ``None``.
        status: ``FINISHED``/``FAILED``/``KILLED`` of the last ``finish`` event, or ``RUNNING``
            when training events follow it (a resumed attempt) or there is none.
        metrics: ``(step, unix time s, {name: value})`` of every ``metrics`` event, in order.
        tags: every tag, the last value of each key.
        start_time, end_time: Unix times (s) of the first and the last event.
    """

    attempt: str | None = None
    status: str = "RUNNING"
    metrics: list[tuple[int, float, dict[str, float]]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    start_time: float | None = None
    end_time: float | None = None


def parse_run_log(path: str | Path) -> RunLog:
    """Read a :class:`JsonlTracker` log into a :class:`RunLog` (``DataFormatError`` when it is
    missing or corrupt, see :func:`read_jsonl`)."""
    log = RunLog()
    for record in read_jsonl(path):
        event, when = record.get("event"), record.get("time")
        if isinstance(when, int | float):
            log.start_time = when if log.start_time is None else log.start_time
            log.end_time = when
        if event == "metrics":
            step = record.get("step")
            log.metrics.append((int(step or 0), float(when or 0.0), dict(record["metrics"])))
            log.status = "RUNNING"
        elif event == "tags":
            tags = {str(k): str(v) for k, v in record.get("tags", {}).items()}
            if log.attempt is None and ATTEMPT_TAG in tags:
                log.attempt = tags[ATTEMPT_TAG]
            log.tags.update(tags)
        elif event == "finish":
            log.status = str(record.get("status", "FINISHED")).upper()
    return log
