"""Every way input or environment goes wrong ends in one line naming the file or key.

The cases of issue 12's list, run through the real command line (``kdseg.cli.main`` in this
process; a real ``kdseg train`` subprocess for signals): bad scans, labels, scribbles,
calibration, poses and images; a dataset without validation sequence; splits that leak, come
from another dataset, name a missing scan or are of an old format; option values, JSON, seeds
and abbreviations; an MLflow store that was never created; SIGTERM and SIGINT; a read-only run
folder; a full disk. Each asserts the exit status, the exact one-line message and that no
output looks done (no metrics.json, model.pt, record or temporary file).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdseg.cli import main
from kdseg.datasets.synthetic_street import StreetConfig, generate
from kdseg.errors import ConfigError

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def street(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("street") / "street", StreetConfig.for_scale("smoke"))


@pytest.fixture
def data(street: Path, tmp_path: Path) -> Path:
    """A copy of the smoke data that a test may damage."""
    return Path(shutil.copytree(street, tmp_path / "street"))


@pytest.fixture(scope="module")
def split_file(street: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("splits") / "scans-50" / "seed0.json"
    args = ["split", "--data", str(street), "--dataset", "street", "--budget", "scans-50"]
    assert main([*args, "--seed", "0", "--out", str(out)]) == 0
    return out


def seq(root: Path, name: str = "00") -> Path:
    return root / "dataset" / "sequences" / name


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and the one line of stderr of ``kdseg ARGS`` (asserts it is one line)."""
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return rc, lines[0]


def nothing_done(folder: Path) -> None:
    names = {p.name for p in folder.rglob("*")} if folder.exists() else set()
    assert not names & {"metrics.json", "model.pt"}, names
    assert not [n for n in names if n.endswith(".tmp")], names


def train_args(data: Path, split: Path | None, out: Path, *extra: str) -> list[str]:
    head = ["train", "--data", str(data), "--method", "sup_only", "--scale", "smoke"]
    return [*head, *(["--split", str(split)] if split else []), "--out", str(out), *extra]


# ------------------------------------------------------------------------------ bad data
def _cut(path: Path, by: int) -> tuple[Path, int]:
    """Drop the last ``by`` bytes of ``path``; returns it and its new size."""
    path.write_bytes(path.read_bytes()[:-by])
    return path, path.stat().st_size


def _points(root: Path, name: str) -> int:
    return (seq(root) / "velodyne" / f"{name}.bin").stat().st_size // 16


def truncated_scan(r: Path) -> str:
    path, size = _cut(seq(r) / "velodyne/000001.bin", 3)
    return f"{path}: size {size} bytes is not a positive multiple of 16 (4 float32 per point)"


def short_labels(r: Path) -> str:
    path, size = _cut(seq(r) / "labels/000002.label", 4)
    points = _points(r, "000002")
    return f"{path}: size {size} bytes, but its scan has {points} points (4 bytes per point)"


def short_scribbles(r: Path) -> str:
    path, size = _cut(seq(r) / "scribbles/000000.label", 8)
    points = _points(r, "000000")
    return f"{path}: size {size} bytes, but its scan has {points} points (4 bytes per point)"


def missing_validation_labels(r: Path) -> str:
    path = seq(r, "08") / "labels/000001.label"
    path.unlink()
    return f"{path}: label file does not exist"


def bad_calibration_line(r: Path) -> str:
    path = seq(r) / "calib.txt"
    path.write_text(path.read_text().replace("P2:", "P2: 1 2 3\nX:", 1))
    return f"{path}: line 3 (P2): expected 12 numbers, got 3"


def poses_short(r: Path) -> str:
    path = seq(r) / "poses.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    return f"{path}: has 2 poses but scan 2 exists"


def no_validation_sequence(r: Path) -> str:
    shutil.rmtree(seq(r, "08"))
    return (
        f"{r}/dataset/sequences: no validation scans (validation sequences ['08'], present: "
        "[]); a run could not be scored"
    )


