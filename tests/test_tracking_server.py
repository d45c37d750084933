"""A shared MLflow tracking server, as on a cluster (issue 15, item 2).

Starts ``mlflow server`` on localhost with a SQLite backend and a served artifact root, points
the smoke DAG at it with ``MLFLOW_TRACKING_URI`` (parallel jobs), and finds every run, metric and
artifact. Then the server goes away while training jobs run: the runs' results stay on disk
(metrics.json is the source of truth), only the tracking job fails; once the server is back, the
next call logs what was missed, and nothing twice. About three minutes on a 2-core CPU
(``mlflow server`` alone takes about 18 s to become ready).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MLFLOW = Path(sys.executable).parent / "mlflow"
STUDY = "server"
RUNS = [f"street/{v}/{b}/seed0" for v in ("sup_only", "mean_teacher") for b in ("full", "scans-10")]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``mlflow server`` (SQLite backend, artifacts served from a folder) in its own session."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 180) -> None:
        cmd = [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"]
        cmd += ["--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"]
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(
            f"mlflow server did not start: {(self.root / 'server.log').read_text()}"
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    if not MLFLOW.is_file():
        pytest.skip(f"no mlflow executable next to {sys.executable}")
    srv = Server(tmp_path_factory.mktemp("mlflow_server"), _free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A copy of the config with one small study (2 variants x 2 budgets, smoke scale)."""
    work = tmp_path_factory.mktemp("server_dag")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["studies"] = {
        STUDY: {
            "title": "Tracked on a server",
            "dataset": "street",
            "rows": ["sup_only", "mean_teacher"],
            "budgets": ["scans-10", "full"],
            "seeds": [0],
        }
    }
    cfg.pop("ignet_figure", None)
    (work / "config").mkdir()
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return work


def _snakemake(work: Path, uri: str, *args: str, wait: bool = True):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env |= {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work)]
    cmd += ["--cores", "2", f"reports/{STUDY}.pdf", *args, "--config", "scale=smoke"]
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=900)
    return proc.returncode, out.decode(errors="replace")


def _current(uri: str) -> dict:
    from kdseg.tracking.store import current_runs

    return {r.data.tags["kdseg.job_key"]: r for r in current_runs(uri, f"kdseg/smoke/{STUDY}")}


def test_parallel_jobs_tracked_on_a_server(server, workdir):
    """Every run of the DAG (parallel jobs), with its metrics, loss curve and artifacts, on
    the server; the server's store holds it all, the workflow wrote no local store."""
    from mlflow import MlflowClient

    rc, out = _snakemake(workdir, server.uri)
    assert rc == 0, out[-3000:]
    runs = _current(server.uri)
    assert sorted(runs) == sorted(RUNS)
    client = MlflowClient(server.uri)
    for key, run in runs.items():
        assert run.info.status == "FINISHED", key
        assert {"miou", "iou/car", "wall_time_s", "parity/latency_ratio"} <= set(run.data.metrics)
        assert len(client.get_metric_history(run.info.run_id, "loss/total")) == 3
        assert run.data.params["config.variant"] == key.split("/")[1]
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "train_log.jsonl", "confusion_matrix.png"} <= names, key
    assert not (workdir / "results" / "mlflow.db").exists()
    assert list((server.root / "artifacts").rglob("confusion_matrix.png"))


def test_the_server_going_away_mid_run_loses_nothing(server, workdir):
    """The server dies while training jobs run: the jobs finish and write their results; only
    the tracking job fails. Back up, the next call logs exactly the missed runs."""
    before = {k: r.info.run_id for k, r in _current(server.uri).items()}
    changed = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    changed["variants"]["mean_teacher"]["options"] = {"consistency_weight": 100.0}
    cfgfile = workdir / "changed.yaml"
    cfgfile.write_text(yaml.safe_dump(changed, sort_keys=False))
    started = time.time()
    proc = _snakemake(workdir, server.uri, "--keep-going", "--configfile", str(cfgfile), wait=False)
    logs = workdir / "logs" / "smoke" / "train" / "street" / "mean_teacher"

    def training() -> bool:
        return any(p.stat().st_mtime >= started for p in logs.rglob("*.log"))

    deadline = time.monotonic() + 300
    while not training() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert training(), "no training job started"
    server.stop()  # mid-run: a training job is running
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode != 0, "the tracking job must fail while the server is down"
    text = out.decode(errors="replace")
    assert "Error in rule track" in text, text[-3000:]
    for budget in ("full", "scans-10"):  # the results are on disk all the same
        run_dir = workdir / "results/smoke/runs/street/mean_teacher" / budget / "seed0"
        record = json.loads((run_dir / "metrics.json").read_text())
        assert record["config"]["options"]["consistency_weight"] == 100.0
    assert not (workdir / "results/smoke/tracking" / f"{STUDY}.json").exists()

    server.start()
    rc, out = _snakemake(workdir, server.uri, "--configfile", str(cfgfile))
    assert rc == 0, out[-3000:]
    after = _current(server.uri)
    assert sorted(after) == sorted(RUNS)
    for key, run in after.items():
        if "mean_teacher" in key:  # rerun: logged anew, the old run superseded
            assert run.info.run_id != before[key]
            assert run.data.params["config.options.consistency_weight"] == "100.0"
        else:  # unchanged: not logged twice
            assert run.info.run_id == before[key]
    from mlflow import MlflowClient

    exp = MlflowClient(server.uri).get_experiment_by_name(f"kdseg/smoke/{STUDY}")
    assert len(MlflowClient(server.uri).search_runs([exp.experiment_id])) == len(RUNS) + 2
