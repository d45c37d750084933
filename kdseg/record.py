"""The run record: what one training run produces, as ``<run folder>/metrics.json``.

:class:`RunRecord` is written by the run (:mod:`kdseg.run`), read by the report
(:mod:`kdseg.report.collect`) and by tracking (:mod:`kdseg.tracking.sync`). It is versioned:
``schema_version`` is :data:`SCHEMA_VERSION` for records written now; a file without it is a
version-1 record (the same fields, written before the version existed, without ``environment``
and ``attempt``); any other version is refused with one line naming the file
(:class:`~kdseg.errors.DataFormatError`), so an old kdseg never misreads a newer record.

Fields (scores are fractions in [0, 1]; the deployed network's unless prefixed):

* ``miou``, ``accuracy``, ``per_class_iou`` ({class: IoU, ``null`` for a class excluded from the
  mean}), ``confusion_matrix`` (``(K, K)`` point counts, rows = ground truth);
* ``deployed`` (the key of ``networks`` that is deployed: ``student`` or ``teacher``),
  ``network`` (the deployed network's :meth:`~kdseg.segmenter.Segmenter.spec`, which with
  ``model.pt`` rebuilds it), ``networks`` ({name: {miou, accuracy, per_class_iou}} of every
  evaluated network);
* ``wall_time_s`` (s, training and evaluation, summed over the sessions of a resumed run),
  ``parameters`` (count), ``inference_latency_ms`` (ms, median);
* ``parity``: parameters and latency of the deployed network against a reference network
  (``reference``; ``parameters_ratio``, ``latency_ratio``, ...);
* ``config``: the resolved run configuration (method, variant, options, trainer, augment,
  dataset, budget, seed, scale, inputs, ...);
* ``environment``: where it ran (:class:`Environment`); ``attempt``: the id of the training
  attempt that wrote it (the same id is the ``kdseg.attempt`` tag of the run's local log);
* ``continual`` (continual 2D runs only, ``None`` otherwise; an optional key, so older readers
  of version 2 keep it as an unknown key): the task, the step, the label id of every output
  channel and the step's scores (``miou_all``, ``iou_background``, ``miou_old``, ``miou_new``,
  ``miou_base``, ``miou_incremental``: :mod:`kdseg.datasets.continual_metrics`); a task record
  (the run folder of a task x variant x seed) also lists every step's scores and the mean
  over steps (``steps``, ``miou_mean_over_steps``).

This module imports neither torch nor MLflow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdseg.errors import DataFormatError
from kdseg.io import write_json

SCHEMA_VERSION = 2
#: versions this kdseg reads (1: records written before the version field existed)
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
RECORD_FILE = "metrics.json"
REQUIRED_KEYS: tuple[str, ...] = ("miou", "per_class_iou", "config")
REQUIRED_CONFIG_KEYS: tuple[str, ...] = ("method", "variant", "dataset", "budget", "seed", "scale")


@dataclass(frozen=True)
class Environment:
    """Where and with what a run was made (for provenance and the MLflow tags)."""

    hostname: str
    slurm_job_id: str | None
    """``$SLURM_JOB_ID`` of the job that finished the run (None outside SLURM)"""
    torch_version: str
    threads: int
    """torch CPU threads"""
    device: str
    kdseg_version: str
    git_commit: str | None
    """``git rev-parse HEAD`` of the checkout holding kdseg (None when not a git checkout)"""
    python_version: str

    @classmethod
    def current(cls, device: str, torch_version: str, threads: int) -> Environment:
        """The environment of this process (torch facts given by the caller, which imports
        torch; this module does not)."""
        from kdseg import __version__

        return cls(
            hostname=socket.gethostname(),
            slurm_job_id=os.environ.get("SLURM_JOB_ID") or None,
            torch_version=torch_version,
            threads=int(threads),
            device=str(device),
            kdseg_version=__version__,
            git_commit=git_commit(),
            python_version=platform.python_version(),
        )

    def tags(self) -> dict[str, str]:
        """``kdseg.<field>`` tags (MLflow; none for an unset field); the git commit also as
        MLflow's ``mlflow.source.git.commit``. ``kdseg.slurm_job_id`` is the SLURM job."""
        return environment_tags(dataclasses.asdict(self))


def environment_tags(env: Mapping[str, Any]) -> dict[str, str]:
    """:meth:`Environment.tags` of an environment block given as a mapping."""
    tags = {f"kdseg.{k}": str(v) for k, v in env.items() if v is not None and v != ""}
    if env.get("git_commit"):
        tags["mlflow.source.git.commit"] = str(env["git_commit"])
    return tags


_GIT_COMMIT: dict[str, str | None] = {}


