# Configuration loading, validation (before any job runs) and path helpers.
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from kdseg.guidance import FEATURES_2D
from kdseg.scales import get_scale
from kdseg.workflow import (
    dataset_root,
    home_study,
    scale_settings,
    split_seed,
    study_jobs,
    study_definition,
    study_seeds,
    teacher_args,
    teacher_source_root,
    validate_config,
    variant_fingerprint,
    variant_requires,
    Job,
)

validate_config(config, workflow.source_path("../config/schema.yaml"))

SCALE = config["scale"]
SETTINGS = scale_settings(config)
STUDIES = list(config["studies"])
RESULTS = f"results/{SCALE}"
LOGS = f"logs/{SCALE}"
# Under --use-conda the rules run in envs/kdseg.yaml; otherwise in the interpreter running Snakemake.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
KDSEG = "python -m kdseg.cli" if USE_CONDA else f"{sys.executable} -m kdseg.cli"
MLFLOW_URI = config.get("mlflow_uri") or os.environ.get(
    "MLFLOW_TRACKING_URI", f"sqlite:///{Path('results/mlflow.db').resolve()}"
)
SCHEDULE_ITERATIONS = get_scale(SETTINGS["train_scale"]).trainer["iterations"]
DATASETS = list(config["datasets"])
VARIANTS = list(config["variants"])


wildcard_constraints:
    dataset="|".join(DATASETS),
    variant="|".join(VARIANTS),
    budget=r"full|scribbles|scans-[0-9]+(\.[0-9]+)?",
    seed=r"[0-9]+",
    study="|".join(STUDIES),


def data_root(dataset):
    return str(dataset_root(config, dataset))


def experiment_name(study):
    return f"kdseg/{SCALE}/{study}"


def run_dir(job):
    return f"{RESULTS}/runs/{job.dataset}/{job.variant}/{job.budget}/seed{job.seed}"


def metrics_of(study):
    return [f"{run_dir(job)}/metrics.json" for job in study_jobs(config, study)]


def study_metrics(wildcards):
    return metrics_of(wildcards.study)


def split_file(wildcards):
    """The split a run trains on (split_policy: one fixed file per budget, or one per seed)."""
    seed = split_seed(config, int(wildcards.seed))
    return f"{RESULTS}/splits/{wildcards.dataset}/{wildcards.budget}/seed{seed}.json"


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


def reported_csv(wildcards):
    path = config.get("reported_numbers")
    return path if config["data"] == "real" and path else "none"


def teacher_dir(dataset):
    return f"{RESULTS}/teacher2d/{dataset}"


def teacher_inputs(wildcards):
    """The data record, plus the user's teacher checkpoint when one is configured."""
    inputs = {"ready": f"{RESULTS}/data/{wildcards.dataset}.json"}
    user_teacher = config["datasets"][wildcards.dataset].get("teacher_checkpoint")
    if user_teacher:
        inputs["user_teacher"] = user_teacher
    source = teacher_source_root(config, wildcards.dataset)
    if source is not None:  # real data: synthetic source images, generated first
        inputs["source"] = f"{source}/meta.json"
    return inputs


def teacher_source(wildcards):
    return shlex.join(teacher_args(config, wildcards.dataset))


def feature_inputs(wildcards):
    """The 2D feature cache of the dataset, for variants whose method requires it."""
    if FEATURES_2D in variant_requires(config, wildcards.variant):
        return {"features": f"{teacher_dir(wildcards.dataset)}/features/manifest.json"}
    return {}


def features_arg(wildcards, input):
    if "features" in input.keys():
        return f"--features {shlex.quote(str(Path(input.features).parent))}"
    return ""


IGNET_FIGURE = config.get("ignet_figure")


def figure_run(key):
    fig = IGNET_FIGURE
    job = Job(fig["dataset"], fig[key], fig["budget"], int(fig["seed"]))
    return run_dir(job)
