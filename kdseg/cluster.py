"""The SLURM side of the workflow: per-job resources and the profile's fill-in-once settings.

GPU jobs (``train``, ``teacher2d``, ``point_features``) take their memory, wall time and GPUs
from the scale's ``resources`` block (``config/config.yaml``, ``scales.<s>.resources``); a
training job's variant may override them (``variants.<v>.resources``), and a variant's
``schedule`` multiplier scales its wall time. Every other job runs with the profile's
``default-resources`` (the CPU partition). A job that SLURM stops (time limit, node failure) is
resubmitted by Snakemake (``restart-times`` in ``profiles/slurm/config.yaml``) with its wall time
multiplied by the attempt number, and a training job resumes from its checkpoint
(:mod:`kdseg.interrupts`: SIGTERM saves one and exits 143).

The SLURM executor plugin (``snakemake-executor-plugin-slurm``) turns the resources into
``sbatch`` options: ``mem_mb`` -> ``--mem``, ``runtime`` (minutes) -> ``-t``, ``gpu`` ->
``--gpus=N`` (``--gpus=<gpu_model>:N`` with ``gpu_model``), ``gres`` -> ``--gres=...``,
``slurm_partition`` -> ``-p``, ``slurm_account`` -> ``-A``.

The profile ships its account and partitions as :data:`PLACEHOLDER`; :func:`check_profile_settings`
(called when the workflow loads) refuses to run while one is left, naming it. Imports neither
torch nor MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from kdseg.errors import ConfigError

#: the value the SLURM profile ships for the settings a user fills in once
PLACEHOLDER = "FILL_IN"
#: the profile whose settings :func:`check_profile_settings` names in its errors
PROFILE = "profiles/slurm/config.yaml"
#: rules that need a GPU at the paper scale (the others run on the CPU partition)
GPU_RULES: tuple[str, ...] = ("train", "teacher2d", "point_features")
#: resources of a GPU job when the scale gives none (the smoke and default scales: CPU only)
DEFAULT_RESOURCES: dict[str, Any] = {"mem_mb": 4000, "runtime": 30, "gpus": 0}

_HINTS = {
    "slurm_account": "your SLURM account (`sacctmgr -n show assoc user=$USER format=account` "
    'lists yours), or "" on a cluster without accounts',
    "slurm_partition": "a partition name (`sinfo -s` lists them)",
}


def _settings(config: Mapping[str, Any], variant: str | None) -> dict[str, Any]:
    scale = config["scales"][config["scale"]]
    res = {**DEFAULT_RESOURCES, **(scale.get("resources") or {})}
    if variant is not None:
        var = config["variants"][variant]
        own = var.get("resources") or {}
        if "runtime" not in own:  # the scale's wall time, scaled like the schedule
            res["runtime"] = max(1, math.ceil(res["runtime"] * float(var.get("schedule", 1.0))))
        res.update(own)
    return res


def gpu_resource_keys(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The resource names of a GPU job at the active scale: ``mem_mb``, ``runtime`` and either
    ``gres`` (when the scale sets one) or ``gpu`` (plus ``gpu_model`` when set)."""
    res = _settings(config, None)
    if res.get("gres"):
        return ("mem_mb", "runtime", "gres")
    return ("mem_mb", "runtime", "gpu", *(("gpu_model",) if res.get("gpu_model") else ()))


def gpu_resources(
    config: Mapping[str, Any], variant: str | None = None, attempt: int = 1
) -> dict[str, int | str]:
    """Resources of a GPU job (of ``variant``'s training when given) at its ``attempt``.

    ``runtime`` is in minutes and grows with the attempt (``runtime x attempt``), so a job that
    hit its time limit gets longer next time (and resumes from its checkpoint).
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    res = _settings(config, variant)
    values: dict[str, int | str] = {
        "mem_mb": int(res["mem_mb"]),
        "runtime": int(res["runtime"]) * attempt,
        "gres": str(res.get("gres") or ""),
        "gpu": int(res["gpus"]),
        "gpu_model": str(res.get("gpu_model") or ""),
    }
    return {k: values[k] for k in gpu_resource_keys(config)}


def check_profile_settings(
    default_resources: Mapping[str, Any] | None,
    rule_resources: Mapping[str, Mapping[str, Any]] | None,
) -> None:
    """Refuse a profile whose account or partitions are still :data:`PLACEHOLDER`.

    Args:
        default_resources: ``{name: raw value}`` of the profile's ``default-resources``.
        rule_resources: ``{rule: {name: raw value}}`` of its ``set-resources``.

    Raises:
        ConfigError: naming ``default-resources.<name>`` or ``set-resources.<rule>.<name>`` of
            :data:`PROFILE` and what to put there.
    """
    blocks = [("default-resources", default_resources or {})]
    blocks += [(f"set-resources.{rule}", res) for rule, res in (rule_resources or {}).items()]
    for where, resources in blocks:
        for name, value in resources.items():
            if isinstance(value, str) and value.strip("'\"").startswith(PLACEHOLDER):
                hint = _HINTS.get(name, "a value for your cluster")
                raise ConfigError(
                    f"{PROFILE}: {where}.{name}",
                    f"is still {value.strip(chr(39) + chr(34))}: set it once to {hint} "
                    "(docs/cluster.md, step 4)",
                )
