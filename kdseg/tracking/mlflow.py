"""MLflow back-end of the :class:`~kdseg.tracking.base.Tracker` interface: one MLflow run.

Everything goes through ``mlflow.MlflowClient`` with explicit run and experiment ids (never the
fluent ``mlflow.start_run``/``set_experiment`` global state), so several trackers can live in one
process, and every database write is retried on SQLite lock errors
(:func:`kdseg.tracking.store.retry_on_lock`). Store set-up and look-ups live in
:mod:`kdseg.tracking.store`; what a finished run logs is decided by :mod:`kdseg.tracking.sync`;
``docs/tracking.md`` describes what is logged where. Only the tracking job imports this module
(and MLflow): a training process never does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kdseg.tracking.base import STATUSES, flatten_params
from kdseg.tracking.store import (
    CURRENT_TAG,
    JOB_KEY_HASH_TAG,
    JOB_KEY_TAG,
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    METRICS_PER_BATCH,
    PARAMS_PER_BATCH,
    SUPERSEDED_BY_TAG,
    config_hash,
    job_key_hash,
    retry_on_lock,
    sanitize_key,
    search_all_runs,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["MlflowTracker", "snakemake_tags", "tracker_for_job"]


def snakemake_tags(rule: str | None, wildcards: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Tags for a Snakemake job: ``snakemake.rule`` and ``snakemake.wildcards.<name>``."""
    tags = {} if rule is None else {"snakemake.rule": str(rule)}
    tags.update({f"snakemake.wildcards.{k}": str(v) for k, v in (wildcards or {}).items()})
    return tags


