"""The tracking job: log runs to MLflow from their folders, after they ran.

A training process writes only files: its local log ``train_log.jsonl`` (losses per step, tags,
the final status), ``run_config.json`` (the configuration of the attempt) and, when it finishes,
its run record ``metrics.json`` (:class:`kdseg.record.RunRecord`). :func:`track_runs` turns run
folders into MLflow runs, one per job key (:class:`kdseg.jobs.Job`):

* params: the resolved configuration, flattened (``config.*``), once;
* metrics: the per-step training metrics of the log (``loss/*``, ``lr``, ``it_per_s``,
  ``grad_norm``, ``ema_momentum``) at their steps and times, then every value of the record once
  (:meth:`RunRecord.final_metrics`) at step ``config.trainer.iterations``;
* tags: job key, ``kdseg.current``, attempt, schema version, environment (``kdseg.hostname``,
  ``kdseg.slurm_job_id``, ``kdseg.git_commit``, ...), config hash, and the caller's tags;
* artifacts: ``metrics.json``, ``train_log.jsonl``, ``model.pt`` when asked, and whatever the
  caller's ``artifacts`` hook writes (the report layer's confusion-matrix figure);
* status: the log's (``FINISHED``, ``KILLED`` for SIGINT/SIGTERM, ``FAILED``, ``RUNNING``).

It is idempotent: each MLflow run carries ``kdseg.source_digest``, the sha256 of the files it was
logged from, set last; a run folder whose current MLflow run has the same digest is skipped. A
folder whose files changed (a rerun, a resumed run that finished) is logged again as a new run,
and the earlier one is marked superseded (``kdseg.current=false``). A run the server never saw
(it was down, or the job was killed) is logged by the next call. Only this module (and the
command that calls it) imports MLflow; see ``docs/tracking.md``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdseg.errors import DataFormatError
from kdseg.jobs import Job
from kdseg.record import RECORD_FILE, RunRecord
from kdseg.tracking.jsonl import ATTEMPT_TAG, RunLog, parse_run_log

RUN_LOG = "train_log.jsonl"
RUN_CONFIG = "run_config.json"
MODEL_FILE = "model.pt"
DIGEST_TAG = "kdseg.source_digest"
#: metrics of the log that the record holds too (logged once, from the record)
RECORD_PREFIXES: tuple[str, ...] = ("eval/",)


@dataclass
class RunSource:
    """What one run folder holds for tracking (:func:`read_run`).

    Attributes:
        record: the run record when it belongs to the logged attempt (``None`` for an attempt
            that did not finish, whose folder may still hold an older attempt's record).
        status: final MLflow status of the attempt.
        digest: sha256 of the log and the record (what the MLflow run was made from).
    """

    run_dir: Path
    job_key: str
    config: dict[str, Any]
    log: RunLog | None
    record: RunRecord | None
    status: str
    digest: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, f"cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, "expected a JSON object")
    return data


def read_run(run_dir: str | Path, job_key: str | None = None) -> RunSource:
    """Read a run folder: its log, configuration and (matching) record.

    Raises:
        DataFormatError: naming the folder when it holds no run, or a file that is corrupt.
    """
    run_dir = Path(run_dir)
    log_path, record_path = run_dir / RUN_LOG, run_dir / RECORD_FILE
    log = parse_run_log(log_path) if log_path.is_file() else None
    record = RunRecord.read(record_path) if record_path.is_file() else None
    if log is None and record is None:
        raise DataFormatError(run_dir, f"no run here (neither {RUN_LOG} nor {RECORD_FILE})")
    if log is not None and record is not None and record.attempt != log.attempt:
        record = None  # the record of an earlier attempt: the latest one did not finish
    if record is not None:
        config = record.config
    elif (run_dir / RUN_CONFIG).is_file():
        config = _read_json(run_dir / RUN_CONFIG)
    else:
        raise DataFormatError(run_dir / RUN_CONFIG, "run configuration does not exist")
    status = "FINISHED" if record is not None else (log.status if log else "FINISHED")
    digest = hashlib.sha256()
    for path in (log_path, record_path if record is not None else None):
        if path is not None and path.is_file():
            digest.update(path.read_bytes())
    key = job_key or Job.of_config(config).key
    return RunSource(run_dir, key, config, log, record, status, digest.hexdigest()[:32])


def run_tags(source: RunSource) -> dict[str, str]:
    """The MLflow tags a run folder gives its run (beside job key and current-ness)."""
    tags = dict(source.log.tags) if source.log is not None else {}
    record = source.record
    if record is not None:
        tags["kdseg.schema_version"] = str(record.schema_version)
        if record.attempt:
            tags[ATTEMPT_TAG] = record.attempt
        if record.environment is not None:
            tags |= record.environment.tags()
    tags["kdseg.run_dir"] = str(source.run_dir.resolve())
    return tags


@dataclass(frozen=True)
class TrackResult:
    """What :func:`track_runs` did with one run folder."""

    job_key: str
    run_dir: str
    run_id: str
    status: str
    action: str
    """``logged`` (a new MLflow run) or ``unchanged`` (its current run is up to date)"""


ArtifactHook = Callable[[RunSource, Path], Sequence[Path]]


def track_runs(
    runs: Sequence[tuple[str | Path, str | None, Mapping[str, str]]],
    experiment: str,
    tracking_uri: str | None = None,
    artifacts: ArtifactHook | None = None,
    log_models: bool = False,
) -> list[TrackResult]:
    """Log every ``(run folder, job key or None, extra tags)`` of ``runs`` to ``experiment``.

    The store and the experiment are created when missing (:func:`kdseg.tracking.store.
    init_store`; the workflow creates them once, before its parallel tracking jobs).
    ``artifacts(source, folder)`` may write files into ``folder`` and return them to be logged.
    Runs are read before anything is logged, so a corrupt folder stops the job before it writes.
    """
    from kdseg.tracking.mlflow import MlflowTracker
    from kdseg.tracking.store import (
        CURRENT_TAG,
        JOB_KEY_TAG,
        client_for,
        init_store,
        resolve_tracking_uri,
        search_all_runs,
    )

    sources = [(read_run(d, key), dict(tags)) for d, key, tags in runs]
    uri = resolve_tracking_uri(tracking_uri)
    exp = init_store(uri, [experiment])[experiment]
    client = client_for(uri)
    current: dict[str, Any] = {}
    for run in search_all_runs(client, [exp], f"tags.`{CURRENT_TAG}` = 'true'"):
        current[run.data.tags.get(JOB_KEY_TAG, "")] = run
    results = []
    for source, extra in sources:
        old = current.get(source.job_key)
        if old is not None and old.data.tags.get(DIGEST_TAG) == source.digest:
            results.append(
                TrackResult(
                    source.job_key, str(source.run_dir), old.info.run_id, old.info.status,
                    "unchanged",
                )
            )  # fmt: skip
            continue
        log = source.log
        tracker = MlflowTracker.start(
            client,
            exp,
            source.job_key,
            {**run_tags(source), **extra},
            start_time_s=log.start_time if log is not None else None,
        )
        if old is not None and old.data.tags.get(CURRENT_TAG) == "true":
            tracker.supersede([old.info.run_id])  # replaced, whatever the start times say
        _log_run(tracker, source, artifacts, log_models)
        tracker.set_tags({DIGEST_TAG: source.digest})  # last: marks the MLflow run complete
        tracker.finish(source.status, end_time_s=log.end_time if log is not None else None)
        results.append(
            TrackResult(
                source.job_key, str(source.run_dir), tracker.run_id, source.status, "logged"
            )
        )
    return results


def _log_run(
    tracker: Any, source: RunSource, artifacts: ArtifactHook | None, log_models: bool
) -> None:
    tracker.log_config(source.config)
    if source.log is not None:
        for step, when, metrics in source.log.metrics:
            values = {k: v for k, v in metrics.items() if not k.startswith(RECORD_PREFIXES)}
            if values:
                tracker.log_metrics(values, step=step, time_s=when)
    if source.record is not None:
        trainer = source.config.get("trainer") or {}
        step = int(trainer.get("iterations", 0)) if isinstance(trainer, dict) else 0
        tracker.log_metrics(source.record.final_metrics(), step=step)
    files = [source.run_dir / RECORD_FILE] if source.record is not None else []
    files += [source.run_dir / RUN_LOG, source.run_dir / RUN_CONFIG]
    if log_models and source.record is not None:
        files.append(source.run_dir / MODEL_FILE)
    for path in files:
        if path.is_file():
            tracker.log_artifact(path)
    if artifacts is not None:
        with tempfile.TemporaryDirectory(prefix="kdseg-track-") as tmp:
            for path in artifacts(source, Path(tmp)):
                tracker.log_artifact(path)
