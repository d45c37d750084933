"""Exceptions raised on bad input. Each message names the offending file or key."""

from __future__ import annotations

from pathlib import Path


class KdsegError(Exception):
    """Base class of the project's own errors."""


class DataFormatError(KdsegError, ValueError):
    """A data file is missing, corrupt or inconsistent with its companions."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(KdsegError, ValueError):
    """A configuration key or value is invalid."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config key '{key}': {problem}")
