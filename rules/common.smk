# Configuration loading, validation (before any job runs) and path helpers. Every path and name
# comes from kdseg.jobs (the one place that names the workflow's outputs) and every input of a
# training job from its method's input providers (kdseg.inputs): no rule names a method.
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from kdseg import jobs
from kdseg.cluster import check_profile_settings, gpu_resource_keys, gpu_resources
from kdseg.scales import get_scale
from kdseg.workflow import (
    active_studies,
    data_layout_args,
    dataset_root,
    scale_settings,
    split_seed,
    study_jobs,
    study_definition,
    teacher_args,
    teacher_source_root,
    track_jobs,
    train_input_args,
    train_inputs,
    validate_config,
    variant_requires,
    Job,
)

validate_config(config, workflow.source_path("../config/schema.yaml"))
# The SLURM profile's account and partitions must be filled in before anything runs.
_RES = workflow.resource_settings
check_profile_settings(
    {k: v.raw for k, v in (_RES.default_resources or {}).items()},
    {r: {k: v.raw for k, v in m.items()} for r, m in _RES.overwrite_resources.items()},
)

SCALE = config["scale"]
SETTINGS = scale_settings(config)
# with synthetic data: the studies of datasets with a generator (kdseg.workflow.active_studies)
STUDIES = active_studies(config)
RESULTS = jobs.RESULTS.format(scale=SCALE)
LOGS = jobs.LOGS.format(scale=SCALE)
# Under --use-conda the rules run in envs/kdseg.yaml; otherwise in the interpreter running Snakemake.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
KDSEG = "python -m kdseg.cli" if USE_CONDA else f"{sys.executable} -m kdseg.cli"
MLFLOW_URI = jobs.tracking_uri(config.get("mlflow_uri"))
SCHEDULE_ITERATIONS = get_scale(SETTINGS["train_scale"]).trainer["iterations"]
DATASETS = list(config["datasets"])
VARIANTS = list(config["variants"])


wildcard_constraints:
    dataset="|".join(DATASETS),
    variant="|".join(VARIANTS),
    budget=jobs.BUDGET_PATTERN,
    seed=jobs.SEED_PATTERN,
    study="|".join(STUDIES),


def gpu_job_resources():
    """Resources of a GPU job (train, teacher2d, point_features) as callables of `resources:`:
    the scale's (for training: the variant's) memory, GPUs, wall time x attempt (kdseg.cluster).
    """

    def resource(key):
        def value(wildcards, attempt):
            variant = getattr(wildcards, "variant", None)
            return gpu_resources(config, variant, attempt)[key]

        return value

    return {key: resource(key) for key in gpu_resource_keys(config)}


GPU_RESOURCES = gpu_job_resources()


def kdseg_for(wildcards):
    """The kdseg command for a job of a dataset, with the dataset's layout before the command
    (`kdseg --data-format nuscenes --data-version V check-data ...`). A SemanticKITTI dataset
    adds nothing, so its jobs keep exactly the command and params they had (nothing reruns).
    """
    layout = data_layout_args(config, wildcards.dataset)
    return f"{KDSEG} {shlex.join(layout)}" if layout else KDSEG


def path(template, **values):
    """A kdseg.jobs template filled for the active scale."""
    return jobs.fill(template, scale=SCALE, **values)


def pattern(template):
    """A kdseg.jobs template as a rule's wildcard pattern at the active scale."""
    return jobs.pattern(template, SCALE)


def data_root(dataset):
    return str(dataset_root(config, dataset))


def experiment_name(study):
    return jobs.experiment_name(SCALE, study)


def run_dir(job):
    return jobs.run_dir(SCALE, job)


def metrics_of(study):
    return [f"{run_dir(job)}/metrics.json" for job in study_jobs(config, study)]


def study_metrics(wildcards):
    return metrics_of(wildcards.study)


def split_file(wildcards):
    """The split a run trains on (split_policy: one fixed file per budget, or one per seed)."""
    seed = split_seed(config, int(wildcards.seed))
    return path(
        jobs.SPLIT_FILE, dataset=wildcards.dataset, budget=wildcards.budget, seed=seed
    )


def job_of(wildcards):
    return Job(
        wildcards.dataset, wildcards.variant, wildcards.budget, int(wildcards.seed)
    )


def dataset_inputs(wildcards):
    if config["data"] == "real":
        return []
    return [f"{data_root(wildcards.dataset)}/meta.json"]


def study_json(wildcards):
    return json.dumps(study_definition(config, wildcards.study))


def track_jobs_json(wildcards):
    return json.dumps(track_jobs(config, wildcards.study))


def reported_csv(wildcards):
    path = config.get("reported_numbers")
    return path if config["data"] == "real" and path else "none"


def teacher_dir(dataset):
    return path(jobs.TEACHER_DIR, dataset=dataset)


def teacher_inputs(wildcards):
    """The data record, plus the user's teacher checkpoint when one is configured."""
    inputs = {"ready": path(jobs.DATA_RECORD, dataset=wildcards.dataset)}
    user_teacher = config["datasets"][wildcards.dataset].get("teacher_checkpoint")
    if user_teacher:
        inputs["user_teacher"] = user_teacher
    source = teacher_source_root(config, wildcards.dataset)
    if source is not None:  # real data: synthetic source images, generated first
        inputs["source"] = f"{source}/meta.json"
    return inputs


def teacher_source(wildcards):
    return shlex.join(teacher_args(config, wildcards.dataset))


def method_inputs(wildcards):
    """What the job's method needs (its input providers decide: the 2D feature cache, another
    run's model, ...), as named inputs `<input>_<key>`."""
    files = train_inputs(config, job_of(wildcards))
    return {
        f"{name}_{key}": p for name, keys in files.items() for key, p in keys.items()
    }


def input_args(wildcards):
    return shlex.join(train_input_args(config, job_of(wildcards)))


IGNET_FIGURE = config.get("ignet_figure")


def figure_run(key):
    fig = IGNET_FIGURE
    job = Job(fig["dataset"], fig[key], fig["budget"], int(fig["seed"]))
    return run_dir(job)
