"""The smoke-scale DAG end to end: data -> splits -> runs -> tracking (MLflow) -> PDF, then
caching, reruns, and a method from outside the repository.

Runs `snakemake` in a scratch working directory (the repository's Snakefile and a copy of its
config), so nothing is written into the checkout. A few minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

pytestmark = pytest.mark.slow


def _snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    cmd = [
        *SNAKEMAKE,
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--cores",
        "2",
        *args,
        "--config",  # last: it takes every following word
        "scale=smoke",
    ]
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout + out.stderr


def _config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", workdir / "config" / "config.yaml")
    _snakemake(workdir, "reports/table1.pdf")
    return workdir


def test_table1_pdf_lists_every_row_and_column(built):
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    text = subprocess.run(
        ["pdftotext", str(built / "reports" / "table1.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cfg = _config(built)
    study = cfg["studies"]["table1"]
    for variant in study["rows"]:
        assert cfg["variants"][variant]["display"] in text, variant
    for header in ("Scribbles", "1%", "10%", "20%", "50%", "Full"):
        assert header in text, header
    assert (built / "reports" / "table1.tex").is_file()
    assert (built / "reports" / "figures" / "table1_budget_curve.png").is_file()
    assert "Inference parity with Sup-only" in " ".join(text.split())  # the parity footnote


def test_ignet_runs_train_with_the_teacher_features(built):
    import json

    teacher = json.loads((built / "results/smoke/teacher2d/street/metrics.json").read_text())
    manifest = json.loads(
        (built / "results/smoke/teacher2d/street/features/manifest.json").read_text()
    )
    assert teacher["teacher_sha256"] == manifest["teacher_sha256"]
    run = built / "results/smoke/runs/street/ignet/scribbles/seed0/metrics.json"
    metrics = json.loads(run.read_text())
    assert (
        metrics["config"]["inputs"]["features_2d"]["teacher_sha256"] == (manifest["teacher_sha256"])
    )
    assert metrics["parity"]["parameters_ratio"] == 1.0


def test_every_run_is_tracked_once_in_mlflow(built):
    """The study's tracking job (not the training jobs) logged every run once, with its
    losses, final metrics, environment tags and artifacts; its marker lists them."""
    from mlflow import MlflowClient

    from kdseg.tracking.store import current_runs

    uri = f"sqlite:///{built / 'results' / 'mlflow.db'}"
    runs = current_runs(uri, "kdseg/smoke/table1")
    keys = sorted(r.data.tags["kdseg.job_key"] for r in runs)
    assert len(keys) == 4 * 6 and len(set(keys)) == len(keys)
    assert all("miou" in r.data.metrics and "iou/car" in r.data.metrics for r in runs)
    assert all(r.info.status == "FINISHED" and r.data.tags["rule"] == "train" for r in runs)
    assert all(r.data.tags["kdseg.hostname"] and r.data.tags["kdseg.attempt"] for r in runs)
    client = MlflowClient(uri)
    one = runs[0].info.run_id
    assert len(client.get_metric_history(one, "loss/total")) == 3  # smoke: 3 iterations
    artifacts = {a.path for a in client.list_artifacts(one)}
    assert {"metrics.json", "train_log.jsonl", "confusion_matrix.png"} <= artifacts
    marker = json.loads((built / "results/smoke/tracking/table1.json").read_text())
    assert sorted(r["job_key"] for r in marker["runs"]) == keys
    assert not list(built.glob("results/smoke/runs/**/confusion_matrix.png"))  # not in a run


def test_second_call_runs_nothing(built):
    out = _snakemake(built, "reports/table1.pdf", "-n")
    assert "Nothing to be done" in out, out[-2000:]


def test_changing_one_variant_reruns_only_its_jobs(built):
    cfg = _config(built)
    cfg["variants"]["lasermix"]["options"] = {"mix_weight": 2.0}
    changed = built / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))  # study order decides experiments
    out = _snakemake(built, "reports/table1.pdf", "-n", "--configfile", str(changed))
    train_jobs = re.findall(r"runs/street/(\w+)/[\w.-]+/seed\d+/metrics\.json \(", out)
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert stats.get("train") == "6", out[-3000:]
    assert "generate_street" not in stats and "split" not in stats
    assert set(re.findall(r"--variant (\w+)", out)) == {"lasermix"}, train_jobs


def test_html_report(built):
    _snakemake(built, "--report", "reports/report.html", "reports/table1.pdf")
    html = (built / "reports" / "report.html").read_text(errors="replace")
    assert "table1.pdf" in html and "table1_budget_curve.png" in html


def _digests(root: Path, skip: tuple[str, ...]) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not str(p.relative_to(root)).startswith(skip)
    }


def _current_run(built: Path, job_key: str):
    from kdseg.tracking.store import current_runs

    uri = f"sqlite:///{built / 'results' / 'mlflow.db'}"
    (run,) = [
        r
        for r in current_runs(uri, "kdseg/smoke/table1")
        if r.data.tags["kdseg.job_key"] == job_key
    ]
    return run, uri


def _loss_steps(run_dir: Path) -> list[int]:
    from kdseg.tracking import read_jsonl

    log = read_jsonl(run_dir / "train_log.jsonl")
    return [r["step"] for r in log if "loss/total" in r.get("metrics", {})]


def test_changed_variant_reruns_for_real_and_nothing_else_changes(built):
    """Change one variant's option and rerun (not a dry run): each of its runs trains to the
    end under the new options; every other file of the data and the other runs is unchanged."""
    skip = ("results/smoke/runs/street/lasermix/", "results/mlflow", "results/mlartifacts")
    skip += ("results/smoke/tracking/",)
    skip += ("reports/", "logs/", ".snakemake/", "changed.yaml")
    before = _digests(built, skip)
    cfg = _config(built)
    cfg["variants"]["lasermix"]["options"] = {"mix_weight": 2.0}
    changed = built / "changed.yaml"
    changed.write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = _snakemake(built, "reports/table1.pdf", "--configfile", str(changed))
    assert re.search(r"^train\s+6$", out, flags=re.M), out[-3000:]
    assert _digests(built, skip) == before
    runs = sorted((built / "results/smoke/runs/street/lasermix").glob("*/seed0"))
    assert len(runs) == 6
    for run_dir in runs:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["config"]["options"]["mix_weight"] == 2.0, run_dir
        assert _loss_steps(run_dir) == [1, 2, 3], run_dir  # trained anew, log of this run only
        assert not (run_dir / "checkpoint_last.pt").exists()
        run, _ = _current_run(built, f"street/lasermix/{run_dir.parent.name}/seed0")
        assert run.info.status == "FINISHED"
    out = _snakemake(built, "reports/table1.pdf", "-n", "--configfile", str(changed))
    assert "Nothing to be done" in out, out[-2000:]


def test_forcerun_retrains_and_logs_a_loss_curve(built):
    """`--forcerun` of a finished run trains again from scratch (no resume of the final
    checkpoint); the next tracking job (here: asking for the table again) logs it as a new
    current MLflow run with the whole loss curve, one training's log, and only that run."""
    from mlflow import MlflowClient

    run_dir = built / "results/smoke/runs/street/sup_only/full/seed0"
    key = "street/sup_only/full/seed0"
    old, uri = _current_run(built, key)
    _snakemake(built, str(run_dir.relative_to(built) / "metrics.json"), "--forcerun", "train")
    assert _current_run(built, key)[0].info.run_id == old.info.run_id  # MLflow not yet told
    marker = "results/smoke/tracking/table1.json"  # (mtime only: an earlier test's config)
    _snakemake(built, marker, "--rerun-triggers", "mtime")
    logged = json.loads((built / marker).read_text())["runs"]
    assert [r["job_key"] for r in logged if r["action"] == "logged"] == [key]
    new, _ = _current_run(built, key)
    assert new.info.run_id != old.info.run_id and new.info.status == "FINISHED"
    history = MlflowClient(uri).get_metric_history(new.info.run_id, "loss/total")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert _loss_steps(run_dir) == [1, 2, 3]
    assert not (run_dir / "checkpoint_last.pt").exists()


