"""Resumable HTTP downloads (stdlib ``urllib``), progress reporting and file hashing.

A download writes ``<name>.part`` beside the final path. An interrupted transfer (dropped
connection, killed process) is resumed with an HTTP ``Range`` request from the ``.part`` file's
size; a server that ignores ``Range`` (status 200) restarts it from byte 0. The ``.part`` file
only becomes ``<name>`` after the caller has verified it (:func:`kdseg.fetch.verify`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import FetchError

CHUNK = 1 << 20  # bytes per read
USER_AGENT = "kdseg-fetch/0.1 (+https://github.com/kdseg)"


def human_bytes(n: float) -> str:
    """``1234567 -> '1.2 MB'`` (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """A byte counter: a tqdm bar when ``stream`` is a TTY, else one plain line per 10 %.

    ``stream=None``: the bar on stderr when stderr is a TTY, else plain lines on stdout (so that
    stderr carries nothing but errors in logs and pipes). With an unknown total, the plain mode
    prints one line per 256 MiB.
    """

    def __init__(
        self, label: str, total: int | None, initial: int = 0, stream: IO[str] | None = None
    ) -> None:
        self.label, self.total, self.done = label, total, initial
        if stream is None:
            stream = sys.stderr if sys.stderr.isatty() else sys.stdout
        self.stream = stream
        self._bar = None
        isatty = getattr(self.stream, "isatty", None)
        if isatty is not None and isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                desc=label,
                file=self.stream,
                leave=True,
            )
        self._mark = self._bucket(initial)

    def _bucket(self, n: int) -> int:
        if self.total:
            return min(10, n * 10 // self.total)
        return n // (256 << 20)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        bucket = self._bucket(self.done)
        if bucket > self._mark:
            self._mark = bucket
            if self.total:
                what = f"{bucket * 10}% ({human_bytes(self.done)} of {human_bytes(self.total)})"
            else:
                what = human_bytes(self.done)
            print(f"{self.label}: {what}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class DownloadResult:
    path: Path
    bytes: int
    resumed_from: int  # bytes already on disk when this call started (0: fresh)
    attempts: int


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``'bytes 100-199/1000' -> (100, 1000)``; ``'bytes */1000' -> (-1, 1000)``."""
    if not value:
        return None
    m = re.fullmatch(r"\s*bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)\s*", value)
    if not m:
        return None
    start = -1 if m.group(1) == "*" else int(m.group(1))
    total = None if m.group(2) == "*" else int(m.group(2))
    return start, total


def _check_space(folder: Path, needed: int, url: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise FetchError(
            url,
            f"needs {human_bytes(needed)} more in {folder} but only {human_bytes(free)} is free",
        )


def download(
    url: str,
    part: Path,
    *,
    retries: int = 5,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    stream: IO[str] | None = None,
    label: str | None = None,
) -> DownloadResult:
    """Download ``url`` into ``part``, resuming from its current size.

    Returns when the server's announced length has arrived (or, without a length, when the
    server closed a complete response). Transient failures (connection drop, timeout, 5xx) are
    retried ``retries`` times with exponential back-off; each retry resumes with ``Range``.
    Raises :class:`FetchError` (one line: URL, bytes so far, the cause) when retries run out;
    the ``.part`` file stays so that the next call resumes.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    meta_path = part.with_name(part.name + ".json")  # validator of the partial content
    label = label or part.name.removesuffix(".part")
    start = part.stat().st_size if part.exists() else 0
    attempts = 0
    while True:
        attempts += 1
        try:
            if _attempt(url, part, meta_path, timeout_s, stream, label):
                meta_path.unlink(missing_ok=True)
                return DownloadResult(part, part.stat().st_size, start, attempts)
            cause = "connection closed before the announced length"
        except FetchError:
            raise
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code not in (408, 429):
                raise FetchError(url, f"HTTP {exc.code} {exc.reason}") from None
            cause = f"HTTP {exc.code}"
        except (OSError, http.client.HTTPException) as exc:  # URLError, resets, timeouts
            cause = f"{type(exc).__name__}: {exc}"
        if attempts > retries:
            have = part.stat().st_size if part.exists() else 0
            raise FetchError(
                url,
                f"download failed after {attempts} attempts ({cause}); {human_bytes(have)} kept "
                f"in {part}, run again to resume",
            )
        time.sleep(backoff_s * 2 ** (attempts - 1))


def _attempt(
    url: str, part: Path, meta_path: Path, timeout_s: float, stream: IO[str] | None, label: str
) -> bool:
    """One request; True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    meta = _read_meta(meta_path) if have else {}
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send, or our part is longer than the file
            rng = _content_range(exc.headers.get("Content-Range"))
            total = rng[1] if rng else meta.get("total")
            if total is not None and have == total:
                return True
            part.unlink()  # inconsistent with the server's file: start again
            return False
        raise
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if status == 206:
            rng = _content_range(response.headers.get("Content-Range"))
            if rng is None or rng[0] != have:
                raise FetchError(url, f"server answered Range bytes={have}- with {rng}")
            total, mode = rng[1], "ab"
        elif status == 200:
            total, mode, have = length, "wb", 0  # no (or refused) resume: start from byte 0
        else:
            raise FetchError(url, f"unexpected HTTP status {status}")
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        _write_meta(meta_path, {"url": url, "total": total, "validator": validator})
        if total is not None:
            _check_space(part.parent, total - have, url)
        progress = Progress(label, total, have, stream)
        try:
            with open(part, mode) as fh:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    fh.write(chunk)
                    progress.update(len(chunk))
        finally:
            progress.close()
    size = part.stat().st_size
    if total is None:
        return True  # the caller's checksum / archive CRCs decide
    if size > total:
        part.unlink()
        raise FetchError(url, f"received {size} bytes but the server announced {total}")
    return size == total


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_meta(path: Path, meta: dict) -> None:
    path.write_text(json.dumps(meta))


def hash_file(
    path: Path, algorithms: Iterable[str], stream: IO[str] | None = None
) -> dict[str, str]:
    """Hex digests of ``path`` for each algorithm (one pass over the file)."""
    hashers = {a: hashlib.new(a) for a in set(algorithms)}
    size = path.stat().st_size
    progress = Progress(f"{path.name} (checksum)", size, 0, stream) if size > 1 << 30 else None
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
            if progress is not None:
                progress.update(len(chunk))
    if progress is not None:
        progress.close()
    return {a: h.hexdigest() for a, h in hashers.items()}
