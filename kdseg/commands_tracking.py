"""The ``kdseg track`` and ``kdseg mlflow-init`` commands, and MLflow logging after a run.

The only commands that import MLflow (through :mod:`kdseg.tracking.sync`); a training process
imports it only when ``kdseg train --mlflow-experiment`` asks to log the run by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from kdseg.commands import parse_key_values
from kdseg.errors import ConfigError


def track_after_train(
    args: argparse.Namespace, uri: str, tags: dict[str, str], exc: BaseException | None
) -> None:
    """Log the run folder of ``kdseg train --mlflow-experiment`` (its status from its log)."""
    from kdseg.tracking.sync import track_runs

    if not (Path(args.out) / "train_log.jsonl").is_file():
        return  # stopped before training started: nothing to log
    try:
        track_runs([(args.out, args.job_key, tags)], args.mlflow_experiment, uri, run_figures_of)
    except Exception as track_exc:
        if exc is None:
            raise
        exc.add_note(f"not logged to MLflow ({track_exc})")


def run_figures_of(source: Any, folder: Path) -> list[Path]:
    """The report layer's figures of a tracked run (the confusion matrix)."""
    from kdseg.report.run_figures import run_figures

    return run_figures(source.record, folder) if source.record is not None else []


def track(args: argparse.Namespace) -> int:
    """Log run folders to an MLflow experiment (:func:`kdseg.tracking.sync.track_runs`)."""
    from kdseg.io import write_json
    from kdseg.tracking.store import resolve_tracking_uri
    from kdseg.tracking.sync import track_runs

    tags = {k: str(v) for k, v in parse_key_values(args.tag, "--tag").items()}
    runs: list[tuple[str, str | None, dict[str, str]]] = [(d, None, tags) for d in args.runs]
    if args.jobs_json:
        try:
            jobs = json.loads(args.jobs_json)
        except json.JSONDecodeError as exc:
            raise ConfigError("--jobs-json", f"not valid JSON ({exc.msg})") from None
        if not isinstance(jobs, list) or not all(
            isinstance(j, dict) and "run_dir" in j for j in jobs
        ):
            raise ConfigError("--jobs-json", "must be a JSON list of {run_dir, job_key, tags}")
        for job in jobs:
            runs.append((job["run_dir"], job.get("job_key"), tags | dict(job.get("tags") or {})))
    if not runs:
        raise ConfigError("runs", "give run folders (or --jobs-json JSON)")
    uri = resolve_tracking_uri(args.uri)
    results = track_runs(runs, args.experiment, uri, run_figures_of, log_models=args.models)
    for r in results:
        print(f"{r.job_key}: {r.action} ({r.status}, MLflow run {r.run_id})")
    if args.out:
        write_json(
            args.out,
            {
                "experiment": args.experiment,
                "tracking_uri": uri,
                "runs": [dataclasses.asdict(r) for r in results],
            },
        )
    return 0


def mlflow_init(args: argparse.Namespace) -> int:
    """Create the MLflow store and experiments once (before parallel tracking jobs)."""
    from kdseg.io import write_json
    from kdseg.tracking.store import init_store

    ids = init_store(args.uri, list(args.experiments))
    write_json(args.out, {"tracking_uri": args.uri, "experiments": ids})
    print(json.dumps(ids))
    return 0
    return 0
