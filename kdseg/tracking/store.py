"""MLflow store set-up and look-ups that are safe with many parallel writers on SQLite.

Two races were reproduced with MLflow 3.17.2 on SQLite (see ``docs/tracking.md``): processes that
open a fresh database at the same time crash while creating its tables, and processes that call
``set_experiment`` for a new experiment at the same time lose the race silently and log into
"Default". Both are avoided by creating the database and every experiment once, in
:func:`init_store`, before any training job starts; jobs then only *read* the experiment id
(:func:`experiment_id`) and pass it explicitly. Every write is wrapped in :func:`retry_on_lock`,
which retries SQLite "database is locked" errors with bounded exponential backoff.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kdseg.errors import KdsegError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

T = TypeVar("T")

#: the store used when neither an argument nor ``MLFLOW_TRACKING_URI`` names one (relative to cwd)
DEFAULT_DB = Path("results") / "mlflow.db"
#: tag that marks the run a job key currently stands for (``"true"``/``"false"``)
CURRENT_TAG = "kdseg.current"
JOB_KEY_TAG = "kdseg.job_key"
#: sha256 of the job key (hex, 32 characters): a filter-safe stand-in for arbitrary job keys
JOB_KEY_HASH_TAG = "kdseg.job_key_hash"
SUPERSEDED_BY_TAG = "kdseg.superseded_by"

_LOCK_MARKERS = ("database is locked", "database table is locked", "database is busy")
#: MLflow 3.17.2 limits (``mlflow.utils.validation``): key length, value lengths, batch sizes
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_./\- ]")


class ExperimentNotFoundError(KdsegError, LookupError):
    """A job asked for an experiment that :func:`init_store` has not created."""

    def __init__(self, name: str, tracking_uri: str) -> None:
        self.name = name
        self.tracking_uri = tracking_uri
        super().__init__(
            f"MLflow experiment {name!r} does not exist in {tracking_uri}; create it before "
            f"starting training jobs: kdseg mlflow-init --uri {tracking_uri} --out FILE "
            f"'{name}' (the workflow's mlflow_init rule does)"
        )


class StoreNotInitialisedError(KdsegError, FileNotFoundError):
    """A job pointed at a SQLite database file that does not exist yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path}: MLflow SQLite database does not exist; create it once, before starting "
            f"jobs, with: kdseg mlflow-init --uri sqlite:///{path} --out FILE EXPERIMENT... "
            "(the workflow's mlflow_init rule does; several jobs creating it at once crash)"
        )


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI: ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///<absolute path of results/mlflow.db under the current directory>``.

    A relative SQLite path (``sqlite:///results/mlflow.db``) is made absolute against the current
    directory, so that every job of a workflow writes to the same file wherever it runs.
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri:
        return f"sqlite:///{DEFAULT_DB.resolve()}"
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{path.resolve()}"
    return uri


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI (relative or absolute), else ``None``.

    ``sqlite:///rel/x.db`` names a relative path and ``sqlite:////abs/x.db`` an absolute one
    (SQLAlchemy's convention). In-memory databases give ``None``.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    rest = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest)


def artifact_root_for(tracking_uri: str) -> str | None:
    """Where experiments of a SQLite store keep artifacts: ``<db folder>/mlartifacts`` as a
    ``file://`` URI. ``None`` for other stores (a tracking server chooses its own root)."""
    path = sqlite_path(tracking_uri)
    if path is None:
        return None
    return (path.resolve().parent / "mlartifacts").as_uri()


def is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a transient SQLite lock error.

    MLflow's SQLAlchemy store re-raises ``sqlalchemy.exc.OperationalError`` as an
    ``MlflowException`` with error code ``TEMPORARILY_UNAVAILABLE``; both forms are recognised.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = str(cur).lower()
        if any(marker in text for marker in _LOCK_MARKERS):
            return True
        if isinstance(cur, sqlite3.OperationalError):
            return True
        if type(cur).__name__ == "OperationalError" and "sqlalchemy" in type(cur).__module__:
            return True
        if getattr(cur, "error_code", None) == "TEMPORARILY_UNAVAILABLE":
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def retry_on_lock(
    fn: Callable[..., T],
    *args: Any,
    attempts: int = 6,
    base_delay_s: float = 0.1,
    max_delay_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> T:
    """Call ``fn(*args, **kwargs)``; on a lock error (:func:`is_lock_error`) wait and try again.

    At most ``attempts`` calls are made. The wait before retry ``k`` (1-based) is
    ``min(max_delay_s, base_delay_s * 2**(k-1))`` seconds times a random factor in [0.5, 1]
    (jitter, so that writers that collided do not collide again). Other errors propagate at once;
    after the last attempt the lock error itself propagates.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == attempts or not is_lock_error(exc):
                raise
            delay = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
            sleep(delay * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")  # pragma: no cover


def client_for(tracking_uri: str) -> MlflowClient:
    """An ``MlflowClient`` bound to ``tracking_uri`` (no global MLflow state is touched)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def init_store(tracking_uri: str | None, experiment_names: Iterable[str]) -> dict[str, str]:
    """Create the store (the SQLite file and its tables) and every experiment; idempotent.

    Run it once, in one process, before the training jobs fan out. Returns
    ``{experiment name: experiment id}``. Experiments of a SQLite store keep their artifacts under
    ``<db folder>/mlartifacts/<name slug>-<hash>`` (MLflow's default would be ``./mlruns``
    relative to whichever directory a job happens to run in).
    """
    uri = resolve_tracking_uri(tracking_uri)
    path = sqlite_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    client = client_for(uri)
    root = artifact_root_for(uri)
    ids: dict[str, str] = {}
    for name in experiment_names:
        if not name or not name.strip():
            raise ValueError("experiment names must be non-empty")
        if name in ids:
            continue
        found = retry_on_lock(client.get_experiment_by_name, name)
        if found is None:
            location = None if root is None else f"{root}/{_slug(name)}"
            try:
                ids[name] = retry_on_lock(
                    client.create_experiment, name, artifact_location=location
                )
                continue
            except Exception:
                # another init_store created it meanwhile: use theirs, else report our failure
                found = retry_on_lock(client.get_experiment_by_name, name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            retry_on_lock(client.restore_experiment, found.experiment_id)
        ids[name] = found.experiment_id
    return ids


def _slug(name: str) -> str:
    """A folder name for an experiment: safe characters plus 8 hex digits of its sha256."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:80] or "experiment"
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def experiment_id(client: MlflowClient, name: str, tracking_uri: str = "") -> str:
    """The id of the active experiment ``name`` (a read only); :class:`ExperimentNotFoundError`
    if it does not exist or was deleted."""
    found = retry_on_lock(client.get_experiment_by_name, name)
    if found is None or found.lifecycle_stage != "active":
        raise ExperimentNotFoundError(name, tracking_uri or str(client.tracking_uri))
    return str(found.experiment_id)


def open_existing_store(tracking_uri: str | None = None) -> tuple[MlflowClient, str]:
    """``(client, resolved uri)`` for a store that :func:`init_store` has created.

    For SQLite the database file must exist (:class:`StoreNotInitialisedError` otherwise), so a
    job never creates the tables itself.
    """
    uri = resolve_tracking_uri(tracking_uri)
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        raise StoreNotInitialisedError(path)
    return client_for(uri), uri


def job_key_hash(job_key: str) -> str:
    """sha256 of ``job_key`` (32 hex characters): safe to put in an MLflow filter string."""
    return hashlib.sha256(job_key.encode("utf-8")).hexdigest()[:32]


def search_all_runs(
    client: MlflowClient, experiment_ids: list[str], filter_string: str
) -> list[Run]:
    """Every run matching ``filter_string`` (all pages), oldest first."""
    runs: list[Run] = []
    token: str | None = None
    while True:
        page = retry_on_lock(
            client.search_runs,
            experiment_ids,
            filter_string=filter_string,
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def current_runs(tracking_uri: str | None, experiment: str) -> list[Run]:
    """The runs of ``experiment`` (a name) tagged ``kdseg.current = 'true'``, oldest first:
    exactly one per job key that has run at least once."""
    client, uri = open_existing_store(tracking_uri)
    exp = experiment_id(client, experiment, uri)
    return search_all_runs(client, [exp], f"tags.`{CURRENT_TAG}` = 'true'")


def sanitize_key(name: str) -> str:
    """Map ``name`` to a key MLflow accepts on every platform (metric, param and tag keys).

    Allowed: ASCII letters, digits, ``_ - . /`` and space (colons are refused on Windows, so they
    are replaced too); anything else becomes ``_``. Empty, ``.`` and ``..`` path segments are
    dropped (MLflow refuses names that a path normalisation would change), a leading ``..`` becomes
    ``_.``, and the result is cut to 250 characters. ``loss/total`` and ``iou/on-rails`` pass
    unchanged.
    """
    cut = _BAD_KEY_CHARS.sub("_", str(name))[:MAX_KEY_LENGTH]
    key = "/".join(p for p in cut.split("/") if p not in ("", ".", "..")) or "_"
    return "_" + key[1:] if key.startswith("..") else key


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable sha256 (hex, 16 characters) of a resolved config: key order does not matter."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
