"""The continual 2D DAG end to end at the smoke scale: synthetic VOC data -> per-step index
files -> step chains (each step's model the next step's old model) -> task run folders ->
MLflow -> table 3 and its figure; and an ADE20K path (the ADE20K-layout stand-in, a reduced
study) through the same rules. Runs `snakemake` in a scratch working directory."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
ADE_STUDY = {
    "title": "Continual segmentation on the ADE20K-layout stand-in",
    "dataset": "ade20k",
    "setting": "overlap",
    "tasks": ["100-50", "50-50"],
    "rows": ["ft", "mib", "plop_lgkd", "joint"],
    "seeds": [0],
}


def _snakemake(workdir: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    cmd += ["--cores", "2", *args, "--config", "scale=smoke"]
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("continual")
    (workdir / "config").mkdir()
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["continual_studies"]["ade_smoke"] = ADE_STUDY  # fewer rows and tasks: CI time
    del cfg["continual_studies"]["table3_ade"]
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    _snakemake(workdir, "reports/table3.pdf", "reports/ade_smoke.pdf")
    return workdir


def _record(path: Path) -> dict:
    return json.loads(path.read_text())


def test_table3_lists_every_method_and_task(built):
    cfg = yaml.safe_load((built / "config" / "config.yaml").read_text())
    md = (built / "reports" / "table3.md").read_text()
    for row in cfg["continual_studies"]["table3"]["rows"]:
        assert f"| {cfg['variants'][row]['display']} |" in md, row
    for header in ("15-5 (old 0-15, new 16-20)", "15-1 (old 0-15, new 16-20)", "19-1 (old 0-19"):
        assert header in md, header
    assert "after each step of 15-1" in md  # the per-step table behind the figure
    assert (built / "reports" / "table3.pdf").read_bytes().startswith(b"%PDF")
    assert (built / "reports" / "figures" / "table3_steps.png").stat().st_size > 1000


def test_each_step_starts_from_the_previous_steps_model(built):
    """Step t's old model is step t-1's final model of the same chain (sha256 of model.pt);
    step 1 starts from the shared step-0 run of `ft`; the task folder holds every step's scores
    and the final model."""
    root = built / "results/smoke/continual/voc/overlap"
    base = root / "15-1/ft/seed0/step0"
    for variant in ("mib", "plop_lgkd", "ilt"):
        for task, steps in (("15-5", 2), ("15-1", 6), ("19-1", 2)):
            run = root / task / variant / "seed0"
            task_record = _record(run / "metrics.json")
            assert [s["step"] for s in task_record["continual"]["steps"]] == list(range(steps))
            previous = base if task != "19-1" else root / "19-1/ft/seed0/step0"
            for t in range(1, steps):
                step = run / f"step{t}"
                used = _record(step / "metrics.json")["config"]["inputs"]["old_model"]
                assert Path(used["run"]) == previous.resolve(), (variant, task, t)
                sha = hashlib.sha256((previous / "model.pt").read_bytes()).hexdigest()
                assert used["model_sha256"] == sha
                previous = step
            assert (run / "model.pt").read_bytes() == (previous / "model.pt").read_bytes()
            spec = task_record["network"]
            assert spec["classes_per_step"][0] == (16 if task != "19-1" else 20)
            assert sum(spec["classes_per_step"]) == 21
    joint = _record(root / "offline/joint/seed0/metrics.json")
    assert joint["network"]["classes_per_step"] == [21] and "inputs" not in joint["config"]


def test_every_step_is_tracked_in_mlflow(built):
    from kdseg.tracking.store import current_runs

    uri = f"sqlite:///{built / 'results' / 'mlflow.db'}"
    runs = current_runs(uri, "kdseg/smoke/table3")
    keys = sorted(r.data.tags["kdseg.job_key"] for r in runs)
    marker = _record(built / "results/smoke/tracking/table3.json")
    assert sorted(r["job_key"] for r in marker["runs"]) == keys
    assert "voc/overlap/15-1/mib/seed0/step5" in keys and "voc/overlap/15-1/ft/seed0/step0" in keys
    assert len(keys) == 3 + 7 * 7  # shared step 0 (15-x, 19-1), joint, 7 methods x 7 steps
    assert all(r.info.status == "FINISHED" for r in runs)
    assert all("continual/miou_all" in r.data.metrics for r in runs)


def test_ade20k_path(built):
    """The ADE20K layout and its 151-class label space through the same rules and report."""
    md = (built / "reports" / "ade_smoke.md").read_text()
    assert "100-50 (old 0-100, new 101-150)" in md and "| PLOP+LGKD |" in md
    run = built / "results/smoke/continual/ade20k/overlap/50-50/mib/seed0"
    record = _record(run / "metrics.json")
    assert record["network"]["classes_per_step"] == [51, 50, 50]
    assert len(record["continual"]["steps"]) == 3
    assert max(record["continual"]["channels"]) == 150
    meta = _record(built / "data/synthetic/smoke/ade20k/meta.json")
    assert meta["generator"] == "kdseg.datasets.synthetic_voc.ade"


def test_second_call_runs_nothing(built):
    out = _snakemake(built, "reports/table3.pdf", "reports/ade_smoke.pdf", "-n")
    assert "Nothing to be done" in out, out[-2000:]


def test_lint_and_format_of_the_rules(built):
    """`snakemake --lint` and `snakefmt --check` are clean (every rule, this family's too)."""
    assert "Congratulations, your workflow is in a good condition" in _snakemake(built, "--lint")
    snakefmt = Path(sys.executable).parent / "snakefmt"
    if not snakefmt.exists():
        pytest.skip("snakefmt is not installed")
    cmd = [str(snakefmt), "--check", "Snakefile", "rules"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
