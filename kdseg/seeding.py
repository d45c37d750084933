"""Deterministic seeding and capture/restore of the global random number generators.

Covered: Python's ``random``, NumPy's legacy global generator (``np.random.*``) and torch's CPU
and CUDA default generators. Not covered: ``np.random.Generator`` objects and ``torch.Generator``
objects created by user code — data pipelines should derive those from ``(seed, step)``, which is
what makes a resumed run exact without saving them.

Captured states contain only ints, floats, strings, lists and tensors, so a checkpoint holding them
loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and all CUDA devices) and make cuDNN deterministic.

    ``torch.use_deterministic_algorithms`` is deliberately not switched on: it is a process-wide
    setting that makes some CUDA scatter kernels raise. On the CPU the suite's runs are
    bit-reproducible without it (tested in ``tests/test_trainer.py``).
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the legacy global generator is what we seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def capture_rng_state() -> dict[str, Any]:
    """The current state of all global generators (``weights_only``-loadable)."""
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generators captured by :func:`capture_rng_state`.

    CUDA states are restored only when the number of visible devices matches the capture;
    otherwise a ``RuntimeWarning`` says that the continuation will not be bit-exact.
    """
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    npst = state["numpy"]
    keys = np.asarray(npst["keys"].cpu().numpy(), dtype=np.uint32)
    np.random.set_state(  # noqa: NPY002
        (npst["name"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda", [])
    if cuda:
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have != len(cuda):
            warnings.warn(
                f"RNG state holds {len(cuda)} CUDA generator(s) but {have} device(s) are "
                "visible; CUDA generators not restored, the resumed run is not bit-exact",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
