"""Sparse-convolution backend selection.

Two backends run kdseg's ``Conv3d``:

* ``"torch"``: the plain-PyTorch implementation of this package (sorted keys + searchsorted
  kernel maps, gather / matrix multiply / scatter). Every device; the default on the CPU.
* ``"spconv"``: spconv 2.x (:mod:`kdseg.sparse.spconv_backend`), the default on CUDA when
  spconv is importable. On the CPU it is refused with more than one torch thread (its results
  are wrong then) and it cannot train (its backward needs a GPU).

torchsparse is detected (:func:`available_backends`) but has no adapter: it is not on PyPI and
could not be installed or tested here; asking for it raises a :class:`~kdseg.errors.ConfigError`
(docs/sparse.md says how a cluster user installs it).

Selection: ``$KDSEG_SPARSE_BACKEND`` (``auto``, ``torch``, ``spconv``), or :func:`use_backend`
around a block (tests); ``auto`` (the default) picks per device as above. Every conv resolves it
once per call, so a run's choice is whatever the environment says when it starts (recorded in
the run's ``metrics.json`` as ``config.sparse_backend``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from kdseg.errors import ConfigError

KNOWN_BACKENDS: tuple[str, ...] = ("torch", "torchsparse", "spconv")
"""Names :func:`resolve_backend` understands (besides ``"auto"``)."""
IMPLEMENTED_BACKENDS: tuple[str, ...] = ("torch", "spconv")
"""Backends kdseg can run."""
ENV_VAR = "KDSEG_SPARSE_BACKEND"


@functools.cache
def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def available_backends() -> dict[str, bool]:
    """Which backends are importable here (``"torch"`` always is); no import side effects."""
    return {
        "torch": True,
        "torchsparse": _importable("torchsparse"),
        "spconv": _importable("spconv"),
    }


_OVERRIDE: list[str] = []


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the enclosed block with backend ``name`` (``auto``, ``torch`` or ``spconv``)."""
    resolve_backend(name)  # validates
    _OVERRIDE.append(name)
    try:
        yield
    finally:
        _OVERRIDE.pop()


def resolve_backend(requested: str | None = None, device: torch.device | None = None) -> str:
    """Backend for ``requested`` on ``device``.

    ``requested`` ``None``: the innermost :func:`use_backend`, else ``$KDSEG_SPARSE_BACKEND``,
    else ``"auto"``. ``auto`` gives ``"spconv"`` on a CUDA device when spconv is importable and
    ``"torch"`` otherwise (also when ``device`` is ``None``).

    Raises:
        ConfigError: unknown name, spconv requested but not installed, or torchsparse (no
            adapter).
    """
    if requested is None:
        requested = _OVERRIDE[-1] if _OVERRIDE else os.environ.get(ENV_VAR)
    name = (requested or "auto").strip().lower()
    if name == "auto":
        on_cuda = device is not None and device.type == "cuda"
        return "spconv" if on_cuda and available_backends()["spconv"] else "torch"
    if name == "torch":
        return "torch"
    if name not in KNOWN_BACKENDS:
        raise ConfigError(
            "sparse_backend", f"unknown backend '{name}'; known: auto, {', '.join(KNOWN_BACKENDS)}"
        )
    if not available_backends()[name]:
        raise ConfigError("sparse_backend", f"'{name}' is not installed (see docs/sparse.md)")
    if name not in IMPLEMENTED_BACKENDS:
        raise ConfigError(
            "sparse_backend",
            f"'{name}' is installed, but kdseg ships no adapter for it; implemented: "
            f"{', '.join(IMPLEMENTED_BACKENDS)} (see docs/sparse.md)",
        )
    return name