DATA_CASES = {
    f.__name__: f
    for f in (
        truncated_scan,
        short_labels,
        short_scribbles,
        missing_validation_labels,
        bad_calibration_line,
        poses_short,
        no_validation_sequence,
    )
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_check_data_names_the_bad_file(case, data, tmp_path, capsys):
    message = DATA_CASES[case](data)
    record = tmp_path / "record" / "street.json"
    rc, line = run(["check-data", "--data", str(data), "--out", str(record)], capsys)
    assert (rc, line) == (2, "kdseg check-data: error: " + message)
    assert not record.parent.exists()


def test_train_refuses_data_without_validation_before_training(data, tmp_path, capsys):
    shutil.rmtree(seq(data, "08"))
    out = tmp_path / "run"
    rc, line = run(train_args(data, None, out, "--budget", "full"), capsys)
    assert rc == 2 and line.endswith(
        "no validation scans (validation sequences ['08'], present: []); a run could not be scored"
    )
    nothing_done(out)


def test_undecodable_camera_image(data, tmp_path, capsys):
    image = seq(data, "08") / "image_2/000000.png"
    _cut(image, image.stat().st_size - 40)
    args = ["render", "--data", str(data), "--sequence", "08", "--frame", "0"]
    rc, line = run([*args, "--out", str(tmp_path / "pics")], capsys)
    assert rc == 2
    assert line.startswith(f"kdseg render: error: {image}: cannot decode image: ")
    assert not (tmp_path / "pics").exists()


# ---------------------------------------------------------------------------------- splits
def _edit_split(src: Path, dst: Path, **changes: object) -> Path:
    obj = json.loads(src.read_text())
    obj.update(changes)
    dst.write_text(json.dumps(obj))
    return dst


def test_split_with_a_validation_scan_is_refused(street, split_file, tmp_path, capsys):
    labelled = json.loads(split_file.read_text())["labelled"]
    bad = _edit_split(split_file, tmp_path / "leak.json", labelled=[["08", 0], *labelled[1:]])
    rc, line = run(train_args(street, bad, tmp_path / "run"), capsys)
    assert (rc, line) == (
        2,
        f"kdseg train: error: {bad}: labelled scan 08/000000 is in validation sequence 08 "
        "(training on it would leak)",
    )
    nothing_done(tmp_path / "run")


def test_split_of_another_dataset_is_refused(street, split_file, tmp_path, capsys):
    other = generate(tmp_path / "other", StreetConfig.for_scale("smoke", seed=1))
    rc, line = run(train_args(other, split_file, tmp_path / "run"), capsys)
    assert rc == 2
    assert line.startswith(f"kdseg train: error: {split_file}: was drawn from other training ")
    assert f"the data at {other} give " in line and line.endswith("with `kdseg split`")
    rc, line = run(train_args(street, split_file, tmp_path / "run", "--dataset", "city"), capsys)
    assert (rc, line) == (
        2,
        f"kdseg train: error: {split_file}: was made for dataset 'street', not 'city' (--dataset)",
    )
    nothing_done(tmp_path / "run")


def test_split_naming_a_missing_scan_fails_before_training(data, split_file, tmp_path, capsys):
    (seq(data) / "velodyne/000001.bin").unlink()
    kind = "labelled" if ["00", 1] in json.loads(split_file.read_text())["labelled"] else "unl"
    rc, line = run(train_args(data, split_file, tmp_path / "run"), capsys)
    assert rc == 2 and line.startswith(f"kdseg train: error: {split_file}: {kind}")
    assert f"scan 00/000001: {seq(data)}/velodyne/000001.bin does not exist" in line
    nothing_done(tmp_path / "run")


def test_split_of_the_old_format_says_how_to_regenerate(street, split_file, tmp_path, capsys):
    old = _edit_split(split_file, tmp_path / "old.json", format_version=1)
    rc, line = run(train_args(street, old, tmp_path / "run"), capsys)
    assert (rc, line) == (
        2,
        f"kdseg train: error: {old}: split format 1 is not the supported 2 (format 2 records the "
        "dataset fingerprint that training checks); regenerate it with `kdseg split --data "
        f"DATA_ROOT --dataset street --budget scans-50 --seed 0 --out {old}` (in the workflow: "
        "delete the file and rerun)",
    )


def test_budgets_documented_custom_and_misspelt(street, tmp_path, capsys):
    args = ["split", "--data", str(street), "--dataset", "street", "--seed", "0", "--out"]
    rc, line = run([*args, str(tmp_path / "s7.json"), "--budget", "scans-7"], capsys)
    assert rc == 0 and line.startswith("note: scans-7 is not one of the documented budgets")
    assert json.loads((tmp_path / "s7.json").read_text())["custom_budget"] is True
    rc, line = run([*args, str(tmp_path / "s10.json"), "--budget", "scans-10.0"], capsys)
    assert (rc, line) == (
        2,
        "kdseg split: error: config key 'budget': 'scans-10.0' is written 'scans-10'",
    )
    assert not (tmp_path / "s10.json").exists()


# ---------------------------------------------------------------------------------- config
CONFIG_CASES = [
    (["--trainer", "lr=abc"], "config key 'lr': expected float, got str 'abc'"),
    (["--trainer", "lr"], "config key '--trainer': expects KEY=VALUE, got 'lr'"),
    (["--trainer", "nosuch=1"], "config key 'nosuch': unknown trainer key; known: ["),
    (["--option", "lovasz_weigth=1"],
     "config key 'sup_only.lovasz_weigth': unknown option of sup_only; known: ["),
    (["--option", "lovasz_weight=high"],
     "config key 'sup_only.lovasz_weight': expected float, got str 'high'"),
    (["--options-json", "{bad"], "config key '--options-json': not valid JSON (Expecting"),
    (["--options-json", "[1]"], "config key '--options-json': must be a JSON object, got list"),
    (["--augment", "flip=maybe"], "config key 'augment.flip': expected bool, got str 'maybe'"),
    (["--augment", "scale=[1]"],
     "config key 'augment.scale': expected tuple[float, float], got list [1]"),
    (["--augment", "tilt=1"], "config key 'augment.tilt': unknown augmentation; known: ["),
    (["--method", "nope"], "config key 'method': unknown method 'nope'; registered: ["),
    (["--scale", "huge"], "config key 'scale': unknown scale 'huge'; known: ["),
    (["--method", "ignet"], "config key 'inputs.features_2d': needs a value (folder of a 2D"),
    (["--input", "nosuch=1"], "config key 'inputs': unknown input 'nosuch'; registered: ["),
    (["--method", "tests.kd_method:LogitKD"],
     "config key 'inputs.teacher_checkpoint': needs a value (a finished run folder"),
    (["--method", "tests.kd_method:LogitKD", "--input", "teacher_checkpoint={tmp}"],
     "{tmp}/metrics.json: cannot read run record (No such file or directory)"),
    (["--method", "nowhere:Method"],
     "config key 'method': method 'nowhere:Method': cannot import nowhere (No module named"),
    (["--mlflow-experiment", "e", "--mlflow-uri", "sqlite:///{tmp}/no.db"],
     "{tmp}/no.db: MLflow SQLite database does not exist; create it once, before starting "
     "jobs, with: kdseg mlflow-init --uri sqlite:///{tmp}/no.db --out FILE EXPERIMENT..."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"), CONFIG_CASES, ids=[" ".join(c[0]) for c in CONFIG_CASES]
)
def test_bad_option_names_the_key(extra, message, street, split_file, tmp_path, capsys):
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    rc, line = run(train_args(street, split_file, tmp_path / "run", *extra), capsys)
    assert rc == 2 and line.startswith(
        "kdseg train: error: " + message.replace("{tmp}", str(tmp_path))
    )
    nothing_done(tmp_path / "run")


SEED = "argument --seed: a seed is an integer in [0, 2**32), not"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["split", "--seed", "-1"], f"{SEED} '-1'"),
        (["generate", "--seed", "x"], f"{SEED} 'x'"),
        (["check-data", "--ou", "x"], "the following arguments are required: --data, --out"),
        (
            ["check-data", "--data", "d", "--out", "o", "--ou", "x"],
            "unrecognized arguments: --ou x",
        ),
    ],
)
def test_argument_errors_are_one_line(args, message, capsys):
    rc, line = run(args, capsys)
    prog = "kdseg" if message.startswith("unrecognized") else f"kdseg {args[0]}"
    assert rc == 2 and line == f"{prog}: error: {message} (see {prog} --help)"


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-3", 0.001), ("3", 3), ("true", True), ("null", None), ("None", None), ("none", "none"),
     ("[0.9, 1.1]", [0.9, 1.1]), ("sgd", "sgd")],
)  # fmt: skip
def test_option_values(text, value):
    from kdseg.commands import parse_value

    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_python_float_syntax_and_help(street, split_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--trainer", "lr=1e-3", "--trainer", "iterations=1", "--augment", "jitter=1e-2"]
    assert main(train_args(street, split_file, out, *args)) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["trainer"]["lr"] == 0.001 and config["augment"]["jitter"] == 0.01
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--trainer keys" in text and "  lr " in text and "kdseg methods METHOD" in text
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("kdseg ")


def test_unexpected_errors_keep_the_traceback(monkeypatch, street, tmp_path):
    from kdseg import commands

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(commands, "check_data", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["check-data", "--data", str(street), "--out", str(tmp_path / "r.json")])
    with pytest.raises(ConfigError, match="unknown scale"):  # --debug: known errors too
        main(["--debug", "generate", "--scale", "huge", "--out", str(tmp_path / "g")])


# ----------------------------------------------------------------------- the file system
@contextlib.contextmanager
def mounted_tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)])
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs at {where} ({options})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_read_only_run_folder(street, split_file, tmp_path, capsys):
    out = tmp_path / "ro"
    if os.geteuid() == 0:  # root ignores permission bits: use a read-only file system
        ctx, reason = mounted_tmpfs(out, "ro,size=1m"), "Read-only file system"
    else:
        out.mkdir()
        out.chmod(0o555)
        ctx, reason = contextlib.nullcontext(out), "Permission denied"
    with ctx:
        rc, line = run(train_args(street, split_file, out), capsys)
        assert (rc, line) == (2, f"kdseg train: error: {out}/run_config.json: {reason}")
        nothing_done(out)


