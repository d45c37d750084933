"""Table 3's report: task records -> old / new / all per task (mean ± std over seeds), joint
training scored on each task's classes below the continual rows, reported numbers beside ours,
the per-step figure; LaTeX, PDF (matplotlib) and Markdown show the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kdseg.datasets.continual import get_task
from kdseg.datasets.voc import VOC_CLASSES
from kdseg.errors import DataFormatError
from kdseg.record import RunRecord
from kdseg.report.continual import ContinualStudy, load_task_record, render_continual

STUDY = {
    "name": "t3", "title": "Toy table 3", "dataset": "voc", "setting": "overlap",
    "tasks": ["15-5", "19-1"], "rows": [["ft", "FT"], ["mib", "MiB"], ["joint", "Joint"]],
    "seeds": [0, 1], "scale": "smoke", "figure_task": "15-5",
    "reported": {"mib": [["MiB", "PLOP Table 1"]]}, "reported_dataset": "voc",
}  # fmt: skip


def _task_record(folder: Path, variant: str, task: str, seed: int, iou: dict[int, float]) -> Path:
    """A task record as ``kdseg continual-summary`` writes it (last step's per-class IoU)."""
    t = get_task("voc", task)
    channels = list(t.seen_classes(t.num_steps - 1))
    names = [VOC_CLASSES[c] for c in channels]
    steps = [{"step": s, "variant": "ft" if s == 0 else variant,
              "scores": {"miou_all": 0.1 * (s + 1) + 0.01 * seed}}
             for s in range(t.num_steps)]  # fmt: skip
    config = {"method": variant, "variant": variant, "dataset": "voc", "budget": task,
              "seed": seed, "scale": "smoke", "task": task, "setting": "overlap"}  # fmt: skip
    record = RunRecord(
        miou=float(np.mean([iou[c] for c in channels])), accuracy=None,
        per_class_iou={n: iou[c] for n, c in zip(names, channels, strict=True)},
        confusion_matrix=None, deployed="student", network=None, networks={},
        wall_time_s=1.0, parameters=1, inference_latency_ms=1.0, config=config,
        continual={"task": t.to_dict(), "channels": channels, "class_names": names,
                   "steps": steps, "miou_mean_over_steps": 0.15},
    )  # fmt: skip
    path = folder / variant / task / f"seed{seed}" / "metrics.json"
    record.write(path)
    return path


@pytest.fixture
def records(tmp_path: Path) -> list[Path]:
    paths = []
    for seed in (0, 1):
        base = {c: 0.6 + 0.01 * seed for c in range(16)}
        for task in ("15-5", "19-1"):
            ft = {**base, **{c: 0.2 for c in range(16, 21)}, **{c: 0.1 for c in range(1, 16)}}
            mib = {**base, **{c: 0.3 for c in range(16, 21)}}
            paths.append(_task_record(tmp_path, "ft", task, seed, ft))
            paths.append(_task_record(tmp_path, "mib", task, seed, mib))
        joint = {c: 0.8 for c in range(21)}
        paths.append(_task_record(tmp_path, "joint", "offline", seed, joint))
    return paths


def test_table3_from_task_records(tmp_path, records):
    csv = tmp_path / "reported.csv"
    csv.write_text(
        "setting,dataset,budget_or_task,backbone,method,metric,value,source\n"
        'continual 2D,voc,15-5 overlapped,R101,MiB,"mIoU old (0-15, incl. bg)",76.37,PLOP Table 1\n'
        "continual 2D,voc,15-5 overlapped,R101,MiB,mIoU new (16-20),49.97,PLOP Table 1\n"
        "continual 2D,voc,15-5 overlapped,R101,MiB,mIoU all,70.08,PLOP Table 1\n"
        "continual 2D,voc,15-5 overlapped,R101,MiB,mIoU all,70.0,RCIL README\n"
    )
    study = ContinualStudy.from_dict(STUDY)
    out = tmp_path / "out"
    result = render_continual(
        study, records, tex=out / "t3.tex", pdf=out / "t3.pdf", markdown=out / "t3.md",
        figure_pdf=out / "f.pdf", figure_png=out / "f.png", reported_csv=csv,
        engine="matplotlib",
    )  # fmt: skip
    table = result.table
    assert [r.label for r in table.rows] == ["FT", "MiB", "Joint", "MiB (PLOP Table 1)"]
    assert table.groups == [("15-5 (old 0-15, new 16-20)", 3), ("19-1 (old 0-19, new 20-20)", 3)]
    ft, mib, joint, rep = table.rows
    # FT on 15-5, seed s: old = (bg + 15 x 0.1) / 16 with bg 0.6 + 0.01 s, new 0.2
    olds = [100 * (0.6 + 0.01 * s + 15 * 0.1) / 16 for s in (0, 1)]
    assert ft.cells[0].mean == pytest.approx(np.mean(olds))
    assert ft.cells[0].std == pytest.approx(np.std(olds, ddof=1))
    assert ft.cells[1].mean == pytest.approx(20.0) and ft.cells[1].n == 2
    assert mib.cells[0].mark == "best" and ft.cells[0].mark == "second"
    # joint: scored on each task's classes from its one offline run, outside the marks
    assert joint.cells[0].mean == pytest.approx(80.0) and joint.cells[0].mark is None
    assert joint.cells[4].mean == pytest.approx(80.0)  # 19-1 "new" = class 20
    assert [c.mean for c in rep.cells[:3]] == [76.37, 49.97, 70.08]  # RCIL's row not asked for
    assert rep.cells[3].mean is None and rep.reported
    md = (out / "t3.md").read_text()
    assert "15-5 (old 0-15, new 16-20) old" in md and "| MiB (PLOP Table 1) (reported)" in md
    tex = (out / "t3.tex").read_text()
    assert r"\multicolumn{3}{c}{19-1 (old 0-19, new 20-20)}" in tex and r"\cmidrule(lr){5-7}" in tex
    assert (out / "t3.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "f.png").stat().st_size > 1000
    steps = result.steps
    assert steps.columns == ["step 0", "step 1", "mean"]
    assert steps.rows[0].cells[0].mean == pytest.approx(100 * np.mean([0.1, 0.11]))
    assert [c.mean for c in steps.rows[2].cells] == pytest.approx([80.0, 80.0, 80.0])  # joint
    assert "Step 0 is one cross-entropy run per seed (FT's;" in table.caption


def test_missing_runs_and_wrong_records(tmp_path, records):
    study = ContinualStudy.from_dict(STUDY)
    from kdseg.report.continual import build_table

    runs = [load_task_record(p, study) for p in records if "seed1" not in str(p)]
    table = build_table(study, runs)
    assert table.rows[0].cells[0].partial and "FT 15-5 (seed 1)" in table.missing
    other = json.loads(records[0].read_text())
    other["config"]["dataset"] = "ade20k"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(other))
    with pytest.raises(DataFormatError, match="dataset 'ade20k' is not the study's 'voc'"):
        load_task_record(bad, study)
    lidar = json.loads(records[0].read_text())
    lidar["continual"] = None
    bad.write_text(json.dumps(lidar))
    with pytest.raises(DataFormatError, match="not a continual task record"):
        load_task_record(bad, study)