def test_a_method_from_outside_the_repository(built, tmp_path_factory):
    """A throw-away package holding one method file (docs/methods.md's example: logit
    distillation from a frozen teacher, another variant's run), named `module:Class` by a
    variant added to a copy of the config: the smoke DAG trains it after its teacher run and
    renders a table that lists it."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "my_kd").mkdir()
    (outside / "my_kd" / "__init__.py").write_text("")
    shutil.copy(REPO / "tests" / "kd_method.py", outside / "my_kd" / "kd.py")
    cfg = _config(built)
    teacher = {"teacher_checkpoint": {"variant": "sup_only", "budget": "full"}}
    cfg["variants"]["my_kd"] = {
        "method": "my_kd.kd:LogitKD",
        "display": "Logit KD",
        "inputs": teacher,
    }
    cfg["studies"]["outside"] = {
        "title": "A method from outside (mIoU, %)",
        "dataset": "street",
        "rows": ["sup_only", "my_kd"],
        "budgets": ["scans-10", "full"],
        "seeds": [0],
    }
    extended = built / "outside.yaml"
    extended.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(outside)}
    out = _snakemake(built, "reports/outside.pdf", "--configfile", str(extended), env=env)
    assert re.search(r"^train\s+2$", out, flags=re.M), out[-3000:]  # sup_only runs existed
    table = (built / "reports" / "outside.md").read_text()
    assert "Logit KD" in table and "Sup.-only" in table
    run = json.loads(
        (built / "results/smoke/runs/street/my_kd/scans-10/seed0/metrics.json").read_text()
    )
    assert run["config"]["method"] == "my_kd.kd:LogitKD"
    used = run["config"]["inputs"]["teacher_checkpoint"]
    assert used["variant"] == "sup_only" and used["budget"] == "full"
    assert set(run["networks"]) == {"student"}  # a frozen teacher is not re-evaluated
    from kdseg.tracking.store import current_runs

    uri = f"sqlite:///{built / 'results' / 'mlflow.db'}"
    keys = sorted(r.data.tags["kdseg.job_key"] for r in current_runs(uri, "kdseg/smoke/outside"))
    assert keys == sorted(
        f"street/{v}/{b}/seed0" for v in ("sup_only", "my_kd") for b in ("full", "scans-10")
    )
