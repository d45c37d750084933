"""Safe archive extraction and placement.

Archives are extracted into a fresh temporary folder beside their destination; only a complete,
safe extraction is moved into place (by ``rename``), so an interrupted or refused extraction
never leaves anything that looks extracted. A member is refused, and the whole archive with it,
when its name is absolute or has a ``..`` component, when it is a device file or FIFO, or when
it is a symlink or hard link that points outside the target. Tar archives go through the
standard library's ``data`` filter (Python >= 3.11.4) after our own name check; zip archives
through :func:`_extract_zip`, written to the same rules (zipfile itself knows no links and
silently rewrites unsafe names instead of refusing them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from .errors import CorruptArchiveError, FetchError, UnsafeArchiveError

TEMP_PREFIX = ".kdseg-extract-"
_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_member_name(archive: Path, name: str) -> list[str]:
    """Parts of a member name; refuses absolute names, drive letters and ``..``."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchiveError(archive, f"member {name!r} has an absolute path; refused")
    parts = [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(archive, f"member {name!r} has a '..' component; refused")
    if not parts:
        raise UnsafeArchiveError(archive, f"member {name!r} has an empty path; refused")
    return parts


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def extract_archive(archive: Path, workdir: Path, kind: str) -> None:
    """Extract ``archive`` (``kind`` ``"zip"`` or ``"tar"``) into the empty folder ``workdir``.

    Reads every member to the end, so the archive's CRCs (zip members, gzip/bzip2/xz streams)
    are checked. Raises :class:`UnsafeArchiveError` or :class:`CorruptArchiveError`.
    """
    try:
        if kind == "zip":
            _extract_zip(archive, workdir)
        elif kind == "tar":
            _extract_tar(archive, workdir)
        else:
            raise ValueError(f"not an archive kind: {kind!r}")
    except (UnsafeArchiveError, CorruptArchiveError):
        raise
    except tarfile.FilterError as exc:
        raise UnsafeArchiveError(archive, f"{exc}; refused") from None
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise CorruptArchiveError(archive, f"cannot be read to the end: {exc}") from None
    except OSError as exc:
        if exc.errno is not None:  # the environment (disk full, permissions), not the archive
            raise FetchError(archive, f"cannot be extracted: {exc}") from None
        raise CorruptArchiveError(archive, f"cannot be read to the end: {exc}") from None
    except RuntimeError as exc:  # e.g. an encrypted zip member
        raise CorruptArchiveError(archive, f"cannot be extracted: {exc}") from None


def _extract_tar(archive: Path, dest: Path) -> None:
    def strict(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        _check_member_name(archive, member.name)
        return tarfile.data_filter(member, path)

    with tarfile.open(archive, mode="r:*") as tf:
        tf.extractall(dest, filter=strict)
        stream = tf.fileobj
        # tarfile stops at the end-of-archive blocks: read the compressed stream to its end so
        # that gzip/bzip2/xz check their trailing CRC and length (a truncated file fails here).
        while stream is not None and stream.read(1 << 20):
            pass


def _zip_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _extract_zip(archive: Path, dest: Path) -> None:
    root = os.path.realpath(dest)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # refuse before writing anything
            _check_member_name(archive, info.filename)
            mode = _zip_mode(info)
            if (
                stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode)
                or stat.S_ISFIFO(mode)
                or stat.S_ISSOCK(mode)
            ):
                raise UnsafeArchiveError(
                    archive, f"member {info.filename!r} is a device file or FIFO; refused"
                )
        free = shutil.disk_usage(dest).free
        needed = sum(i.file_size for i in infos)
        if needed > free:
            raise FetchError(dest, f"extracting {archive.name} needs {needed} bytes, {free} free")
        for info in infos:
            parts = _check_member_name(archive, info.filename)
            target = os.path.join(root, *parts)
            parent = os.path.dirname(target)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                _require_inside(archive, info.filename, root, target)
                continue
            os.makedirs(parent, exist_ok=True)
            _require_inside(archive, info.filename, root, parent)
            mode = _zip_mode(info)
            if stat.S_ISLNK(mode):
                _zip_symlink(archive, zf, info, root, target)
                continue
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(target, flags, 0o755 if mode & 0o111 else 0o644)
            except OSError as exc:
                raise UnsafeArchiveError(
                    archive, f"member {info.filename!r} would be written through a link ({exc})"
                ) from None
            with zf.open(info) as src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)  # ZipExtFile checks the CRC at the end


