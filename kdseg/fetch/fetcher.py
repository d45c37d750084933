"""Fetch one catalog dataset: refuse licence-gated gaps, download, verify, extract, check, record.

Order of work for ``fetch(dataset, data_root)``:

1. ``<data_root>/<name>/.kdseg-fetched.json`` exists: nothing to do.
2. Plan every file: placed by an earlier run (its record under ``.kdseg-archives/``), archive
   waiting in the downloads folder, content already in place (``present``), to download, or
   gated and missing.
3. Any gated file missing (or a dataset without downloadable files): if the whole layout is
   already there (the user's own copy) it is checked and recorded; otherwise
   :class:`LicenceGated` with the steps. No network access happens before this point.
4. Per file: download (resumable) to ``<name>.part``; verify size and checksum; extract into a
   temporary folder beside the destination and move it into place; record the file.
5. Check the layout with the dataset's readers (:mod:`kdseg.fetch.layouts`), then write the done
   record atomically. A failure at any step leaves no done record.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kdseg.errors import DataFormatError
from kdseg.io import write_json

from .download import download, hash_file, human_bytes
from .errors import CorruptArchiveError, LicenceGated, UnsafeArchiveError, VerificationError
from .extract import extract_and_place, place_file
from .layouts import check_layout
from .model import Checksum, Dataset, RemoteFile

ARCHIVE_RECORDS = ".kdseg-archives"


@dataclass
class FetchOptions:
    """Knobs of :func:`fetch`.

    Attributes:
        downloads: folder for downloaded and hand-placed archives (default
            ``<data_root>/downloads``).
        checksums: file name -> checksum that replaces (or supplies) the catalog's.
        remove_archives: delete archives from the downloads folder once placed.
        retries, backoff_s, timeout_s: download retry policy (seconds).
        out: where progress messages and gate steps go (default stdout).
        progress: stream of the progress bars (default stderr).
    """

    downloads: Path | None = None
    checksums: dict[str, Checksum] = field(default_factory=dict)
    remove_archives: bool = False
    retries: int = 5
    backoff_s: float = 2.0
    timeout_s: float = 60.0
    out: IO[str] | None = None
    progress: IO[str] | None = None


@dataclass
class Planned:
    file: RemoteFile
    state: str  # placed | archive | present | download | missing


def _say(opts: FetchOptions, text: str) -> None:
    print(text, file=opts.out, flush=True)


def read_record(path: Path) -> dict[str, Any] | None:
    """The done record at ``path``, or None when absent or unreadable."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _records_dir(ds: Dataset, data_root: Path) -> Path:
    return data_root / ds.name / ARCHIVE_RECORDS


def plan(ds: Dataset, data_root: Path, downloads: Path) -> list[Planned]:
    """The state of each of ``ds``'s files (no network access)."""
    out = []
    for f in ds.files:
        record = _records_dir(ds, data_root) / f"{f.name}.json"
        started = _records_dir(ds, data_root) / f"{f.name}.started"
        if record.is_file() and not started.exists():
            state = "placed"
        elif (downloads / f.name).is_file():
            state = "archive"
        elif f.present and (data_root / f.present).exists() and not started.exists():
            state = "present"
        else:
            state = "missing" if f.gated else "download"
        out.append(Planned(f, state))
    return out


def gate_steps(
    ds: Dataset, data_root: Path, downloads: Path, missing: list[RemoteFile], layout_problem: str
) -> str:
    """The text that tells a user how to obtain a licence-gated dataset and where to put it."""
    gate = ds.gate
    assert gate is not None
    lines = [f"{ds.title}", f"Licence: {gate.licence}. kdseg cannot download it for you.", ""]
    lines.append("To obtain it:")
    register = gate.register
    if register.startswith("http"):
        register = f"register at {register} and accept the licence / terms of use"
    lines.append(f"  1. {register}")
    step = 2
    if missing:
        lines.append(f"  {step}. from {gate.download_page} download, unchanged:")
        for f in missing:
            size = human_bytes(f.approx_bytes) if f.approx_bytes else "size unknown"
            lines.append(f"       {f.name}  ({size}; {f.where or f.url})")
        step += 1
        lines.append(f"  {step}. put them into {downloads}/  (or pass --downloads DIR)")
        step += 1
    for extra in gate.extra_steps:
        lines.append(f"  {step}. {extra.format(data_root=data_root)}")
        step += 1
    lines.append(f"  {step}. run again: kdseg fetch {ds.name} --root {data_root}")
    open_files = [f.name for f in ds.files if not f.gated]
    if open_files:
        lines.append(f"     (it then downloads the openly available {', '.join(open_files)})")
    lines += ["", "If you already have the data unpacked, arrange it under the data root as:"]
    lines += [f"  {data_root}/{line}" for line in ds.layout]
    lines += [
        "and run the same command: the layout is then checked and recorded instead.",
        f"Layout check now: {layout_problem}",
    ]
    return "\n".join(lines)


@dataclass
class Verified:
    bytes: int
    sha256: str
    method: str


