"""The run folder of a continual task x variant x seed, from its steps' folders.

:func:`summarise_task` writes ``metrics.json`` (the task record: the last step's run record,
:class:`kdseg.record.RunRecord`, whose ``continual`` block also lists every step's scores and
their mean over steps) and ``model.pt`` (a copy of the last step's, the final model). It reads
files only (no torch), so the workflow's summary jobs are cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdseg.datasets.continual_metrics import mean_over_steps
from kdseg.errors import ConfigError, DataFormatError
from kdseg.io import write_bytes
from kdseg.record import RECORD_FILE, RunRecord

MODEL_FILE = "model.pt"


def summarise_task(step_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Any]:
    """Write the task record ``out_dir/metrics.json`` and the final ``out_dir/model.pt`` from
    the folders of steps ``0..T-1`` (in order; step 0 may be a shared base run of another
    variant). Returns the record."""
    records = [RunRecord.read(Path(d) / RECORD_FILE) for d in step_dirs]
    if not records:
        raise ConfigError("steps", "a task record needs at least one step")
    last = records[-1]
    cont = last.continual
    if cont is None:
        raise DataFormatError(Path(step_dirs[-1]) / RECORD_FILE, "not a continual step record")
    steps = cont["task"]["steps"]
    if len(records) != len(steps):
        raise ConfigError("steps", f"task {cont['task']['name']} has {len(steps)} steps, "
                          f"got {len(records)} step folders")  # fmt: skip
    per_step = []
    for t, (folder, rec) in enumerate(zip(step_dirs, records, strict=True)):
        c = rec.continual or {}
        path = Path(folder) / RECORD_FILE
        if c.get("step") != t or c.get("task", {}).get("steps", [])[: t + 1] != steps[: t + 1]:
            raise DataFormatError(path, f"is not step {t} of task {cont['task']['name']}")
        if rec.config.get("seed") != last.config.get("seed"):
            seed = rec.config.get("seed")
            raise DataFormatError(path, f"seed {seed} differs from the last step's")
        per_step.append({
            "step": t, "run": str(folder), "variant": rec.config.get("variant"),
            "task": c["task"]["name"], "scores": c["scores"], "miou": rec.miou,
            "per_class_iou": rec.per_class_iou, "wall_time_s": rec.wall_time_s,
        })  # fmt: skip
    out = Path(out_dir)
    summary = dataclasses.replace(
        last,
        wall_time_s=sum(r.wall_time_s or 0.0 for r in records),
        config={**last.config, "step": None, "steps_trained": len(records)},
        continual={
            **cont,
            "steps": per_step,
            "miou_mean_over_steps": mean_over_steps([s["scores"]["miou_all"] for s in per_step]),
        },
    )
    model = Path(step_dirs[-1]) / MODEL_FILE
    if not model.is_file():
        raise DataFormatError(model, "run output does not exist")
    write_bytes(out / MODEL_FILE, model.read_bytes())
    summary.write(out / RECORD_FILE)
    return summary.to_dict()