class _FullDisk:
    """``os`` for kdseg.io whose files take ``limit`` bytes, then fail with ENOSPC."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def fdopen(self, fd: int, mode: str):
        fh, limit = os.fdopen(fd, mode), self.limit

        class Full:
            def __getattr__(self, name: str) -> object:
                return getattr(fh, name)

            def write(self, data) -> int:
                if fh.tell() + len(data) > limit:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return fh.write(data)

            def __enter__(self):
                return self

            def __exit__(self, *exc: object) -> None:
                fh.close()

        return Full()


@pytest.mark.parametrize("how", ["tmpfs", "patched write"])
def test_full_disk(how, street, split_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    if how == "tmpfs":
        if os.geteuid() != 0:
            pytest.skip("mounting a tiny tmpfs needs root; the patched write covers the rest")
        ctx = mounted_tmpfs(out, "size=256k")
    else:
        monkeypatch.setattr("kdseg.io.os", _FullDisk(64 * 1024))
        ctx = contextlib.nullcontext(out)
    with ctx:
        rc, line = run(train_args(street, split_file, out), capsys)
        assert (rc, line) == (
            2,
            f"kdseg train: error: {out}/checkpoint_last.pt: No space left on device",
        )
        nothing_done(out)


# --------------------------------------------------------------------------------- signals
def _wait_for_steps(log: Path, proc: subprocess.Popen, n: int) -> int:
    """Wait until ``log`` records ``n`` more training steps than it did; return the last one."""
    start = _steps(log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        steps = _steps(log)
        if len(steps) >= len(start) + n:
            return steps[-1]
        time.sleep(0.05)
    raise AssertionError(f"no progress in {log}: {proc.communicate()}")


def _steps(log: Path) -> list[int]:
    from kdseg.tracking import read_jsonl

    if not log.is_file():
        return []
    return [r["step"] for r in read_jsonl(log) if "loss/total" in r.get("metrics", {})]


def test_sigterm_and_sigint_checkpoint_and_mark_the_run_killed(street, split_file, tmp_path):
    """A real `kdseg train` gets SIGTERM (as SLURM sends it), then, resumed, SIGINT: each time
    the checkpoint is saved, the run's local log records KILLED and `--mlflow-experiment` logs
    the run to MLflow as KILLED; `kdseg track` afterwards finds nothing new to log."""
    import mlflow

    from kdseg.checkpoint import load_checkpoint
    from kdseg.tracking import parse_run_log

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow-init", "--uri", uri, "--out", str(tmp_path / "m.json"), "exp"]) == 0
    out = tmp_path / "run"
    extra = ["--trainer", "iterations=100000", "--mlflow-experiment", "exp", "--mlflow-uri", uri]
    cmd = [sys.executable, "-m", "kdseg.cli", *train_args(street, split_file, out, *extra)]
    steps: list[int] = []
    for signum, rc, what in (
        (signal.SIGTERM, 143, "terminated"),
        (signal.SIGINT, 130, "interrupted"),
    ):
        logged = _steps(out / "train_log.jsonl")
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        reached = _wait_for_steps(out / "train_log.jsonl", proc, 2)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        step = load_checkpoint(out / "checkpoint_last.pt")["step"]
        assert proc.returncode == rc and step >= reached
        assert err.splitlines()[-1] == (
            f"kdseg train: {what} by {signal.Signals(signum).name}; checkpoint of step {step} "
            f"saved to {out}/checkpoint_last.pt"
        )
        nothing_done(out)
        assert parse_run_log(out / "train_log.jsonl").status == "KILLED"  # the local record
        if steps:  # the second run resumed after the first one's checkpoint
            assert _steps(out / "train_log.jsonl")[len(logged)] == steps[-1] + 1
        steps.append(step)
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("exp").experiment_id
    runs = client.search_runs([exp])
    assert [r.info.status for r in runs] == ["KILLED", "KILLED"]
    (old,) = [r for r in runs if r.data.tags["kdseg.current"] == "false"]
    (new,) = [r for r in runs if r.data.tags["kdseg.current"] == "true"]  # one attempt, 2 logs
    assert old.data.tags["kdseg.superseded_by"] == new.info.run_id
    assert main(["track", "--uri", uri, "--experiment", "exp", str(out)]) == 0
    assert len(client.search_runs([exp])) == 2  # nothing new: logged once per change
