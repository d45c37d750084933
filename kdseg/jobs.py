"""Job naming, in one place: the folders and names of the workflow's outputs.

Used by the Snakemake rules (``rules/*.smk``), :mod:`kdseg.workflow`, the input providers (which
name the rule outputs a training job needs) and the tracking job. A path template such as
:data:`RUN_DIR` is filled with :func:`fill` for one job, or left with its ``{wildcards}`` as a
rule's output pattern (:func:`pattern`). Imports neither torch nor MLflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the budget names a path may hold (``kdseg.budgets`` checks their meaning)
BUDGET_PATTERN = r"full|scribbles|scans-[0-9]+(\.[0-9]+)?"
SEED_PATTERN = r"[0-9]+"

RESULTS = "results/{scale}"
LOGS = "logs/{scale}"
RUN_DIR = "{results}/runs/{dataset}/{variant}/{budget}/seed{seed}"
RUN_RECORD = RUN_DIR + "/metrics.json"
RUN_MODEL = RUN_DIR + "/model.pt"
SPLIT_FILE = "{results}/splits/{dataset}/{budget}/seed{seed}.json"
DATA_RECORD = "{results}/data/{dataset}.json"
TEACHER_DIR = "{results}/teacher2d/{dataset}"
TEACHER_CHECKPOINT = TEACHER_DIR + "/teacher.pt"
TEACHER_RECORD = TEACHER_DIR + "/metrics.json"
FEATURE_MANIFEST = TEACHER_DIR + "/features/manifest.json"
TRACK_MARKER = "{results}/tracking/{study}.json"
MLFLOW_READY = "{results}/mlflow_experiments.json"
TRAIN_LOG = "{logs}/train/{dataset}/{variant}/{budget}/seed{seed}.log"
EXPERIMENT = "kdseg/{scale}/{study}"
#: the default MLflow store, relative to the workflow's working directory
DEFAULT_STORE = "results/mlflow.db"


@dataclass(frozen=True, order=True)
class Job:
    """One training run of the DAG: dataset x method variant x label budget x seed."""

    dataset: str
    variant: str
    budget: str
    seed: int

    @property
    def key(self) -> str:
        """Stable identifier, e.g. ``street/lasermix/scans-10/seed0`` (MLflow ``kdseg.job_key``)."""
        return f"{self.dataset}/{self.variant}/{self.budget}/seed{self.seed}"

    @classmethod
    def of_config(cls, config: Mapping[str, Any]) -> Job:
        """The job of a resolved run config (``metrics.json`` / ``run_config.json``)."""
        return cls(
            str(config["dataset"]),
            str(config.get("variant") or config["method"]),
            str(config["budget"]),
            int(config["seed"]),
        )

    def fields(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "variant": self.variant,
            "budget": self.budget,
            "seed": self.seed,
        }


def fill(template: str, **values: Any) -> str:
    """``template`` with ``{name}`` filled from ``values``; ``results`` and ``logs`` are derived
    from ``scale`` when not given."""
    if "scale" in values:
        values.setdefault("results", RESULTS.format(scale=values["scale"]))
        values.setdefault("logs", LOGS.format(scale=values["scale"]))
    return template.format(**values)


def pattern(template: str, scale: str) -> str:
    """``template`` as a Snakemake pattern: ``results``/``logs`` filled for ``scale``, every
    other ``{name}`` kept as a wildcard."""
    known = {"results": RESULTS.format(scale=scale), "logs": LOGS.format(scale=scale)}

    class Keep(dict):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return template.format_map(Keep(known, scale=scale))


def run_dir(scale: str, job: Job) -> str:
    """The run folder of ``job`` (``results/<scale>/runs/<dataset>/<variant>/<budget>/seed<S>``)."""
    return fill(RUN_DIR, scale=scale, **job.fields())


def experiment_name(scale: str, study: str) -> str:
    """The MLflow experiment of a study (``kdseg/<scale>/<study>``)."""
    return EXPERIMENT.format(scale=scale, study=study)


def tracking_uri(configured: str | None = None) -> str:
    """The MLflow store the workflow uses: the config's ``mlflow_uri``, else
    ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<absolute path of results/mlflow.db>``."""
    if configured:
        return configured
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(DEFAULT_STORE).resolve()}"
