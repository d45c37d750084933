"""Types of the dataset catalog (:mod:`kdseg.fetch.catalog`): checksums, files, gates, datasets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import FetchError

RECORD_NAME = ".kdseg-fetched.json"
ALGORITHMS = {"sha256": 64, "sha1": 40, "md5": 32}
GB, MB = 1_000_000_000, 1_000_000  # decimal units, as the spec gives sizes


@dataclass(frozen=True)
class Checksum:
    """A published digest: ``algorithm`` in sha256 | sha1 | md5, lower-case hex, its source."""

    algorithm: str
    hexdigest: str
    source: str

    def __post_init__(self) -> None:
        n = ALGORITHMS.get(self.algorithm)
        if n is None:
            raise ValueError(f"unknown checksum algorithm {self.algorithm!r}")
        if not re.fullmatch(f"[0-9a-f]{{{n}}}", self.hexdigest):
            raise ValueError(f"{self.algorithm} must be {n} lower-case hex digits")

    @classmethod
    def parse(cls, text: str, source: str = "command line") -> Checksum:
        """``"sha256:<hex>"`` (or sha1/md5) -> Checksum."""
        algorithm, _, digest = text.partition(":")
        try:
            return cls(algorithm.strip().lower(), digest.strip().lower(), source)
        except ValueError as exc:
            raise FetchError(text, f"not a checksum ({exc}); write ALGO:HEX") from None

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Attributes:
        name: file name in the downloads folder (``<data_root>/downloads`` by default).
        url: where it is published (gated files: where the download page points to).
        approx_bytes: rough size for messages (0: unknown); spec §7, SAM ViT-L/H third party.
        checksum: published digest, or None (only allowed for compressed archives).
        dest: where the content goes, relative to ``data_root``: the folder that receives the
            archive's ``anchor`` folder (or its top when ``anchor`` is None), or the file path of
            a plain (non-archive) file.
        anchor: name of the folder inside the archive whose content becomes ``dest``; found at
            any depth up to 3, so ``sequences/`` and ``dataset/sequences/`` both work.
        gated: only obtainable by hand (registration, terms of use).
        present: path (relative to ``data_root``) that shows this file's content is already in
            place, e.g. extracted by the user; such files are not required again.
        where: for gated files, where on the download page the file is.
        exact_bytes: exact size when known (checked before the checksum).
    """

    name: str
    url: str
    approx_bytes: int
    checksum: Checksum | None
    dest: str
    anchor: str | None = None
    gated: bool = False
    present: str | None = None
    where: str = ""
    exact_bytes: int | None = None

    @property
    def kind(self) -> str:
        """``"zip"``, ``"tar"`` or ``"file"`` (from the name)."""
        lower = self.name.lower()
        if lower.endswith(".zip"):
            return "zip"
        if re.search(r"\.(tar|tgz|tbz2|txz)$|\.tar\.(gz|bz2|xz)$", lower):
            return "tar"
        return "file"

    @property
    def compressed(self) -> bool:
        """Whether the format carries its own CRCs (zip, gzip, bzip2, xz)."""
        return self.kind == "zip" or (self.kind == "tar" and not self.name.lower().endswith(".tar"))


@dataclass(frozen=True)
class Gate:
    """How to obtain licence-gated files by hand."""

    licence: str
    register: str
    download_page: str
    extra_steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """One fetchable dataset.

    Attributes:
        name: CLI and rule name; the done record is ``<data_root>/<name>/.kdseg-fetched.json``.
        target: folder (relative to ``data_root``) that the layout check and the readers open.
        layout: the expected layout under ``data_root``, one line per part (docs, messages).
        check: name of its layout check in :data:`kdseg.fetch.layouts.CHECKS`.
        files: what to download or place, in extraction order (later files overwrite).
        gate: steps for the gated files (None when nothing is gated).
    """

    name: str
    title: str
    licence: str
    target: str
    layout: tuple[str, ...]
    check: str
    files: tuple[RemoteFile, ...]
    gate: Gate | None = None

    def record_path(self, data_root: str | Path) -> Path:
        return Path(data_root) / self.name / RECORD_NAME