def git_commit(repo_dir: str | Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of ``repo_dir`` (default: the folder holding the kdseg package), or
    ``None`` when it is not a git checkout or git is missing (cached per folder)."""
    where = str(repo_dir or Path(__file__).resolve().parents[1])
    if where not in _GIT_COMMIT:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
            )
            commit = out.stdout.strip() if out.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            commit = ""
        ok = len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit)
        _GIT_COMMIT[where] = commit if ok else None
    return _GIT_COMMIT[where]


@dataclass(frozen=True)
class RunRecord:
    """The content of a run's ``metrics.json`` (module docstring)."""

    miou: float
    accuracy: float | None
    per_class_iou: dict[str, float | None]
    confusion_matrix: list[list[int]] | None
    deployed: str
    network: dict[str, Any] | None
    networks: dict[str, dict[str, Any]]
    wall_time_s: float | None
    parameters: int | None
    inference_latency_ms: float | None
    config: dict[str, Any]
    parity: dict[str, Any] | None = None
    environment: Environment | None = None
    attempt: str | None = None
    continual: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """keys of the file that this version does not know (kept when read, never written)"""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``metrics.json``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out["environment"] = (
            None if self.environment is None else dataclasses.asdict(self.environment)
        )
        return out

    def write(self, path: str | Path) -> None:
        """Write atomically (temporary sibling, fsync, rename)."""
        write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> RunRecord:
        """Read and validate ``path``; ``DataFormatError`` naming it on any problem."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DataFormatError(path, f"cannot read run record ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: str | Path = RECORD_FILE) -> RunRecord:
        """Validate a parsed ``metrics.json``; ``path`` names it in errors."""
        path = Path(path)
        if not isinstance(data, dict):
            raise DataFormatError(path, f"expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", 1)
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise DataFormatError(
                path,
                f"run record schema_version {version!r} is not one this kdseg reads "
                f"{list(READABLE_VERSIONS)} (written by another kdseg version: update kdseg or "
                "rerun the run)",
            )
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise DataFormatError(path, f"missing key(s) {missing}")
        cfg = data["config"]
        if not isinstance(cfg, dict):
            raise DataFormatError(path, "'config' must be an object")
        missing = [k for k in REQUIRED_CONFIG_KEYS if k not in cfg]
        if missing:
            raise DataFormatError(path, f"missing key(s) {['config.' + k for k in missing]}")
        if isinstance(cfg["seed"], bool) or not isinstance(cfg["seed"], int):
            raise DataFormatError(path, f"config.seed must be an integer, got {cfg['seed']!r}")
        if not isinstance(data["per_class_iou"], dict):
            raise DataFormatError(path, "'per_class_iou' must be an object {class: IoU}")
        for key in ("parity", "network", "continual"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise DataFormatError(path, f"'{key}' must be an object")
        env = data.get("environment")
        environment = None
        if env is not None:
            names = {f.name for f in dataclasses.fields(Environment)}
            if not isinstance(env, dict) or set(env) != names:
                raise DataFormatError(
                    path, f"'environment' must be an object with keys {sorted(names)}"
                )
            environment = Environment(**env)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            miou=data["miou"],
            accuracy=data.get("accuracy"),
            per_class_iou=data["per_class_iou"],
            confusion_matrix=data.get("confusion_matrix"),
            deployed=str(data.get("deployed", "student")),
            network=data.get("network"),
            networks=data.get("networks") or {},
            wall_time_s=data.get("wall_time_s"),
            parameters=data.get("parameters"),
            inference_latency_ms=data.get("inference_latency_ms"),
            config=cfg,
            parity=data.get("parity"),
            environment=environment,
            attempt=data.get("attempt"),
            continual=data.get("continual"),
            schema_version=int(version),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def final_metrics(self) -> dict[str, float]:
        """Every scalar result once, flat, for tracking: ``miou``, ``accuracy``,
        ``iou/<class>`` (NaN for ``null``), ``<network>/miou`` and ``<network>/accuracy`` of each
        evaluated network, ``wall_time_s``, ``parameters``, ``inference_latency_ms``,
        ``parity/parameters_ratio`` and ``parity/latency_ratio``, and a continual run's
        ``continual/<score>``."""
        out: dict[str, float] = {}

        def put(key: str, value: Any) -> None:
            if value is None:
                out[key] = math.nan
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[key] = float(value)

        put("miou", self.miou)
        put("accuracy", self.accuracy)
        for name, iou in self.per_class_iou.items():
            put(f"iou/{name}", iou)
        for net, scores in self.networks.items():
            if isinstance(scores, Mapping):
                put(f"{net}/miou", scores.get("miou"))
                put(f"{net}/accuracy", scores.get("accuracy"))
        for key in ("wall_time_s", "parameters", "inference_latency_ms"):
            value = getattr(self, key)
            if value is not None:
                put(key, value)
        for key in ("parameters_ratio", "latency_ratio"):
            if self.parity and key in self.parity:
                put(f"parity/{key}", self.parity[key])
        scores = (self.continual or {}).get("scores")
        if isinstance(scores, Mapping):
            for key, value in scores.items():
                put(f"continual/{key}", value)
        return out
