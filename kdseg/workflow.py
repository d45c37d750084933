"""Workflow configuration: validation and the jobs a study needs.

The Snakemake rules stay thin: they call these functions, which are unit-tested. A config is
checked in two passes before any job runs: the JSON schema (``config/schema.yaml``: types,
required and unknown keys) and the semantics (the scale exists, every variant names a registered
method with valid options, studies reference existing variants and datasets). Either pass raises
:class:`kdseg.errors.ConfigError` naming the offending key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from kdseg.budgets import parse_budget
from kdseg.errors import ConfigError
from kdseg.jobs import Job, run_dir

#: the input of IGNet's 2D teacher features (the ``ignet_figure`` needs a variant that uses it)
FEATURES_2D = "features_2d"

__all__ = ["Job"]


def _key_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def check_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """Validate ``config`` against the JSON schema; the first error names its key path."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ConfigError(_key_path(err.absolute_path), err.message)


def check_semantics(config: dict[str, Any]) -> None:
    """Cross-references the schema cannot express."""
    from kdseg.methods.base import method_class, parse_options

    if config["scale"] not in config["scales"]:
        raise ConfigError("scale", f"{config['scale']!r} is not one of {sorted(config['scales'])}")
    from kdseg.inputs import check_settings

    for name, var in config["variants"].items():
        try:
            cls = method_class(var["method"])
        except ConfigError as exc:
            raise ConfigError(f"variants.{name}.method", exc.problem) from None
        try:
            parse_options(cls, var.get("options") or {})
        except ConfigError as exc:
            raise ConfigError(
                f"variants.{name}.options.{exc.key.split('.', 1)[-1]}", exc.problem
            ) from None
        check_settings(name, cls.requires, var.get("inputs"))
        for key, teacher in _input_variants(config, name).items():
            if teacher not in config["variants"]:
                raise ConfigError(f"variants.{name}.inputs.{key}", f"unknown variant {teacher!r}")
            if teacher == name:
                raise ConfigError(f"variants.{name}.inputs.{key}", "names the variant itself")
    for name, study in config["studies"].items():
        where = f"studies.{name}"
        if study["dataset"] not in config["datasets"]:
            raise ConfigError(f"{where}.dataset", f"unknown dataset {study['dataset']!r}")
        for i, row in enumerate(study["rows"]):
            if row not in config["variants"]:
                raise ConfigError(f"{where}.rows[{i}]", f"unknown variant {row!r}")
        for i, budget in enumerate(study["budgets"]):
            try:
                parse_budget(budget)
            except ConfigError as exc:
                raise ConfigError(f"{where}.budgets[{i}]", exc.problem) from None
        pcb = study.get("per_class_budget")
        if pcb is not None and pcb not in study["budgets"]:
            raise ConfigError(f"{where}.per_class_budget", f"{pcb!r} is not among the budgets")
        for variant in study.get("reported") or {}:
            if variant not in study["rows"]:
                raise ConfigError(f"{where}.reported.{variant}", "not a row of this study")
    for name, ds in config["datasets"].items():
        check_teacher(config, name, ds)
    check_dataset_formats(config)


def check_dataset_formats(config: dict[str, Any]) -> None:
    """What a dataset's format allows: a nuScenes dataset names its release (``version``), a
    SemanticKITTI one does not; a study's budgets read labels its dataset has (no nuScenes
    scribbles) and its variants' inputs are ones the format provides (no IGNet camera features
    on nuScenes). A dataset without ``generator`` exists only with ``data=real``: its studies
    are left out of a synthetic run (:func:`active_studies`)."""
    from kdseg.budgets import parse_budget
    from kdseg.datasets.lidar_layouts import layout_class

    for name, ds in config["datasets"].items():
        needs_version = layout_class(ds["format"]).versioned
        if needs_version and not ds.get("version"):
            raise ConfigError(f"datasets.{name}.version", f"a {ds['format']} dataset needs one")
        if not needs_version and ds.get("version"):
            raise ConfigError(f"datasets.{name}.version", f"a {ds['format']} dataset has none")
    for name, study in config["studies"].items():
        fmt = config["datasets"][study["dataset"]]["format"]
        layout = layout_class(fmt)
        for i, budget in enumerate(study["budgets"]):
            if parse_budget(budget).supervision not in layout.supervisions:
                raise ConfigError(
                    f"studies.{name}.budgets[{i}]", f"the {fmt} format has no {budget} labels"
                )
        for i, row in enumerate(study["rows"]):
            missing = sorted(variant_requires(config, row) & layout.unsupported_inputs)
            if missing:
                raise ConfigError(
                    f"studies.{name}.rows[{i}]",
                    f"{row} needs {missing}, which the {fmt} format does not provide",
                )


