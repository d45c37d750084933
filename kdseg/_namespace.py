"""Keep the repository's top-level ``datasets/`` and ``methods/`` folders from shadowing PyPI.

Their import names are ``kdseg.datasets`` and ``kdseg.methods`` (setuptools ``package-dir``).
When the repository root itself is on ``sys.path`` (``python -c`` or ``python -m`` run from the
root), Python would also find them as top-level ``datasets``/``methods`` and hide, for example,
HuggingFace ``datasets`` (which MLflow imports). :func:`step_aside` is called by those folders'
``__init__.py``: under a top-level name it loads the next package of that name on ``sys.path``
(or raises ``ModuleNotFoundError`` as if the folder were not there).
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import PathFinder
from pathlib import Path


def step_aside(name: str, init_file: str) -> None:
    """Replace ``sys.modules[name]`` by the first ``name`` found outside this repository."""
    repo = Path(init_file).resolve().parents[1]
    others = [p for p in sys.path if Path(p or ".").resolve() != repo]
    spec = PathFinder.find_spec(name, others)
    if spec is None or spec.loader is None:
        del sys.modules[name]
        raise ModuleNotFoundError(
            f"No module named {name!r} (the folder {repo / name} is imported as kdseg.{name})",
            name=name,
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