def verify(path: Path, f: RemoteFile, override: Checksum | None, opts: FetchOptions) -> Verified:
    """Size (when the catalog knows it exactly) and checksum of ``path``; the sha256 is always
    computed for the record. Raises :class:`VerificationError`."""
    size = path.stat().st_size
    if f.exact_bytes is not None and size != f.exact_bytes:
        raise VerificationError(path, f"{size} bytes, the catalog says {f.exact_bytes}")
    checksum = override or f.checksum
    algos = {"sha256"} | ({checksum.algorithm} if checksum else set())
    digests = hash_file(path, algos, opts.progress)
    if checksum is None:
        method = "no published checksum: archive CRCs checked while extracting; sha256 recorded"
    elif digests[checksum.algorithm] != checksum.hexdigest:
        raise VerificationError(
            path,
            f"{checksum.algorithm} {digests[checksum.algorithm]} differs from the expected "
            f"{checksum.hexdigest} ({checksum.source})",
        )
    else:
        method = f"{checksum.algorithm} {checksum.hexdigest} matches ({checksum.source})"
    return Verified(size, digests["sha256"], method)


def _process(
    ds: Dataset, item: Planned, data_root: Path, downloads: Path, opts: FetchOptions
) -> dict[str, Any]:
    f = item.file
    records = _records_dir(ds, data_root)
    record_path, started = records / f"{f.name}.json", records / f"{f.name}.started"
    if item.state == "placed":
        _say(opts, f"{ds.name}: {f.name} placed by an earlier run")
        return {**(read_record(record_path) or {"name": f.name}), "status": "placed earlier"}
    if item.state == "present":
        _say(opts, f"{ds.name}: {f.name} not needed, {data_root / str(f.present)} is in place")
        return {
            "name": f.name,
            "status": "content already in place; not downloaded or checksummed, the layout "
            "check covers it",
        }
    final = downloads / f.name
    part = final.with_name(final.name + ".part")
    override = opts.checksums.get(f.name)
    downloaded = item.state == "download"
    if downloaded:
        _say(opts, f"{ds.name}: downloading {f.url}")
        download(
            f.url,
            part,
            retries=opts.retries,
            backoff_s=opts.backoff_s,
            timeout_s=opts.timeout_s,
            stream=opts.progress,
            label=f.name,
        )
        source = part
    else:
        _say(opts, f"{ds.name}: verifying {final}")
        source = final
    try:
        checked = verify(source, f, override, opts)
    except VerificationError as exc:
        if downloaded:
            part.unlink(missing_ok=True)
            raise VerificationError(exc.path, f"{exc.problem}; download removed") from None
        raise VerificationError(exc.path, f"{exc.problem}; file left in place") from None
    has_checksum = (override or f.checksum) is not None
    if downloaded and has_checksum:  # verified: the .part file may now carry the real name
        os.replace(part, final)
        source = final
    dest = data_root / f.dest
    try:
        if f.kind == "file":
            place_file(source, dest, move=True)
        else:
            _say(opts, f"{ds.name}: extracting {f.name} into {dest}")
            extract_and_place(source, f.kind, dest, f.anchor, started)
    except (CorruptArchiveError, UnsafeArchiveError) as exc:
        if downloaded and not has_checksum:  # not the published file: fetch it again next time
            source.unlink(missing_ok=True)
            raise type(exc)(exc.path, f"{exc.problem}; download removed") from None
        raise
    if source.exists() and source != final:  # an unpublished-checksum archive, now proven
        os.replace(source, final)
    entry = {
        "name": f.name,
        "url": f.url,
        "bytes": checked.bytes,
        "sha256": checked.sha256,
        "verified": checked.method,
        "dest": str(dest),
        "status": "downloaded" if downloaded else "taken from the downloads folder",
    }
    write_json(record_path, entry)
    started.unlink(missing_ok=True)
    if opts.remove_archives and final.exists() and f.kind != "file":
        final.unlink()
    return entry


def fetch(ds: Dataset, data_root: str | Path, opts: FetchOptions | None = None) -> dict[str, Any]:
    """Fetch ``ds`` under ``data_root``; returns the done record (see the module docstring)."""
    opts = opts or FetchOptions()
    data_root = Path(data_root)
    record_path = ds.record_path(data_root)
    existing = read_record(record_path)
    if existing is not None and existing.get("dataset") == ds.name:
        _say(opts, f"{ds.name}: already fetched ({record_path})")
        return existing
    downloads = Path(opts.downloads) if opts.downloads else data_root / "downloads"
    items = plan(ds, data_root, downloads)
    missing = [i.file for i in items if i.state == "missing"]
    if missing or not ds.files:
        try:  # the user's own unpacked copy is accepted once its layout checks out
            layout = check_layout(ds, data_root)
        except DataFormatError as exc:
            assert ds.gate is not None
            steps = gate_steps(ds, data_root, downloads, missing, str(exc))
            raise LicenceGated(ds.name, [f.name for f in missing], steps) from None
        files = [
            {"name": f.name, "status": "not fetched: the layout was in place"} for f in ds.files
        ]
        return _write_record(ds, data_root, record_path, files, layout, opts, "existing layout")
    files = [_process(ds, item, data_root, downloads, opts) for item in items]
    layout = check_layout(ds, data_root)
    return _write_record(ds, data_root, record_path, files, layout, opts, "fetched")


def _write_record(
    ds: Dataset,
    data_root: Path,
    path: Path,
    files: list[dict[str, Any]],
    layout: dict[str, Any],
    opts: FetchOptions,
    source: str,
) -> dict[str, Any]:
    from kdseg import __version__

    record = {
        "dataset": ds.name,
        "title": ds.title,
        "licence": ds.licence,
        "data_root": str(data_root.resolve()),
        "target": str((data_root / ds.target).resolve()),
        "source": source,
        "files": files,
        "layout": layout,
        "kdseg_version": __version__,
        "written_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    write_json(path, record)
    _say(opts, f"{ds.name}: done, record {path}")
    return record
