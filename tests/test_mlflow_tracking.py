"""MLflow tracker: round trip, parallel writers on SQLite, reruns, missing experiments, retries.

Every test gets its own SQLite store under ``tmp_path``. Creating MLflow's tables takes several
seconds here, so one empty store is made per session and copied; experiments are then created in
the copy by :func:`init_store`, as the workflow does.
"""

from __future__ import annotations

import multiprocessing
import random
import shutil
import sqlite3
import string
import sys
import traceback
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_metric_name, _validate_param_name
from PIL import Image

from kdseg.io import write_json
from kdseg.record import Environment, RunRecord
from kdseg.report.run_figures import confusion_figure, default_class_names, run_figures
from kdseg.tracking.jsonl import ATTEMPT_TAG, JsonlTracker
from kdseg.tracking.mlflow import snakemake_tags, tracker_for_job
from kdseg.tracking.store import (
    CURRENT_TAG,
    SUPERSEDED_BY_TAG,
    ExperimentNotFoundError,
    StoreNotInitialisedError,
    config_hash,
    current_runs,
    init_store,
    resolve_tracking_uri,
    retry_on_lock,
    sanitize_key,
)
from kdseg.tracking.sync import DIGEST_TAG, track_runs

CLASSES = ["car", "road", "on-rails"]
STEPS = 20


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its tables and no experiment of ours."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    assert init_store(f"sqlite:///{path}", []) == {}
    return path


@pytest.fixture
def uri(tmp_path: Path, empty_db: Path) -> str:
    """A fresh store for one test (a copy of the empty template)."""
    db = tmp_path / "results" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(empty_db, db)
    return f"sqlite:///{db}"


CONFIG = {
    "method": "sup_only",
    "variant": "sup",
    "dataset": "street",
    "budget": "full",
    "seed": 3,
    "scale": "smoke",
    "trainer": {"iterations": STEPS, "lr": 0.01},
}
ENV = Environment("node7", "4242", "2.14.1", 1, "cpu", "0.1.0", None, "3.11.9")


def _figures(source, folder: Path) -> list[Path]:
    return run_figures(source.record, folder) if source.record is not None else []


def _write_run(run_dir: Path, miou: float = 0.5, status: str = "FINISHED") -> None:
    """A run folder as `kdseg train` leaves it: log, run_config.json and (unless the run was
    stopped) its record with the attempt id of the log."""
    log = JsonlTracker(run_dir / "train_log.jsonl")
    log.set_tags({ATTEMPT_TAG: "a1", **ENV.tags()})
    log.log_params({"trainer.lr": "0.01"})
    for step in range(1, STEPS + 1):
        log.log_metrics({"loss/total": 1.0 / step, "lr": 0.01, "bad:name?": step}, step=step)
    write_json(run_dir / "run_config.json", CONFIG)
    if status != "FINISHED":
        log.finish(status)
        return
    log.log_metrics({"eval/miou": miou}, step=STEPS)  # the Trainer's; the record has it too
    RunRecord(
        miou=miou,
        accuracy=0.8,
        per_class_iou={"car": 0.25, "road": 0.75, "on-rails": 0.5},
        confusion_matrix=[[5, 1, 0], [2, 8, 0], [0, 0, 0]],
        deployed="student",
        network={"backbone": "minkunet_tiny"},
        networks={"student": {"miou": miou, "accuracy": 0.8, "per_class_iou": {}}},
        wall_time_s=12.5,
        parameters=1234,
        inference_latency_ms=3.5,
        config=CONFIG,
        parity={"parameters_ratio": 1.0, "latency_ratio": 1.1},
        environment=ENV,
        attempt="a1",
    ).write(run_dir / "metrics.json")
    log.finish("FINISHED")


