"""Training checkpoints: one atomic ``torch.save`` of everything a bit-exact resume needs.

Contents (all ``torch.load(..., weights_only=True)``-loadable: tensors, dicts, lists, numbers,
strings, None):

``format``      int, :data:`CHECKPOINT_FORMAT` (2; format 1 kept the final checkpoint of a finished
                run, format 2 removes it once the run is evaluated, so a checkpoint on disk is
                always a resume point; format-1 files are still read)
``step``        int, iterations completed (the next iteration to run)
``model``       ``method.state_dict()`` (the EMA teacher is not part of it, see ``ema``)
``optimizer``   optimizer state dict
``scheduler``   LR scheduler state dict (``LambdaLR``: plain numbers)
``ema``         :meth:`kdseg.ema.EmaTeacher.state_dict` or None
``rng``         :func:`kdseg.seeding.capture_rng_state` at the step boundary
``config``      the :class:`~kdseg.trainer.TrainerConfig` as a dict of plain values
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kdseg.errors import ConfigError, DataFormatError
from kdseg.io import atomic_open
from kdseg.seeding import capture_rng_state

CHECKPOINT_FORMAT: int = 2
READABLE_FORMATS: tuple[int, ...] = (1, 2)
CHECKPOINT_NAME: str = "checkpoint_last.pt"
REQUIRED_KEYS: tuple[str, ...] = (
    *("format", "step", "model", "optimizer"),
    *("scheduler", "ema", "rng", "config"),
)


class StepBoundary:
    """State at the start of iteration :attr:`step` that a forward pass may already have changed.

    An interrupt (e.g. ``KeyboardInterrupt``) that lands inside ``training_step`` or ``backward``
    finds the global RNGs advanced and the module's buffers (BatchNorm running statistics)
    updated, while parameters, optimizer and scheduler are still those of the boundary.
    :meth:`rollback` undoes the former so that the checkpoint describes the boundary exactly.
    Method state held outside registered buffers is not covered.
    """

    def __init__(self) -> None:
        self.step = -1
        self.rng: dict[str, Any] = {}
        self.buffers: dict[str, torch.Tensor] = {}

    def capture(self, step: int, module: torch.nn.Module) -> None:
        """Remember RNG states and copies of ``module``'s buffers at the start of ``step``."""
        self.step = step
        self.rng = capture_rng_state()
        self.buffers = {name: buf.detach().clone() for name, buf in module.named_buffers()}

    @torch.no_grad()
    def rollback(self, module: torch.nn.Module) -> dict[str, Any]:
        """Restore the buffers of ``module``; returns the RNG state of the boundary."""
        for name, buf in module.named_buffers():
            if name in self.buffers:
                buf.copy_(self.buffers[name])
        return self.rng


def checkpoint_path(out_dir: str | Path) -> Path:
    """Where the Trainer keeps the latest checkpoint of a run."""
    return Path(out_dir) / CHECKPOINT_NAME


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (a killed job never leaves a half-written checkpoint)."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; bad files raise ``DataFormatError``."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/foreign files
        problem = f"cannot load checkpoint: {type(exc).__name__}: {exc}"
        raise DataFormatError(path, problem) from None
    if not isinstance(state, dict):
        raise DataFormatError(path, f"expected a dict, found {type(state).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise DataFormatError(path, f"not a kdseg training checkpoint (missing keys {missing})")
    if state["format"] not in READABLE_FORMATS:
        raise DataFormatError(
            path, f"checkpoint format {state['format']} is not one of {list(READABLE_FORMATS)}"
        )
    return state


def check_resumable(
    saved: dict[str, Any], current: dict[str, Any], path: str | Path, operational: frozenset[str]
) -> None:
    """Raise ``ConfigError`` naming the first key (outside ``operational``) whose value differs
    between the checkpoint's config ``saved`` and the run's config ``current``."""
    for key, value in current.items():
        if key not in operational and saved.get(key) != value:
            raise ConfigError(
                key,
                f"checkpoint {path} was written with {saved.get(key)!r}, the config says "
                f"{value!r}; use another out_dir or fit(resume=False)",
            )
