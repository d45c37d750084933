"""The package layout: kdseg's namespace mapping and no shadowing of PyPI names."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, str]:
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = cfg["package-dir"]
    out = {}
    for pkg in cfg["packages"]:
        parts = pkg.split(".")
        for cut in range(len(parts), 0, -1):  # longest mapped prefix decides the folder
            head = ".".join(parts[:cut])
            if head in dirs:
                out[pkg] = str(Path(dirs[head], *parts[cut:]))
                break
    return out


def test_every_package_folder_is_declared():
    declared = set(_declared().values())
    roots = {"kdseg", "datasets", "methods"}
    found = {
        str(p.parent.relative_to(REPO))
        for root in roots
        for p in (REPO / root).rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found == declared, f"add to / remove from pyproject packages: {found ^ declared}"


def test_declared_packages_import():
    for pkg in _declared():
        importlib.import_module(pkg)


def _run_from_repo_root(code: str, extra_path: Path | None = None) -> str:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_top_level_folders_do_not_shadow_pypi_packages(tmp_path):
    """From the repository root (cwd first on sys.path) `import datasets` gets the PyPI one."""
    fake = tmp_path / "site"
    for name in ("datasets", "methods"):
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(f"WHO = 'pypi-{name}'\n")
    code = "import datasets, methods, kdseg.datasets; print(datasets.WHO, methods.WHO)"
    assert _run_from_repo_root(code, fake) == "pypi-datasets pypi-methods"


def test_top_level_folders_absent_without_pypi_package():
    code = (
        "import importlib\n"
        "try:\n    print(importlib.import_module('datasets').__file__)\n"
        "except ModuleNotFoundError as e:\n    print('missing')\n"
        "import kdseg.datasets.semantickitti; print('kdseg-ok')"
    )
    first, second = _run_from_repo_root(code).split()
    assert second == "kdseg-ok"
    assert first == "missing" or not first.startswith(str(REPO)), first


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    from kdseg.io import atomic_open, write_text

    target = tmp_path / "out.json"
    write_text(target, "old")
    try:
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    mode = target.stat().st_mode & 0o777
    assert mode & 0o044, f"written files must be readable by others per umask, got {oct(mode)}"
