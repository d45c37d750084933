"""Workflow configuration of the continual 2D family: validation and the jobs of a study.

Config sections (``config/config.yaml``, schema in ``config/schema.yaml``):

* ``continual_datasets``: ``voc`` / ``ade20k`` with their layout (``format``), the real data's
  folder and class lists under ``data_root``;
* ``continual_studies``: one table each (dataset, setting, tasks = column groups, rows =
  variants of continual methods, seeds; optionally the scales it runs at, the figure's task and
  the published numbers to print beside ours);
* the rows are ordinary ``variants`` whose method is of the ``image_continual`` family.

A study's task runs are chains of step jobs (:class:`kdseg.jobs.ContinualJob`), each step a DAG
node whose model is the next step's ``old_model`` input (:mod:`kdseg.inputs.old_model`). Step 0
of every chain is trained by :func:`trained_by`: once per dataset x setting x step-0 classes x
seed (:func:`kdseg.datasets.continual.base_task`), by the variant named in the ``old_model``
setting ``base_variant`` (or the variant itself). A method that trains every class in one step
(``single_step``, joint training) runs once per seed on the ``offline`` task.
Errors are :class:`kdseg.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kdseg.errors import ConfigError
from kdseg.jobs import ContinualJob, continual_dir, continual_split_dir

OLD_MODEL = "old_model"
FAMILY = "image_continual"
OFFLINE = "offline"
#: synthetic data preset of each generator scale (``scales.<s>.generator_scale``)
IMAGE_PRESETS = {"smoke": "smoke", "default": "default", "full": "paper"}


def _scale(config: dict[str, Any]) -> dict[str, Any]:
    return config["scales"][config["scale"]]


def _method(config: dict[str, Any], variant: str) -> Any:
    from kdseg.methods.base import method_class

    return method_class(config["variants"][variant]["method"])


def base_variant(config: dict[str, Any], variant: str) -> str | None:
    """The ``old_model`` setting ``base_variant`` of a continual variant (None when unset or
    when its method needs no old model)."""
    if OLD_MODEL not in _method(config, variant).requires:
        return None
    settings = (config["variants"][variant].get("inputs") or {}).get(OLD_MODEL) or {}
    return settings.get("base_variant")


def trained_by(config: dict[str, Any], job: ContinualJob) -> ContinualJob:
    """The step job that trains step ``job.step`` of ``job``'s chain (a shared base run for
    step 0, see the module docstring)."""
    if job.step != 0:
        return job
    from kdseg.inputs.old_model import base_job

    return base_job(job, base_variant(config, job.variant))


def active_studies(config: dict[str, Any]) -> list[str]:
    """The continual studies that run at the active scale (``scales`` of a study)."""
    studies = config.get("continual_studies") or {}
    return [n for n, s in studies.items() if config["scale"] in s.get("scales", [config["scale"]])]


def study_seeds(config: dict[str, Any], study: str) -> list[int]:
    return list(_scale(config).get("seeds") or config["continual_studies"][study]["seeds"])


def study_runs(config: dict[str, Any], study: str) -> list[ContinualJob]:
    """The task runs (``step=None``) of a study: rows x tasks x seeds (a single-step method:
    one offline run per seed)."""
    s = config["continual_studies"][study]
    runs = set()
    for variant in s["rows"]:
        single = bool(getattr(_method(config, variant), "single_step", False))
        for task in [OFFLINE] if single else s["tasks"]:
            for seed in study_seeds(config, study):
                runs.add(ContinualJob(s["dataset"], s["setting"], task, variant, seed))
    return sorted(runs)


def num_steps(dataset: str, task: str) -> int:
    from kdseg.datasets.continual import get_task

    return get_task(dataset, task).num_steps


def chain(config: dict[str, Any], run: ContinualJob) -> list[ContinualJob]:
    """The step jobs whose folders make ``run``'s task record, step 0 first."""
    return [trained_by(config, run.at(t)) for t in range(num_steps(run.dataset, run.task))]


def study_steps(config: dict[str, Any], study: str) -> list[ContinualJob]:
    """Every step job a study needs (shared base runs once), sorted."""
    return sorted({step for run in study_runs(config, study) for step in chain(config, run)})


def run_paths(config: dict[str, Any], study: str) -> list[str]:
    """The task records of a study (the report's inputs)."""
    return [f"{continual_dir(config['scale'], r)}/metrics.json" for r in study_runs(config, study)]


def track_jobs(config: dict[str, Any], study: str) -> list[dict[str, Any]]:
    """What the study's tracking job logs: every step run with its job key."""
    from kdseg.workflow import variant_fingerprint

    return [
        {
            "run_dir": continual_dir(config["scale"], step),
            "job_key": step.key,
            "tags": {
                "rule": "train_step",
                "variant_fingerprint": variant_fingerprint(config, step.variant),
            },
        }
        for step in study_steps(config, study)
    ]


