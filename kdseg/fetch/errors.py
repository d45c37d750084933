"""Errors of the fetch machinery. Each prints as one line naming the file, URL or dataset."""

from __future__ import annotations

from pathlib import Path

from kdseg.errors import DataFormatError, KdsegError


class FetchError(KdsegError):
    """A download or placement step failed (network, disk space, conflicting files)."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class VerificationError(DataFormatError):
    """A file's size or checksum differs from the catalog's."""


class UnsafeArchiveError(DataFormatError):
    """An archive member would land outside the target (absolute path, ``..``, link) or is a
    device file; nothing of the archive is kept."""


class CorruptArchiveError(DataFormatError):
    """An archive cannot be read to the end (truncated, bad CRC, not an archive)."""


class LicenceGated(KdsegError):
    """A dataset (or some of its files) can only be obtained by hand; ``steps`` says how."""

    def __init__(self, dataset: str, missing: list[str], steps: str) -> None:
        self.dataset = dataset
        self.missing = missing
        self.steps = steps
        what = ", ".join(missing) if missing else "its files"
        super().__init__(
            f"{dataset}: licence-gated, kdseg cannot download {what}; "
            "the steps to obtain it are printed above"
        )
