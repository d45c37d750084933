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
#: continual (2D image) studies: per-step index files, the run folder of a task x variant x seed
#: (its task record metrics.json and final model.pt) and one folder per step (a DAG node each)
CONTINUAL_SPLIT_DIR = "{results}/splits/continual/{dataset}/{setting}/{task}"
CONTINUAL_SPLIT = CONTINUAL_SPLIT_DIR + "/task.json"
CONTINUAL_RUN_DIR = "{results}/continual/{dataset}/{setting}/{task}/{variant}/seed{seed}"
CONTINUAL_RECORD = CONTINUAL_RUN_DIR + "/metrics.json"
CONTINUAL_MODEL = CONTINUAL_RUN_DIR + "/model.pt"
CONTINUAL_STEP_DIR = CONTINUAL_RUN_DIR + "/step{step}"
CONTINUAL_STEP_RECORD = CONTINUAL_STEP_DIR + "/metrics.json"
CONTINUAL_STEP_MODEL = CONTINUAL_STEP_DIR + "/model.pt"
CONTINUAL_STEP_LOG = (
    "{logs}/continual/{dataset}/{setting}/{task}/{variant}/seed{seed}/step{step}.log"
)
#: task names (VOC ``15-1``, ADE20K ``100-50``, ``offline``) and continual settings in paths
TASK_PATTERN = r"offline|[0-9]+-[0-9]+"
SETTING_PATTERN = r"overlap|disjoint"
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


@dataclass(frozen=True, order=True)
class ContinualJob:
    """A continual (class-incremental 2D) run of the DAG: dataset x setting x task x variant x
    seed, or one of its steps (``step`` set), each step a training job of its own.

    Attributes:
        dataset: ``voc`` or ``ade20k`` (a ``continual_datasets`` entry).
        setting: ``overlap`` or ``disjoint``.
        task: the task name (``15-1``, ``100-50``, ``offline`` for joint training).
        variant: the method variant.
        seed: the run seed.
        step: the step, or ``None`` for the whole task (its run folder).
    """

    dataset: str
    setting: str
    task: str
    variant: str
    seed: int
    step: int | None = None

    @property
    def key(self) -> str:
        """Stable identifier (MLflow ``kdseg.job_key``): ``voc/overlap/15-1/mib/seed0``, plus
        ``/step<t>`` for a step."""
        base = f"{self.dataset}/{self.setting}/{self.task}/{self.variant}/seed{self.seed}"
        return base if self.step is None else f"{base}/step{self.step}"

    def at(self, step: int | None) -> ContinualJob:
        """The same run at ``step`` (``None``: the whole task)."""
        return ContinualJob(self.dataset, self.setting, self.task, self.variant, self.seed, step)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "setting": self.setting,
            "task": self.task,
            "variant": self.variant,
            "seed": self.seed,
        }
        if self.step is not None:
            out["step"] = self.step
        return out


def continual_dir(scale: str, job: ContinualJob) -> str:
    """The folder of a continual run (``job.step is None``) or of one of its steps."""
    template = CONTINUAL_RUN_DIR if job.step is None else CONTINUAL_STEP_DIR
    return fill(template, scale=scale, **job.fields())


def continual_split_dir(scale: str, dataset: str, setting: str, task: str) -> str:
    """The folder of a task's per-step index files (``task.json`` written last)."""
    return fill(CONTINUAL_SPLIT_DIR, scale=scale, dataset=dataset, setting=setting, task=task)