def data_root(config: dict[str, Any], dataset: str) -> Path:
    """Root of a continual dataset: real data under ``data_root/<real_path>``, else the
    synthetic data of the scale's generator preset."""
    root = Path(config["data_root"])
    if config["data"] == "real":
        return root / config["continual_datasets"][dataset]["real_path"]
    preset = IMAGE_PRESETS[_scale(config)["generator_scale"]]
    return root / "synthetic" / preset / dataset


def class_lists(config: dict[str, Any], dataset: str) -> Path:
    """The folder with ``train_cls.txt`` / ``val_cls.txt`` (real: the configured one; the
    synthetic data write their own)."""
    if config["data"] == "real":
        return Path(config["data_root"]) / config["continual_datasets"][dataset]["class_lists"]
    return data_root(config, dataset) / "cl_metadata"


def split_dir(config: dict[str, Any], job: ContinualJob) -> str:
    return continual_split_dir(config["scale"], job.dataset, job.setting, job.task)


def study_definition(config: dict[str, Any], study: str) -> dict[str, Any]:
    """The study as plain data for :meth:`kdseg.report.continual.ContinualStudy.from_dict`."""
    s = config["continual_studies"][study]
    ds = config["continual_datasets"][s["dataset"]]
    real = config["data"] == "real"
    shown = ds.get("display", s["dataset"]) if real else f"synthetic {s['dataset']}"
    return {
        "name": study,
        "title": s["title"],
        "dataset": s["dataset"],
        "setting": s["setting"],
        "tasks": list(s["tasks"]),
        "rows": [[v, config["variants"][v].get("display", v)] for v in s["rows"]],
        "seeds": study_seeds(config, study),
        "scale": _scale(config)["train_scale"],
        "dataset_display": shown,
        "figure_task": s.get("figure_task"),
        "reported": s.get("reported") or {},
        "reported_dataset": ds.get("reported_dataset", s["dataset"]),
    }


def check_continual(config: dict[str, Any]) -> None:
    """Cross-references of the continual sections the schema cannot express."""
    from kdseg.datasets.continual import get_task

    datasets = config.get("continual_datasets") or {}
    studies = config.get("continual_studies") or {}
    for name in config["variants"]:
        cls = _method(config, name)
        if getattr(cls, "family", "") != FAMILY:
            continue
        base = base_variant(config, name)
        where = f"variants.{name}.inputs.{OLD_MODEL}.base_variant"
        if base is not None:
            if base not in config["variants"]:
                raise ConfigError(where, f"unknown variant {base!r}")
            if _method(config, base).family != FAMILY or _method(config, base).single_step:
                raise ConfigError(where, f"{base!r} is not a variant of a continual method")
            if base != name and base_variant(config, base) not in (None, base):
                raise ConfigError(where, f"{base!r} takes its own step 0 from another variant")
    for name, lidar in config["studies"].items():
        for i, row in enumerate(lidar["rows"]):
            if row in config["variants"] and _method(config, row).family == FAMILY:
                raise ConfigError(f"studies.{name}.rows[{i}]", f"{row!r} is a continual method")
    for name, s in studies.items():
        where = f"continual_studies.{name}"
        if name in config["studies"]:
            raise ConfigError(where, "a study of the same name exists in studies")
        if s["dataset"] not in datasets:
            raise ConfigError(f"{where}.dataset", f"unknown continual dataset {s['dataset']!r}")
        for i, task in enumerate(s["tasks"]):
            try:
                if get_task(s["dataset"], task).num_steps < 2:
                    raise ConfigError("task", "has one step: not a continual task")
            except ConfigError as exc:
                raise ConfigError(f"{where}.tasks[{i}]", exc.problem) from None
        for i, row in enumerate(s["rows"]):
            if row not in config["variants"]:
                raise ConfigError(f"{where}.rows[{i}]", f"unknown variant {row!r}")
            if _method(config, row).family != FAMILY:
                raise ConfigError(f"{where}.rows[{i}]", f"{row!r} is not a continual method")
        if s.get("figure_task") is not None and s["figure_task"] not in s["tasks"]:
            raise ConfigError(f"{where}.figure_task", f"{s['figure_task']!r} is not a task")
        for variant in s.get("reported") or {}:
            if variant not in s["rows"]:
                raise ConfigError(f"{where}.reported.{variant}", "not a row of this study")
        for i, sc in enumerate(s.get("scales") or []):
            if sc not in config["scales"]:
                raise ConfigError(f"{where}.scales[{i}]", f"unknown scale {sc!r}")
