"""Experiment tracking: the local log a run writes, and MLflow fed from finished runs.

* :mod:`~kdseg.tracking.base`: the :class:`Tracker` interface, :class:`NullTracker`,
  :class:`MultiTracker`, :func:`flatten_params`;
* :mod:`~kdseg.tracking.jsonl`: :class:`JsonlTracker` (the run's ``train_log.jsonl``),
  :func:`read_jsonl`, :func:`parse_run_log`;
* :mod:`~kdseg.tracking.store`: MLflow store set-up and look-ups safe with parallel writers;
* :mod:`~kdseg.tracking.mlflow`: :class:`~kdseg.tracking.mlflow.MlflowTracker` (one MLflow run);
* :mod:`~kdseg.tracking.sync`: the tracking job (``kdseg track``, the workflow's ``track`` rule):
  logs finished runs from their folders, idempotently.

Importing this package imports neither torch nor MLflow (``docs/tracking.md``).
"""

from kdseg.tracking.base import STATUSES, MultiTracker, NullTracker, Tracker, flatten_params
from kdseg.tracking.jsonl import ATTEMPT_TAG, JsonlTracker, RunLog, parse_run_log, read_jsonl

__all__ = [
    "ATTEMPT_TAG",
    "STATUSES",
    "JsonlTracker",
    "MultiTracker",
    "NullTracker",
    "RunLog",
    "Tracker",
    "flatten_params",
    "parse_run_log",
    "read_jsonl",
]
