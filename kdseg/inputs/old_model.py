"""``old_model``: the previous continual step's deployed network, as a frozen teacher and as the
starting weights of the next step.

A continual task is a chain of runs: step ``t`` of (task, variant, seed) needs the final model
of step ``t - 1`` of the same chain (its ``metrics.json``, whose ``network`` spec rebuilds the
architecture, and ``model.pt``). Step 0 has no old model. With the setting ``base_variant``,
step 1 starts from the step-0 run of that variant instead of its own (every method trains
step 0 with plain cross-entropy, so the DAG trains it once per seed and shares it; tasks with
the same step-0 classes share it too, :func:`base_job`).

The bound input hands the network to the method (``load_network``; the method's ``prepare``
copies its weights and grows the classifier) and to the Trainer's frozen teacher
(``TeacherSpec("frozen", {"input": "old_model"})``), and records which run it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdseg.errors import ConfigError, DataFormatError
from kdseg.jobs import ContinualJob, continual_dir
from kdseg.options import option
from kdseg.record import RECORD_FILE, RunRecord

from .base import BoundInput, ExampleContext, InputProvider, JobContext, RunContext
from .registry import PROVIDERS

MODEL_FILE = "model.pt"


def base_job(job: ContinualJob, base_variant: str | None) -> ContinualJob:
    """The job that trains step 0 of ``job``'s chain: step 0 of the canonical task with the
    same step-0 classes (:func:`kdseg.datasets.continual.base_task`: VOC 15-5 and 15-1 share
    one) of ``base_variant`` (or of ``job``'s own variant)."""
    from kdseg.datasets.continual import base_task

    task = base_task(job.dataset, job.task)
    return ContinualJob(job.dataset, job.setting, task, base_variant or job.variant, job.seed, 0)


@dataclass(frozen=True)
class OldModelSettings:
    base_variant: str | None = option(
        None,
        "the variant whose step-0 run is the old model of step 1 (all methods train step 0 "
        "with plain CE: one shared run per seed); null = the variant's own step 0",
    )


class BoundOldModel(BoundInput):
    """The previous step's network (``folder`` None at step 0: no old model)."""

    def __init__(
        self,
        name: str,
        folder: Path | None,
        spec: dict[str, Any] | None,
        state: Mapping[str, torch.Tensor] | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        self.folder, self.spec, self._state = folder, spec, state
        self._record: dict[str, Any] = {"run": None if folder is None else str(folder)}
        self._record.update(record or {})

    @property
    def available(self) -> bool:
        """Whether there is an old model (False at step 0)."""
        return self.spec is not None

    def record(self) -> dict[str, Any]:
        return self._record

    def load_network(self) -> nn.Module:
        """A fresh network of the old run's spec with its weights (CPU, eval mode)."""
        from kdseg.continual.segmenter import image_segmenter_from_spec

        if self.spec is None:
            raise ConfigError("inputs.old_model", "step 0 has no old model")
        net = image_segmenter_from_spec(self.spec)
        state = self._state
        path = (self.folder or Path(".")) / MODEL_FILE
        if state is None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise DataFormatError(path, f"not a model state dict ({exc})") from None
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise DataFormatError(path, f"does not fit its network spec ({first})") from None
        return net.eval()


@PROVIDERS.register("old_model")
class OldModel(InputProvider):
    help = "the previous continual step's final network (frozen teacher and starting weights)"
    value_help = "the previous step's finished run folder (metrics.json, model.pt); none at step 0"
    Settings = OldModelSettings

    def rule_inputs(self, ctx: JobContext) -> dict[str, str]:
        job = ctx.job
        if not isinstance(job, ContinualJob) or job.step is None:
            raise ConfigError(
                f"variants.{job.variant}.inputs.old_model",
                "only a step of a continual task has an old model (continual_studies)",
            )
        if job.step == 0:
            return {}
        previous = job.at(job.step - 1)
        if previous.step == 0:
            previous = base_job(previous, ctx.settings.base_variant)
        folder = continual_dir(ctx.scale, previous)
        return {"record": f"{folder}/{RECORD_FILE}", "model": f"{folder}/{MODEL_FILE}"}

    def cli_value(self, paths: Mapping[str, str]) -> str | None:
        return str(Path(paths["record"]).parent) if paths else None

    def example_job(self) -> ContinualJob:
        return ContinualJob("voc", "overlap", "15-1", "v", 1, step=2)

    def bind(self, value: str | None, ctx: RunContext) -> BoundOldModel:
        step = int(getattr(ctx.split, "step", 0))
        if step == 0:
            if value:
                raise ConfigError("inputs.old_model", "step 0 has no old model; drop --input")
            return BoundOldModel(self.name, None, None)
        if not value:
            raise ConfigError(
                "inputs.old_model",
                f"step {step} needs the previous step's run: --input old_model=RUN_DIR",
            )
        folder = Path(value).resolve()
        record = RunRecord.read(folder / RECORD_FILE)
        spec = record.network
        if not isinstance(spec, dict) or spec.get("kind") != "image_continual":
            raise DataFormatError(folder / RECORD_FILE, "is not the record of a continual step")
        model = folder / MODEL_FILE
        if not model.is_file():
            raise DataFormatError(model, "run output does not exist")
        task = getattr(ctx.split, "task", None)
        if task is not None:
            want = [len(s) for s in task.steps[:step]]
            if list(spec.get("classes_per_step", [])) != want:
                raise DataFormatError(
                    folder / RECORD_FILE,
                    f"its network has classes per step {spec.get('classes_per_step')}, step "
                    f"{step} of {task.dataset} {task.name} needs an old model with {want}",
                )
        cont = record.continual or {}
        info = {
            "variant": record.config.get("variant"),
            "task": cont.get("task"),
            "step": cont.get("step"),
            "seed": record.config.get("seed"),
            "miou": record.miou,
            "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        }
        return BoundOldModel(self.name, folder, spec, None, info)

    def example(self, ctx: ExampleContext) -> BoundOldModel:
        net = ctx.make_network()
        spec = net.spec() if hasattr(net, "spec") else None
        return BoundOldModel(self.name, ctx.tmp, spec, net.state_dict(), {"example": True})
