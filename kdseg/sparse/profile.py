"""Per-phase timing of the PyTorch sparse backend (used by the benchmarks).

Inside ``with PhaseProfiler() as prof:`` the backend adds wall time to named phases:

* ``"kmap"``: building kernel maps and downsampled coordinate sets (cache misses only);
* ``"conv_fwd"`` / ``"conv_bwd"``: gather + matrix multiply + scatter of the sparse convs;

records the ``(pairs, C_in, C_out)`` shape of every conv forward in ``prof.conv_shapes``, and
counts floating-point operations in ``prof.flops`` (``2 * pairs * C_in * C_out`` per conv
forward, twice that per backward: input and weight gradients). On CUDA each phase synchronises
the device so the times are real (this slows the run down; use it for measurements only).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import torch

_ACTIVE: list[PhaseProfiler] = []


class PhaseProfiler:
    """Accumulates seconds per phase (``seconds``) and floating-point operations per phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.flops: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.conv_shapes: list[tuple[int, int, int]] = []
        """``(pairs, C_in, C_out)`` of every sparse conv forward run while active."""

    def __enter__(self) -> PhaseProfiler:
        _ACTIVE.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _ACTIVE.remove(self)

    def reset(self) -> None:
        """Forget everything measured so far."""
        self.seconds.clear()
        self.flops.clear()
        self.calls.clear()
        self.conv_shapes.clear()

    def gflops_per_second(self, phase: str) -> float:
        """Effective GFLOP/s of ``phase`` (0.0 if nothing was timed)."""
        t = self.seconds.get(phase, 0.0)
        return self.flops.get(phase, 0.0) / t / 1e9 if t > 0 else 0.0


def active() -> PhaseProfiler | None:
    """The innermost active profiler, or ``None`` (the fast path)."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextmanager
def phase(name: str, device: torch.device, flops: float = 0.0) -> Iterator[None]:
    """Time the enclosed block into phase ``name`` of the active profiler (no-op without one)."""
    prof = active()
    if prof is None:
        yield
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    try:
        yield
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        prof.seconds[name] += time.perf_counter() - start
        prof.flops[name] += flops
        prof.calls[name] += 1
