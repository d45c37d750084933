"""A run folder belongs to one configuration: resume, discard or start a training attempt.

The folder ``results/<scale>/runs/<dataset>/<variant>/<budget>/seed<S>/`` holds:
``run_config.json`` (the configuration of the latest attempt), ``train_log.jsonl`` (its local
log: losses, tags, status), ``checkpoint_last.pt`` (only while an attempt is unfinished), and the
latest finished attempt's ``metrics.json`` and ``model.pt``. An attempt is identified by the
``kdseg.attempt`` tag of its log (also the ``attempt`` of its run record), so tracking can tell
an unfinished attempt from an earlier finished one.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from kdseg.io import write_json
from kdseg.tracking.jsonl import parse_run_log
from kdseg.trainer_config import OPERATIONAL_KEYS

RUN_CONFIG = "run_config.json"
RUN_LOG = "train_log.jsonl"


def guard_resume(out: Path, checkpoint: Path, resolved: dict[str, Any]) -> bool:
    """Decide whether the run in ``out`` resumes; make ``out`` belong to this configuration.

    A run folder belongs to one configuration: the one last started in it, recorded in
    ``out/run_config.json``. A checkpoint on disk is that of an interrupted run (a finished run
    removes its own, :meth:`Trainer.fit`); it is resumed when it was written under the same
    configuration (up to the trainer keys that do not change the numbers, such as
    ``log_every``). A checkpoint of another configuration is discarded, with a note on stderr
    naming what differs, and the run trains from scratch; so does a run without checkpoint, and
    the training log of the earlier attempt is cleared. The previous results (``metrics.json``,
    ``model.pt``) stay until the new ones replace them (atomically, at the end).

    Returns:
        True when the checkpoint is to be resumed.
    """
    path = out / RUN_CONFIG
    current = json.loads(json.dumps(resolved, default=str))
    resume = checkpoint.is_file()
    if resume and path.is_file():
        diff = _differences(_read_json(path), current)
        if diff:
            print(
                f"{checkpoint}: discarding the checkpoint of another configuration (differs in "
                f"{diff}); training from scratch",
                file=sys.stderr,
            )
            checkpoint.unlink()
            resume = False
    log = out / RUN_LOG
    if not resume and log.exists():
        log.unlink()
    write_json(path, current)
    return resume


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or ``{}`` when it is unreadable (it then differs)."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Top-level keys whose values differ, ignoring the operational trainer keys."""

    def numbers_only(config: dict[str, Any]) -> dict[str, Any]:
        trainer = config.get("trainer")
        if isinstance(trainer, dict):
            trainer = {k: v for k, v in trainer.items() if k not in OPERATIONAL_KEYS}
            return {**config, "trainer": trainer}
        return config

    a, b = numbers_only(saved), numbers_only(current)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def attempt_id(out: Path, resume: bool) -> tuple[str, bool]:
    """The id of the attempt in ``out`` and whether it is new: a resumed attempt keeps the id
    its log records; a new one (or a log without id) gets a fresh one."""
    log = out / RUN_LOG
    if resume and log.is_file():
        previous = parse_run_log(log).attempt
        if previous:
            return previous, False
    return uuid.uuid4().hex[:16], True
