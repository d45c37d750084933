"""``teacher_checkpoint``: the deployed network of another run, for a frozen teacher.

The value is a run folder: its ``metrics.json`` (run record: the ``network`` spec that rebuilds
the architecture) and ``model.pt`` (the weights). In the workflow, a variant names the teacher's
run by variant (and optionally budget and seed; by default the student's own):

```yaml
variants:
  kd:
    method: logit_kd
    inputs: {teacher_checkpoint: {variant: sup_only_full, budget: full}}
```

so the student's training job waits for that run (another node of the DAG) and reruns when it
changes. This is the route of M2SKD's multi-scan teacher and of LGKD's old model (the previous
continual step's run).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kdseg.errors import DataFormatError
from kdseg.jobs import Job, run_dir
from kdseg.options import option
from kdseg.record import RECORD_FILE, RunRecord

from .base import BoundInput, ExampleContext, InputProvider, JobContext, RunContext
from .registry import PROVIDERS

MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class TeacherRunSettings:
    variant: str = option(help="the variant whose run is the teacher (another config entry)")
    budget: str | None = option(None, "the teacher run's label budget; null = the student's")
    seed: int | None = option(None, "the teacher run's seed; null = the student's")


class BoundTeacherCheckpoint(BoundInput):
    """A run's deployed network, loaded on demand (:meth:`load_network`)."""

    def __init__(
        self, name: str, folder: Path, spec: dict[str, Any], state: dict[str, Any] | None = None
    ) -> None:
        super().__init__(name)
        self.folder = folder
        self.spec = spec
        self._state = state
        self._record: dict[str, Any] = {"run": str(folder), "network": spec}

    def record(self) -> dict[str, Any]:
        return self._record

    def load_network(self) -> nn.Module:
        """A fresh network of the run's spec with its weights (CPU, eval mode)."""
        from kdseg.segmenter import build_segmenter

        net = build_segmenter(**self.spec)
        state = self._state
        if state is None:
            path = self.folder / MODEL_FILE
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise DataFormatError(path, f"not a model state dict ({exc})") from None
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise DataFormatError(
                self.folder / MODEL_FILE, f"does not fit its network spec ({first})"
            ) from None
        return net.eval()


@PROVIDERS.register("teacher_checkpoint")
class TeacherCheckpoint(InputProvider):
    help = "the deployed network of another run (metrics.json network spec + model.pt)"
    value_help = "a finished run folder (holding metrics.json and model.pt)"
    Settings = TeacherRunSettings

    def rule_inputs(self, ctx: JobContext) -> dict[str, str]:
        s: TeacherRunSettings = ctx.settings
        job = ctx.job
        teacher = Job(
            job.dataset,
            s.variant,
            s.budget if s.budget is not None else job.budget,
            s.seed if s.seed is not None else job.seed,
        )
        folder = run_dir(ctx.scale, teacher)
        return {"record": f"{folder}/{RECORD_FILE}", "model": f"{folder}/{MODEL_FILE}"}

    def cli_value(self, paths: Mapping[str, str]) -> str | None:
        return str(Path(paths["record"]).parent)

    def bind(self, value: str | None, ctx: RunContext) -> BoundTeacherCheckpoint:
        folder = Path(self.need_value(value)).resolve()
        record = RunRecord.read(folder / RECORD_FILE)
        if not isinstance(record.network, dict):
            raise DataFormatError(
                folder / RECORD_FILE, "has no 'network' spec (written by an older kdseg: rerun)"
            )
        model = folder / MODEL_FILE
        if not model.is_file():
            raise DataFormatError(model, "run output does not exist")
        bound = BoundTeacherCheckpoint(self.name, folder, record.network)
        bound.record().update(
            {
                "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
                "variant": record.config.get("variant"),
                "budget": record.config.get("budget"),
                "seed": record.config.get("seed"),
                "miou": record.miou,
            }
        )
        return bound

    def example(self, ctx: ExampleContext) -> BoundTeacherCheckpoint:
        net = ctx.make_network()
        return BoundTeacherCheckpoint(self.name, ctx.tmp, net.spec(), net.state_dict())
