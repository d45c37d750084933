"""Inputs as plug-ins: what a method needs beyond the clouds (see :mod:`kdseg.inputs.base`).

Built-in providers (``kdseg providers`` lists them):

* ``features_2d`` (:mod:`~kdseg.inputs.features_2d`): the 2D teacher's per-point features;
* ``mix_partners`` (:mod:`~kdseg.inputs.mix_partners`): another scan per cloud (FOVMix);
* ``teacher_checkpoint`` (:mod:`~kdseg.inputs.teacher_checkpoint`): another run's deployed
  network, for a frozen teacher.

:func:`bind_inputs` opens a run's inputs; :func:`job_inputs` and :func:`cli_args` are the
workflow's side (``rules/common.smk``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kdseg.errors import ConfigError

from .base import (
    BatchSampler,
    BoundInput,
    ExampleContext,
    InputProvider,
    JobContext,
    NoSettings,
    RunContext,
)
from .registry import PROVIDERS

__all__ = [
    "PROVIDERS",
    "BatchSampler",
    "BoundInput",
    "ExampleContext",
    "InputProvider",
    "JobContext",
    "NoSettings",
    "RunContext",
    "bind_inputs",
    "cli_args",
    "job_inputs",
    "provider",
]


def provider(name: str) -> InputProvider:
    """An instance of the registered provider ``name`` (``ConfigError`` listing the known)."""
    return PROVIDERS.get(name)()


def bind_inputs(
    names: Iterable[str], values: Mapping[str, str | None], ctx: RunContext
) -> dict[str, BoundInput]:
    """Open the inputs ``names`` (sorted, so extras attach in a fixed order) with their
    ``--input`` values; values for inputs not named are ignored (a method that does not need
    an input does not load it)."""
    return {name: provider(name).bind(values.get(name), ctx) for name in sorted(names)}


def job_inputs(
    config: Mapping[str, Any], scale: str, job: Any, names: Iterable[str], settings: Mapping
) -> dict[str, dict[str, str]]:
    """``{provider: {key: path}}`` of the rule outputs a training job needs."""
    out = {}
    for name in sorted(names):
        p = provider(name)
        where = f"variants.{job.variant}.inputs.{name}"
        ctx = JobContext(config, scale, job, p.settings(settings.get(name), where))
        out[name] = p.rule_inputs(ctx)
    return out


def cli_args(paths: Mapping[str, Mapping[str, str]]) -> list[str]:
    """``["--input", "name=value", ...]`` for :func:`job_inputs`' paths."""
    args: list[str] = []
    for name, files in sorted(paths.items()):
        value = provider(name).cli_value(files)
        if value is not None:
            args += ["--input", f"{name}={value}"]
    return args


def check_settings(variant: str, names: Iterable[str], settings: Any) -> None:
    """``variants.<variant>.inputs``: a mapping of required inputs to valid settings."""
    where = f"variants.{variant}.inputs"
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ConfigError(where, "must be a mapping {input: settings}")
    needed = set(names)
    for name in settings:
        if name not in needed:
            raise ConfigError(
                f"{where}.{name}", f"the method does not require it ({sorted(needed)})"
            )
    for name in sorted(needed):
        provider(name).settings(settings.get(name), f"{where}.{name}")