def active_studies(config: dict[str, Any]) -> list[str]:
    """The studies of the active data mode: all with ``data=real``; with synthetic data those
    whose dataset has a ``generator`` (a real-only dataset such as nuScenes has none)."""
    real = config["data"] == "real"
    return [
        name
        for name, study in config["studies"].items()
        if real or config["datasets"][study["dataset"]].get("generator")
    ]


def data_layout_args(config: dict[str, Any], dataset: str) -> list[str]:
    """``kdseg`` options naming the layout of ``dataset`` (given before the command): none for
    SemanticKITTI, ``--data-format F [--data-version V]`` for another format."""
    ds = config["datasets"][dataset]
    if ds["format"] == "semantickitti":
        return []
    version = ["--data-version", str(ds["version"])] if ds.get("version") else []
    return ["--data-format", ds["format"], *version]


def check_teacher(config: dict[str, Any], name: str, ds: dict[str, Any]) -> None:
    """The 2D teacher settings of dataset ``name`` (IGNet): its options and checkpoint."""
    from kdseg.image2d import TeacherOptions

    where = f"datasets.{name}"
    try:
        TeacherOptions.for_scale(
            scale_settings(config)["train_scale"], **(ds.get("teacher_options") or {})
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}.teacher_options.{exc.key}", exc.problem) from None
    except TypeError as exc:  # an option of the wrong type
        raise ConfigError(f"{where}.teacher_options", str(exc)) from None
    checkpoint = ds.get("teacher_checkpoint")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ConfigError(f"{where}.teacher_checkpoint", f"file {checkpoint} does not exist")


def teacher_source_root(config: dict[str, Any], dataset: str) -> Path | None:
    """Root whose ``source/`` images train the teacher of ``dataset`` when it differs from the
    dataset itself: with real data, the embedded synthetic data of the dataset's ``generator``
    at the scale's generator scale (synthetic → real adaptation, the IGNet recipe)."""
    ds = config["datasets"][dataset]
    if config["data"] != "real" or ds.get("teacher_checkpoint") or not ds.get("generator"):
        return None
    gscale = scale_settings(config)["generator_scale"]
    return Path(config["data_root"]) / "synthetic" / gscale / ds["generator"]


def check_figure(config: dict[str, Any]) -> None:
    """``ignet_figure`` names a dataset, variants and a budget/seed that studies train."""
    fig = config.get("ignet_figure")
    if fig is None:
        return
    if fig["dataset"] not in config["datasets"]:
        raise ConfigError("ignet_figure.dataset", f"unknown dataset {fig['dataset']!r}")
    for key in ("baseline", "variant"):
        if fig[key] not in config["variants"]:
            raise ConfigError(f"ignet_figure.{key}", f"unknown variant {fig[key]!r}")
    if FEATURES_2D not in variant_requires(config, fig["variant"]):
        raise ConfigError("ignet_figure.variant", f"{fig['variant']!r} uses no 2D teacher")
    trained = {job for study in active_studies(config) for job in study_jobs(config, study)}
    for key in ("baseline", "variant"):
        job = Job(fig["dataset"], fig[key], fig["budget"], int(fig["seed"]))
        if job not in trained:
            raise ConfigError(f"ignet_figure.{key}", f"no study trains run {job.key}")


def validate_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Schema then semantics; raises :class:`ConfigError` naming the key."""
    check_schema(config, schema_path)
    check_semantics(config)
    check_figure(config)
    from kdseg.workflow_continual import check_continual  # continual_studies, their variants

    check_continual(config)


def variant_requires(config: dict[str, Any], variant: str) -> frozenset[str]:
    """The extra inputs (``Method.requires``) of a variant's method, e.g. ``{"features_2d"}``."""
    from kdseg.methods.base import method_class

    return method_class(config["variants"][variant]["method"]).requires


def _input_variants(config: dict[str, Any], variant: str) -> dict[str, str]:
    """``{input.key: variant}`` of the inputs settings that name another variant's run."""
    settings = config["variants"][variant].get("inputs") or {}
    return {
        f"{name}.variant": str(block["variant"])
        for name, block in settings.items()
        if isinstance(block, dict) and "variant" in block
    }


def train_inputs(config: dict[str, Any], job: Job) -> dict[str, dict[str, str]]:
    """``{input: {key: path}}``: the rule outputs the training job needs for its method's
    inputs (:func:`kdseg.inputs.job_inputs`; e.g. the 2D feature cache, a teacher's run)."""
    from kdseg.inputs import job_inputs

    var = config["variants"][job.variant]
    names = variant_requires(config, job.variant)
    return job_inputs(config, config["scale"], job, names, var.get("inputs") or {})


def train_input_args(config: dict[str, Any], job: Job) -> list[str]:
    """The ``kdseg train --input NAME=VALUE`` arguments of a training job."""
    from kdseg.inputs import cli_args

    return cli_args(train_inputs(config, job))


