"""Shared fixtures: where the real sample data live (``<repo>/../shared/realdata``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("KDSEG_REALDATA", REPO_ROOT.parent / "shared" / "realdata"))


def realdata_path(*parts: str) -> Path:
    """Path under the real sample folder; skips the calling test (naming the path) if absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample data not found: {path} (set KDSEG_REALDATA)")
    return path


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread: with tiny tensors, intra-op threads only spin on a 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def semantickitti_root() -> Path:
    return realdata_path("semantickitti")