def _require_inside(archive: Path, name: str, root: str, path: str) -> None:
    if not _inside(root, os.path.realpath(path)):
        raise UnsafeArchiveError(archive, f"member {name!r} resolves outside the target; refused")


def _zip_symlink(
    archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, root: str, target: str
) -> None:
    link = zf.read(info).decode("utf-8", errors="strict")
    if os.path.isabs(link) or link.startswith("\\") or _DRIVE.match(link):
        raise UnsafeArchiveError(
            archive, f"symlink {info.filename!r} -> {link!r} is absolute; refused"
        )
    resolved = os.path.normpath(os.path.join(os.path.dirname(target), link))
    if not _inside(root, resolved) or not _inside(
        root, os.path.realpath(os.path.join(os.path.dirname(target), link))
    ):
        raise UnsafeArchiveError(
            archive, f"symlink {info.filename!r} -> {link!r} points outside the target; refused"
        )
    if os.path.lexists(target):
        os.unlink(target)
    os.symlink(link, target)


# ------------------------------------------------------------------------------- placement
def find_anchor(workdir: Path, anchor: str | None, archive: Path, max_depth: int = 3) -> Path:
    """The folder of the extracted tree that is placed: ``workdir`` itself, or the one folder
    named ``anchor`` at depth <= ``max_depth`` (macOS ``__MACOSX`` copies are ignored)."""
    if anchor is None:
        return workdir
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(workdir):
        depth = len(Path(dirpath).relative_to(workdir).parts)
        dirnames[:] = [d for d in dirnames if d != "__MACOSX"]
        if depth >= max_depth:
            dirnames[:] = []
        found += [Path(dirpath) / d for d in dirnames if d == anchor]
        dirnames[:] = [d for d in dirnames if d != anchor]
    if len(found) != 1:
        where = ", ".join(str(p.relative_to(workdir)) for p in found) or "none"
        raise CorruptArchiveError(
            archive, f"expected exactly one folder named {anchor!r} in the archive, found {where}"
        )
    return found[0]


def merge_tree(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``: a rename when ``dest`` does not exist, else folder by folder
    (files of ``src`` replace files of ``dest``; everything else in ``dest`` stays)."""
    if not dest.exists() and not dest.is_symlink():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(src, dest)
            return
        except OSError:
            if not dest.exists():  # not a concurrent fetch that created dest meanwhile
                raise
    if src.is_dir() and not src.is_symlink():
        if not dest.is_dir():
            raise FetchError(dest, f"exists as a file but the archive has a folder {src.name}/")
        for child in sorted(src.iterdir()):
            merge_tree(child, dest / child.name)
        src.rmdir()
        return
    if dest.is_dir() and not dest.is_symlink():
        raise FetchError(dest, f"exists as a folder but the archive has a file {src.name}")
    os.replace(src, dest)


@contextlib.contextmanager
def temp_folder_beside(dest: Path, label: str):
    """A fresh folder ``<dest.parent>/.kdseg-extract-<label>-*`` (same file system as ``dest``),
    removed afterwards whatever happens; stale ones of the same label are removed first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f"{TEMP_PREFIX}{label}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{label}-", dir=dest.parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def extract_and_place(
    archive: Path, kind: str, dest: Path, anchor: str | None, started_marker: Path
) -> None:
    """Extract ``archive`` beside ``dest`` and move its ``anchor`` folder's content to ``dest``.

    ``started_marker`` is written before anything is moved into ``dest`` and removed by the
    caller once the archive is recorded as placed: while it exists, ``dest`` may hold a partial
    merge, so the caller must not trust ``present`` paths.
    """
    with temp_folder_beside(dest, archive.name) as work:
        extract_archive(archive, work, kind)
        src = find_anchor(work, anchor, archive)
        started_marker.parent.mkdir(parents=True, exist_ok=True)
        started_marker.write_text(str(archive) + "\n")
        merge_tree(src, dest)


def place_file(src: Path, dest: Path, move: bool) -> None:
    """Put a plain downloaded file at ``dest`` atomically (rename when possible, else a copy to a
    temporary sibling followed by a rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if move:
        with contextlib.suppress(OSError):
            os.replace(src, dest)
            return
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if move:
        src.unlink()
