"""Cluster resources of the workflow's jobs and the SLURM profile's fill-in-once settings
(:mod:`kdseg.cluster`), the profile itself and the cluster extra's pin."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from kdseg.cluster import (
    GPU_RULES,
    PLACEHOLDER,
    check_profile_settings,
    gpu_resource_keys,
    gpu_resources,
)
from kdseg.errors import ConfigError
from kdseg.workflow import validate_config

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"


@pytest.fixture
def config() -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["scale"] = "paper"
    return cfg


def test_paper_scale_gpu_jobs_get_the_scales_resources(config):
    res = config["scales"]["paper"]["resources"]
    assert gpu_resources(config, "sup_only") == {
        "mem_mb": res["mem_mb"],
        "runtime": res["runtime"],
        "gpu": res["gpus"],
    }
    assert gpu_resources(config) == gpu_resources(config, "lasermix")  # teacher2d, features


def test_runtime_grows_with_the_attempt_and_the_schedule(config):
    base = config["scales"]["paper"]["resources"]["runtime"]
    assert gpu_resources(config, "sup_only", attempt=3)["runtime"] == 3 * base
    config["variants"]["sup_only"]["schedule"] = 0.25
    assert gpu_resources(config, "sup_only")["runtime"] == base // 4
    config["variants"]["sup_only"]["resources"] = {"runtime": 7, "gpus": 2}
    assert gpu_resources(config, "sup_only", attempt=2) == {
        "mem_mb": config["scales"]["paper"]["resources"]["mem_mb"],
        "runtime": 14,  # an explicit runtime is not scaled by the schedule
        "gpu": 2,
    }
    with pytest.raises(ValueError, match="attempt"):
        gpu_resources(config, "sup_only", attempt=0)


def test_gres_or_gpu_model_replace_plain_gpus(config):
    config["scales"]["paper"]["resources"]["gpu_model"] = "a100"
    assert gpu_resource_keys(config) == ("mem_mb", "runtime", "gpu", "gpu_model")
    assert gpu_resources(config)["gpu_model"] == "a100"
    config["scales"]["paper"]["resources"]["gres"] = "gpu:a100:1"
    assert gpu_resource_keys(config) == ("mem_mb", "runtime", "gres")
    assert gpu_resources(config)["gres"] == "gpu:a100:1"
    validate_config(config, REPO / "config" / "schema.yaml")


def test_cpu_scales_request_no_gpu(config):
    config["scale"] = "smoke"
    assert gpu_resources(config, "lasermix") == {"mem_mb": 4000, "runtime": 30, "gpu": 0}


@pytest.mark.parametrize(
    ("resources", "key"),
    [
        ({"gres": "gpu 1"}, "scales.paper.resources.gres"),
        ({"gpus": -1}, "scales.paper.resources.gpus"),
        ({"runtime": 0}, "scales.paper.resources.runtime"),
        ({"partition": "gpu"}, "scales.paper.resources"),
    ],
)
def test_resource_keys_are_validated(config, resources, key):
    bad = copy.deepcopy(config)
    bad["scales"]["paper"]["resources"].update(resources)
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        validate_config(bad, REPO / "config" / "schema.yaml")


def test_unfilled_profile_settings_are_named():
    with pytest.raises(ConfigError, match=r"default-resources\.slurm_account.*sacctmgr"):
        check_profile_settings({"slurm_account": PLACEHOLDER, "mem_mb": 4000}, {})
    with pytest.raises(ConfigError, match=r"set-resources\.train\.slurm_partition.*sinfo"):
        check_profile_settings({"slurm_account": ""}, {"train": {"slurm_partition": "FILL_IN"}})
    check_profile_settings({"slurm_account": "lab", "slurm_partition": "cpu"}, {})
    check_profile_settings(None, None)  # no profile: nothing to check


def test_shipped_profile():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert profile["restart-times"] >= 1
    assert profile["default-resources"]["slurm_account"] == PLACEHOLDER
    assert profile["default-resources"]["slurm_partition"] == PLACEHOLDER
    assert {r: v["slurm_partition"] for r, v in profile["set-resources"].items()} == dict.fromkeys(
        GPU_RULES, PLACEHOLDER
    )
    # the workflow profile (profiles/default) is read too and would override these per key
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert not set(default) & {"latency-wait", "keep-going", "restart-times", "jobs"}


def test_cluster_extra_pins_the_executor_plugin():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    cluster = project["optional-dependencies"]["cluster"]
    assert any(re.fullmatch(r"snakemake-executor-plugin-slurm==\d+\.\d+\.\d+", d) for d in cluster)
    assert all("==" in d for d in cluster)