def test_round_trip(uri: str, tmp_path: Path) -> None:
    """The tracking job logs a run folder: config params, loss curves at their steps, every
    final value once, environment tags (SLURM job id), artifacts with the report's figure."""
    run_dir = tmp_path / "run"
    _write_run(run_dir)
    tags = {"rule": "train", **snakemake_tags("train", {"dataset": "street", "seed": 3})}
    (result,) = track_runs([(run_dir, None, tags)], "study1", uri, _figures)
    assert result.action == "logged" and result.job_key == "street/sup/full/seed3"

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == init_store(uri, ["study1"])["study1"]
    params = run.data.params
    assert params["config.method"] == "sup_only" and params["config.trainer.lr"] == "0.01"
    assert not [k for k in params if k.startswith("trainer.")]  # each value once: config.*
    history = client.get_metric_history(result.run_id, "loss/total")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(1, STEPS + 1))
    assert len(client.get_metric_history(result.run_id, "bad_name_")) == STEPS
    metrics = run.data.metrics
    assert metrics["iou/car"] == 0.25 and metrics["miou"] == 0.5 and metrics["student/miou"] == 0.5
    assert metrics["inference_latency_ms"] == 3.5 and metrics["parity/latency_ratio"] == 1.1
    assert "eval/miou" not in metrics  # the record's miou is logged once
    assert [m.step for m in client.get_metric_history(result.run_id, "miou")] == [STEPS]
    t = run.data.tags
    assert t["kdseg.job_key"] == "street/sup/full/seed3" and t[CURRENT_TAG] == "true"
    assert t["kdseg.config_hash"] == config_hash(CONFIG) and t[ATTEMPT_TAG] == "a1"
    assert t["kdseg.slurm_job_id"] == "4242" and t["kdseg.hostname"] == "node7"
    assert t["rule"] == "train" and t["kdseg.schema_version"] == "2"
    assert t["snakemake.rule"] == "train" and t["snakemake.wildcards.seed"] == "3"
    assert "kdseg.git_commit" not in t  # the environment had none
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert names == {"metrics.json", "train_log.jsonl", "run_config.json", "confusion_matrix.png"}
    local = Path(client.download_artifacts(result.run_id, "confusion_matrix.png", str(tmp_path)))
    with Image.open(local) as img:
        assert img.format == "PNG" and min(img.size) > 100
    # artifacts live next to the database, not in ./mlruns of the working directory
    assert run.info.artifact_uri.startswith((tmp_path / "results" / "mlartifacts").as_uri())


def test_tracking_is_idempotent_and_logs_changes_and_stopped_runs(uri: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _write_run(a)
    _write_run(b, status="KILLED")  # SIGTERM before the end: no record of this attempt
    first = track_runs([(a, "job/a", {}), (b, "job/b", {})], "study1", uri)
    assert [(r.action, r.status) for r in first] == [("logged", "FINISHED"), ("logged", "KILLED")]
    again = track_runs([(a, "job/a", {}), (b, "job/b", {})], "study1", uri)
    assert [r.action for r in again] == ["unchanged", "unchanged"]
    assert [r.run_id for r in again] == [r.run_id for r in first]
    client = MlflowClient(tracking_uri=uri)
    killed = client.get_run(first[1].run_id)
    assert killed.info.status == "KILLED" and "miou" not in killed.data.metrics
    assert len(client.get_metric_history(killed.info.run_id, "loss/total")) == STEPS

    _write_run(b)  # the attempt resumed and finished: logged again, the KILLED one superseded
    (resumed,) = track_runs([(b, "job/b", {})], "study1", uri)
    assert resumed.action == "logged" and resumed.status == "FINISHED"
    old = client.get_run(first[1].run_id)
    assert old.data.tags[CURRENT_TAG] == "false"
    assert old.data.tags[SUPERSEDED_BY_TAG] == resumed.run_id
    current = {r.data.tags["kdseg.job_key"]: r for r in current_runs(uri, "study1")}
    assert set(current) == {"job/a", "job/b"}
    assert current["job/b"].data.tags[DIGEST_TAG] != old.data.tags[DIGEST_TAG]


def _worker(uri: str, experiment: str, job_key: str, barrier: multiprocessing.Barrier) -> None:
    """One training job of the parallel test: params, STEPS step metrics, final metrics."""
    try:
        barrier.wait(timeout=120)
        tracker = tracker_for_job(experiment, job_key, {"rule": "train"}, tracking_uri=uri)
        tracker.log_params({"trainer": {"lr": 0.01, "iterations": STEPS}, "job": job_key})
        for step in range(1, STEPS + 1):
            tracker.log_metrics({"loss/total": 1.0 / step, "lr": 0.01, "grad_norm": step}, step)
        tracker.log_metrics({"miou": 0.5, **{f"iou/{c}": 0.5 for c in CLASSES}}, step=STEPS)
        tracker.finish()
    except BaseException:
        traceback.print_exc()
        sys.exit(1)


def test_parallel_writers(uri: str) -> None:
    experiments = ["study-a", "study-b"]
    ids = init_store(uri, experiments)
    n = 8
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    jobs = {f"job{i}": experiments[i % 2] for i in range(n)}
    procs = [ctx.Process(target=_worker, args=(uri, e, k, barrier)) for k, e in jobs.items()]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=180)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    assert [p.exitcode for p in procs] == [0] * n

    client = MlflowClient(tracking_uri=uri)
    assert client.search_runs(["0"]) == []  # nothing fell into "Default"
    found = {}
    for name, exp in ids.items():
        for run in client.search_runs([exp]):
            found[run.data.tags["kdseg.job_key"]] = (name, run)
    assert {k: v[0] for k, v in found.items()} == jobs
    for _, run in found.values():
        assert run.info.status == "FINISHED"
        assert run.data.params["trainer.iterations"] == str(STEPS)
        assert run.data.metrics["miou"] == 0.5 and run.data.metrics["iou/on-rails"] == 0.5
        for key in ("loss/total", "lr", "grad_norm"):
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(1, STEPS + 1)), key
    assert sum(len(current_runs(uri, e)) for e in experiments) == n