class MlflowTracker:
    """One MLflow run, written through ``client`` with its explicit ``run_id``.

    Use :meth:`start` (or :func:`tracker_for_job`) to create the run. As a context manager it
    finishes the run with ``FINISHED``, ``FAILED`` on an exception, ``KILLED`` on
    ``KeyboardInterrupt``/``SystemExit``.
    """

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._params: dict[str, str] = {}
        self._metric_names: dict[str, str] = {}

    @classmethod
    def start(
        cls,
        client: MlflowClient,
        experiment_id: str,
        job_key: str,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
        start_time_s: float | None = None,
    ) -> MlflowTracker:
        """Create a run in ``experiment_id`` tagged with ``job_key`` and ``kdseg.current=true``
        (started at ``start_time_s``, Unix seconds, default now), then mark earlier current runs
        of the same job key superseded (:meth:`supersede_earlier`).
        """
        all_tags = {_key(k): _tag_value(v) for k, v in (tags or {}).items()}
        all_tags.update({JOB_KEY_TAG: _tag_value(job_key), JOB_KEY_HASH_TAG: job_key_hash(job_key)})
        all_tags[CURRENT_TAG] = "true"
        run = retry_on_lock(
            client.create_run,
            experiment_id,
            tags=all_tags,
            run_name=(run_name or job_key)[:MAX_KEY_LENGTH],
            start_time=None if start_time_s is None else int(start_time_s * 1000),
        )
        tracker = cls(client, run.info.run_id)
        tracker.supersede_earlier(job_key)
        return tracker

    def supersede_earlier(self, job_key: str) -> list[str]:
        """Tag the other current runs of ``job_key`` that started before this one
        ``kdseg.current=false`` and ``kdseg.superseded_by=<this run id>``; return their ids.

        Only *earlier* runs are touched (start time, then run id, breaks ties), so two attempts
        that start at once still leave exactly one current run: the later one.
        """
        me = retry_on_lock(self.client.get_run, self.run_id).info
        flt = (
            f"tags.`{JOB_KEY_HASH_TAG}` = '{job_key_hash(job_key)}'"
            f" AND tags.`{CURRENT_TAG}` = 'true'"
        )
        done = []
        for run in search_all_runs(self.client, [me.experiment_id], flt):
            info = run.info
            if (
                info.run_id == self.run_id
                or run.data.tags.get(JOB_KEY_TAG) != job_key[:MAX_TAG_VALUE_LENGTH]
            ):
                continue
            if (info.start_time, info.run_id) > (me.start_time, me.run_id):
                continue
            retry_on_lock(self.client.set_tag, info.run_id, SUPERSEDED_BY_TAG, self.run_id)
            retry_on_lock(self.client.set_tag, info.run_id, CURRENT_TAG, "false")
            done.append(info.run_id)
        return done

    def supersede(self, run_ids: list[str]) -> None:
        """Mark the runs ``run_ids`` (which this run replaces) ``kdseg.current=false`` and
        ``kdseg.superseded_by=<this run id>``."""
        for run_id in run_ids:
            retry_on_lock(self.client.set_tag, run_id, SUPERSEDED_BY_TAG, self.run_id)
            retry_on_lock(self.client.set_tag, run_id, CURRENT_TAG, "false")

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters, flattened with :func:`flatten_params`; keys sanitised, values cut to
        6000 characters. Re-logging an identical value is a no-op; a different value for a key
        already logged raises ``ValueError`` (MLflow params are immutable)."""
        from mlflow.entities import Param

        new: dict[str, str] = {}
        for raw_key, raw_value in flatten_params(params).items():
            key, value = _key(raw_key), raw_value[:MAX_PARAM_VALUE_LENGTH]
            old = self._params.get(key, new.get(key))
            if old is not None and old != value:
                raise ValueError(f"parameter {key!r} already logged as {old!r}, not {value!r}")
            if old is None:
                new[key] = value
        items = [Param(k, v) for k, v in new.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            retry_on_lock(
                self.client.log_batch, self.run_id, params=items[i : i + PARAMS_PER_BATCH]
            )
            self._params.update((p.key, p.value) for p in items[i : i + PARAMS_PER_BATCH])

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, time_s: float | None = None
    ) -> None:
        """Log scalar metrics at iteration ``step`` (0 when ``None``), timestamped ``time_s``
        (Unix seconds; default now).

        Names are sanitised with :func:`sanitize_key`; two different names that sanitise to the
        same key raise ``ValueError`` rather than mixing two series. Values are cast to float
        (NaN and infinities are stored as such).
        """
        from mlflow.entities import Metric

        now_ms = int((time.time() if time_s is None else time_s) * 1000)
        items = []
        for name, value in metrics.items():
            key = _key(name)
            first = self._metric_names.setdefault(key, str(name))
            if first != str(name):
                raise ValueError(f"metric names {first!r} and {name!r} both map to {key!r}")
            items.append(Metric(key, float(value), now_ms, int(step or 0)))
        for i in range(0, len(items), METRICS_PER_BATCH):
            retry_on_lock(
                self.client.log_batch, self.run_id, metrics=items[i : i + METRICS_PER_BATCH]
            )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Attach tags (keys sanitised, values cut to 8000 characters)."""
        from mlflow.entities import RunTag

        items = [RunTag(_key(k), _tag_value(v)) for k, v in tags.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            retry_on_lock(self.client.log_batch, self.run_id, tags=items[i : i + PARAMS_PER_BATCH])

    def log_config(self, config: Mapping[str, Any]) -> str:
        """Log a resolved run config as ``config.*`` params and tag ``kdseg.config_hash``;
        returns the hash (:func:`config_hash`)."""
        digest = config_hash(config)
        self.set_tags({"kdseg.config_hash": digest})
        self.log_params({"config": dict(config)})
        return digest

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a file (or a folder's contents) into the run's artifacts, under
        ``artifact_path`` when given."""
        p = Path(path)
        if p.is_dir():
            retry_on_lock(self.client.log_artifacts, self.run_id, str(p), artifact_path)
        elif p.is_file():
            retry_on_lock(self.client.log_artifact, self.run_id, str(p), artifact_path)
        else:
            raise FileNotFoundError(f"{p}: artifact does not exist")

    def finish(self, status: str = "FINISHED", end_time_s: float | None = None) -> None:
        """End the run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``; ``RUNNING`` leaves
        it open) at ``end_time_s`` (Unix seconds, default now). Calling it again overwrites the
        status and end time."""
        status = str(status).upper()
        if status == "RUNNING":
            return
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        end = None if end_time_s is None else int(end_time_s * 1000)
        retry_on_lock(self.client.set_terminated, self.run_id, status, end)

    def __enter__(self) -> MlflowTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self.finish("KILLED")
        else:
            self.finish("FAILED")


def _key(name: Any) -> str:
    return sanitize_key(str(name))


def _tag_value(value: Any) -> str:
    return str(value)[:MAX_TAG_VALUE_LENGTH]


def tracker_for_job(
    experiment: str,
    job_key: str,
    tags: Mapping[str, str],
    tracking_uri: str | None = None,
) -> MlflowTracker:
    """Start the MLflow run of ``job_key`` in the existing experiment ``experiment``.

    URI: ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<abs>/results/mlflow.db``
    (:func:`kdseg.tracking.store.resolve_tracking_uri`). The store and the experiment must
    exist (:func:`kdseg.tracking.store.init_store`); otherwise ``StoreNotInitialisedError`` /
    ``ExperimentNotFoundError`` name what is missing. Tags added: ``kdseg.job_key``,
    ``kdseg.current``, ``kdseg.slurm_job_id`` when ``$SLURM_JOB_ID`` is set, then ``tags``.
    """
    import os

    from kdseg.tracking.store import experiment_id, open_existing_store

    client, uri = open_existing_store(tracking_uri)
    exp = experiment_id(client, experiment, uri)
    all_tags = {}
    if os.environ.get("SLURM_JOB_ID"):
        all_tags["kdseg.slurm_job_id"] = os.environ["SLURM_JOB_ID"]
    all_tags.update({str(k): str(v) for k, v in tags.items()})
    return MlflowTracker.start(client, exp, job_key, all_tags)
