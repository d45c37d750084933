"""Sparse-convolution backend selection.

kdseg ships one backend, ``"torch"``: the plain-PyTorch gather/matmul/scatter implementation of
this package. It runs on every device (CPU and CUDA; all its ops are device-agnostic) and is the
default everywhere. torchsparse and spconv are *detected* (:func:`available_backends`) so that
runs can log what a machine offers, but kdseg contains no adapter for them: asking for one raises
a :class:`~kdseg.errors.ConfigError` that says so. See docs/sparse.md for why (spconv is wrong on
CPU with more than one thread; neither library is installable on the development machines, so an
adapter could not be tested) and for how a cluster user installs torchsparse.

Selection: ``resolve_backend(requested)`` with ``requested`` from the config key
``sparse_backend`` or the environment variable ``KDSEG_SPARSE_BACKEND`` (``"auto"`` by default).
``"auto"`` and ``"torch"`` both give ``"torch"``.
"""

from __future__ import annotations

import importlib.util
import os

from kdseg.errors import ConfigError

KNOWN_BACKENDS: tuple[str, ...] = ("torch", "torchsparse", "spconv")
"""Names :func:`resolve_backend` understands (besides ``"auto"``)."""
IMPLEMENTED_BACKENDS: tuple[str, ...] = ("torch",)
"""Backends kdseg can run."""
ENV_VAR = "KDSEG_SPARSE_BACKEND"


def available_backends() -> dict[str, bool]:
    """Which backends are importable here (``"torch"`` always is); no import side effects."""
    return {
        "torch": True,
        "torchsparse": importlib.util.find_spec("torchsparse") is not None,
        "spconv": importlib.util.find_spec("spconv") is not None,
    }


def resolve_backend(requested: str | None = None) -> str:
    """Backend name to use for ``requested`` (``None``: ``$KDSEG_SPARSE_BACKEND`` or ``"auto"``).

    Raises:
        ConfigError: unknown name, or a known library for which kdseg has no adapter.
    """
    name = (requested or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if name in ("auto", "torch"):
        return "torch"
    if name not in KNOWN_BACKENDS:
        raise ConfigError(
            "sparse_backend", f"unknown backend '{name}'; known: auto, {', '.join(KNOWN_BACKENDS)}"
        )
    state = "installed" if available_backends()[name] else "not installed"
    raise ConfigError(
        "sparse_backend",
        f"'{name}' is {state}, but kdseg ships no adapter for it; implemented: "
        f"{', '.join(IMPLEMENTED_BACKENDS)} (see docs/sparse.md)",
    )