def test_rerun_supersedes(uri: str) -> None:
    init_store(uri, ["study1"])
    first = tracker_for_job("study1", "job/a", {}, tracking_uri=uri)
    first.finish("FAILED")
    other = tracker_for_job("study1", "job/b", {}, tracking_uri=uri)
    other.finish()
    second = tracker_for_job("study1", "job/a", {}, tracking_uri=uri)
    # an earlier attempt must never supersede a later one (two attempts starting at once)
    assert first.supersede_earlier("job/a") == []
    second.finish()

    current = {r.info.run_id for r in current_runs(uri, "study1")}
    assert current == {second.run_id, other.run_id}
    client = MlflowClient(tracking_uri=uri)
    old = client.get_run(first.run_id)
    assert old.data.tags[CURRENT_TAG] == "false"
    assert old.data.tags[SUPERSEDED_BY_TAG] == second.run_id
    assert old.info.status == "FAILED"  # history is kept
    assert SUPERSEDED_BY_TAG not in client.get_run(other.run_id).data.tags


def test_missing_experiment_and_store(uri: str, tmp_path: Path) -> None:
    init_store(uri, ["study1"])
    with pytest.raises(ExperimentNotFoundError, match=r"'study2'.*kdseg mlflow-init --uri"):
        tracker_for_job("study2", "job", {}, tracking_uri=uri)
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(StoreNotInitialisedError, match="kdseg mlflow-init --uri sqlite:///"):
        tracker_for_job("study1", "job", {}, tracking_uri=f"sqlite:///{missing}")
    assert not missing.exists()  # a job never creates the database itself


def test_init_store_is_idempotent(uri: str) -> None:
    first = init_store(uri, ["a", "b"])
    second = init_store(uri, ["b", "a", "c"])
    assert second["a"] == first["a"] and second["b"] == first["b"]
    assert len(set(second.values())) == 3
    assert init_store(uri, ["c"]) == {"c": second["c"]}


def test_confusion_figure_checks_names(tmp_path: Path) -> None:
    """The report layer draws the figure (the training process never imports matplotlib)."""
    with pytest.raises(ValueError, match="class names"):
        confusion_figure([[1, 0], [0, 1]], ["only one"], tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()
    assert default_class_names({}, 19)[0] == "car"
    assert default_class_names({"class_names": ["x", "y"]}, 2) == ["x", "y"]


def test_retry_on_lock_retries_then_gives_up() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert retry_on_lock(flaky, attempts=5, sleep=sleeps.append) == "ok"
    assert calls["n"] == 3 and len(sleeps) == 2

    def locked() -> None:
        calls["n"] += 1
        raise MlflowException("(sqlite3.OperationalError) database is locked")

    calls["n"], sleeps[:] = 0, []
    with pytest.raises(MlflowException, match="locked"):
        retry_on_lock(locked, attempts=4, base_delay_s=0.1, max_delay_s=0.3, sleep=sleeps.append)
    assert calls["n"] == 4 and len(sleeps) == 3 and all(0.05 <= s <= 0.3 for s in sleeps)

    def broken() -> None:
        calls["n"] += 1
        raise ValueError("not a lock")

    calls["n"] = 0
    with pytest.raises(ValueError):
        retry_on_lock(broken, attempts=4, sleep=sleeps.append)
    assert calls["n"] == 1


def test_sanitize_key_gives_names_mlflow_accepts() -> None:
    assert sanitize_key("loss/total") == "loss/total"
    assert sanitize_key("iou/on-rails") == "iou/on-rails"
    assert sanitize_key("a:b?") == "a_b_"
    rng = random.Random(0)
    alphabet = string.ascii_letters + "/.:-_ ?é*" + "//.."
    for _ in range(500):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        key = sanitize_key(name)
        _validate_metric_name(key)
        _validate_param_name(key)
        assert 0 < len(key) <= 250


def test_resolve_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/results/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert resolve_tracking_uri() == "http://mlflow.example:5000"
    assert resolve_tracking_uri("sqlite:///x/m.db") == f"sqlite:///{tmp_path.resolve()}/x/m.db"