def track_jobs(config: dict[str, Any], study: str) -> list[dict[str, Any]]:
    """What the study's tracking job logs (``kdseg track --jobs-json``): every run of the
    study with its job key and the tags ``rule`` and ``variant_fingerprint``."""
    jobs = study_jobs(config, study)
    prints = {v: variant_fingerprint(config, v) for v in {job.variant for job in jobs}}
    return [
        {
            "run_dir": run_folder(config, job),
            "job_key": job.key,
            "tags": {"rule": "train", "variant_fingerprint": prints[job.variant]},
        }
        for job in jobs
    ]


def run_folder(config: dict[str, Any], job: Job) -> str:
    """The run folder of ``job`` at the active scale."""
    return run_dir(config["scale"], job)


def teacher_args(config: dict[str, Any], dataset: str) -> list[str]:
    """``kdseg teacher`` arguments of a dataset: adopt its checkpoint, or train at the scale."""
    ds = config["datasets"][dataset]
    if ds.get("teacher_checkpoint"):
        return ["--checkpoint", str(ds["teacher_checkpoint"])]
    options = json.dumps(ds.get("teacher_options") or {}, sort_keys=True)
    args = ["--scale", scale_settings(config)["train_scale"], "--options-json", options]
    source = teacher_source_root(config, dataset)
    return args + (["--source", str(source)] if source is not None else [])


FIXED_SPLIT_SEED = 0
"""The seed of the one split file per budget under ``split_policy: fixed``."""


def split_seed(config: dict[str, Any], seed: int) -> int:
    """The seed of the split file a run of ``seed`` trains on: :data:`FIXED_SPLIT_SEED` under
    ``split_policy: fixed`` (the default, the published protocol), else ``seed``."""
    return seed if config.get("split_policy", "fixed") == "per_seed" else FIXED_SPLIT_SEED


def scale_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The active scale's settings."""
    return config["scales"][config["scale"]]


def study_seeds(config: dict[str, Any], study: str) -> list[int]:
    """Seeds of a study at the active scale (a scale may override them, e.g. smoke: [0])."""
    return list(scale_settings(config).get("seeds") or config["studies"][study]["seeds"])


def study_budgets(config: dict[str, Any], study: str) -> list[str]:
    """Budgets of a study at the active scale: the study's, minus the scale's ``drop_budgets``
    (the CPU default scale drops 20 % and 50 % to fit its time budget; the paper scale keeps
    them)."""
    dropped = set(scale_settings(config).get("drop_budgets") or ())
    return [b for b in config["studies"][study]["budgets"] if b not in dropped]


def study_jobs(config: dict[str, Any], study: str) -> list[Job]:
    """Every training run the study's table needs, sorted."""
    s = config["studies"][study]
    return sorted(
        Job(s["dataset"], v, b, seed)
        for v in s["rows"]
        for b in study_budgets(config, study)
        for seed in study_seeds(config, study)
    )


def variant_fingerprint(config: dict[str, Any], variant: str) -> str:
    """Hash of what defines a variant's runs (method, options, schedule, input settings); a
    change reruns only them."""
    var = config["variants"][variant]
    blob = {"method": var["method"], "options": var.get("options") or {}}
    if var.get("schedule", 1.0) != 1.0:
        blob["schedule"] = var["schedule"]
    if var.get("inputs"):
        blob["inputs"] = var["inputs"]
    blob = json.dumps(blob, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dataset_root(config: dict[str, Any], dataset: str) -> Path:
    """Root (holding ``dataset/sequences``) of ``dataset`` under the active data mode."""
    root = Path(config["data_root"])
    if config["data"] == "real":
        return root / config["datasets"][dataset]["real_path"]
    return root / "synthetic" / scale_settings(config)["generator_scale"] / dataset


def study_definition(config: dict[str, Any], study: str) -> dict[str, Any]:
    """The study as plain data for :meth:`kdseg.report.study.StudyDef.from_dict`.

    Rows carry the variants' display names; seeds are those of the active scale; the
    reported-number mapping is attached (the report adds those rows only for real data).
    """
    s = config["studies"][study]
    ds = config["datasets"][s["dataset"]]
    real = config["data"] == "real"
    out: dict[str, Any] = {
        "name": study,
        "title": s["title"],
        "dataset": s["dataset"],
        "dataset_display": (
            ds.get("reported_dataset", s["dataset"]) if real else f"synthetic {s['dataset']}"
        ),
        "rows": [[v, config["variants"][v].get("display", v)] for v in s["rows"]],
        "columns": study_budgets(config, study),
        "seeds": study_seeds(config, study),
        "scale": config["scale"],
        "per_class_budget": s.get("per_class_budget"),
    }
    if s.get("reported"):
        out["reported"] = {
            "dataset": ds.get("reported_dataset", s["dataset"]),
            "methods": s["reported"],
        }
    return out
