"""SIGTERM handled like SIGINT: both become an exception the Trainer checkpoints on.

SLURM, Snakemake and ``kill`` stop a job with SIGTERM, whose default action ends the process at
once (no checkpoint, no MLflow status). :func:`handle_signals` (used by the ``kdseg`` command
line for the whole command) turns SIGTERM into :class:`Terminated`, a ``KeyboardInterrupt``
subclass, so every ``except KeyboardInterrupt``/``except BaseException`` path that SIGINT takes
(the Trainer's checkpoint on exit, MLflow's ``KILLED`` status) serves SIGTERM too.

Inside :func:`deferred_signals` (the Trainer wraps the few lines of each optimizer update with
it) a signal is remembered and raised when the block ends, so an interrupt never lands between
``optimizer.step()`` and the end of the EMA update, where no consistent checkpoint exists.
Outside :func:`handle_signals` deferral is a no-op and SIGINT keeps Python's behaviour.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: exit status of a process stopped by a signal (the shell's convention: 128 + signal number)
SIGNAL_EXIT_BASE = 128


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (or another handled signal that is not SIGINT)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = int(signum)
        super().__init__(f"terminated by {signal.Signals(self.signum).name}")


class _State:
    installed = 0  # nesting depth of handle_signals
    critical = 0  # nesting depth of deferred_signals
    pending: int | None = None


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception a signal turns into: ``KeyboardInterrupt`` for SIGINT, else ``Terminated``."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def signal_of(exc: BaseException) -> int:
    """The signal number an interrupt stands for (SIGINT for a plain ``KeyboardInterrupt``)."""
    return exc.signum if isinstance(exc, Terminated) else int(signal.SIGINT)


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.critical:
        if _State.pending is None:
            _State.pending = signum
        return
    raise interruption(signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into interrupts for the duration of the block (main thread only;
    elsewhere, where Python cannot install handlers, the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _State.installed += 1
    try:
        yield
    finally:
        _State.installed -= 1
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold a signal that arrives inside the block until the block has ended, then raise it."""
    _State.critical += 1
    try:
        yield
    finally:
        _State.critical -= 1
        if not _State.critical and _State.pending is not None:
            signum, _State.pending = _State.pending, None
            raise interruption(signum)
