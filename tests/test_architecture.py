"""The layering of docs/architecture.md, enforced on the source (every import, also the ones
inside functions) and on what a process really loads.

Layers, bottom up: core (``kdseg.*`` not listed below, ``kdseg.datasets``), methods
(``kdseg.methods``), the run (``kdseg.run``), the report (``kdseg.report``), and the entry
points (command line, workflow helpers). Core never imports methods, the report or anything
above it; methods never import the report or the entry points; the report never imports
training (torch, the Trainer, methods, models, inputs, teachers) nor MLflow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {
    "kdseg": REPO / "kdseg",
    "kdseg.datasets": REPO / "datasets",
    "kdseg.methods": REPO / "methods",
}
ENTRY = ("kdseg.cli", "kdseg.cli_parsers", "kdseg.commands", "kdseg.commands_registry")
ENTRY += ("kdseg.commands_tracking", "kdseg.workflow", "kdseg.fetch.cli")
ENTRY += ("kdseg.commands_continual", "kdseg.cli_parsers_continual", "kdseg.workflow_continual")
RUN = ("kdseg.run", "kdseg.run_continual")
TRAINING = ("torch", "kdseg.trainer", "kdseg.trainer_config", "kdseg.run", "kdseg.methods")
TRAINING += ("kdseg.teachers", "kdseg.ema", "kdseg.inputs", "kdseg.lidar_data", "kdseg.segmenter")
TRAINING += ("kdseg.models", "kdseg.sparse", "kdseg.optim", "kdseg.image2d", "kdseg.tracking")
TRAINING += ("mlflow",)


def _module_name(root: str, base: Path, path: Path) -> str:
    parts = [p for p in path.relative_to(base).with_suffix("").parts if p != "__init__"]
    return ".".join([root, *parts])


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def _modules() -> dict[str, set[str]]:
    out = {}
    for root, base in ROOTS.items():
        for path in sorted(base.rglob("*.py")):
            if root == "kdseg" and path.relative_to(base).parts[0] in ("datasets", "methods"):
                continue
            name = _module_name(root, base, path)
            out[name] = _imports(name, path)
    return out


MODULES = _modules()


def _layer(name: str) -> str:
    if _hits({name}, ENTRY):
        return "entry"
    if name in RUN:
        return "run"
    if name.startswith("kdseg.report"):
        return "report"
    if name.startswith("kdseg.methods"):
        return "methods"
    return "core"


def _hits(imports: set[str], modules: tuple[str, ...]) -> list[str]:
    """The imports that are one of ``modules`` or inside one of them."""
    return sorted(i for i in imports if any(i == m or i.startswith(m + ".") for m in modules))


def test_the_layers_are_known():
    layers = {_layer(m) for m in MODULES}
    assert layers == {"core", "methods", "run", "report", "entry"}
    assert len([m for m in MODULES if _layer(m) == "core"]) > 50


@pytest.mark.parametrize("name", sorted(MODULES))
def test_import_direction(name):
    layer, imports = _layer(name), MODULES[name]
    if layer == "core":
        assert not _hits(imports, ("kdseg.methods", "kdseg.report", *RUN, *ENTRY)), imports
    elif layer == "methods":
        assert not _hits(imports, ("kdseg.report", *RUN, *ENTRY)), imports
    elif layer == "report":
        assert not _hits(imports, TRAINING), imports


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_the_report_loads_no_training_and_tracking_no_torch():
    loaded = _loaded_after("import kdseg.report.cli, kdseg.report.collect, kdseg.record")
    assert not {"torch", "mlflow"} & loaded
    loaded = _loaded_after("import kdseg.tracking, kdseg.tracking.sync, kdseg.jobs")
    assert not {"torch", "mlflow", "matplotlib"} & loaded


def test_a_training_run_loads_only_what_it_uses(tmp_path):
    """Lever (a) of issue 11 item 10: no MLflow, no matplotlib, no pandas, no torch.compile
    machinery in a training process (docs/baselines.md measures the fixed cost)."""
    from kdseg.datasets.synthetic_street import StreetConfig, generate

    data = generate(tmp_path / "street", StreetConfig.for_scale("smoke"))
    args = ["train", "--data", str(data), "--budget", "scans-50", "--method", "mean_teacher"]
    args += ["--scale", "smoke", "--out", str(tmp_path / "run"), "--threads", "1"]
    loaded = _loaded_after(f"from kdseg.cli import main\nassert main({args!r}) == 0")
    assert not {"mlflow", "matplotlib", "pandas", "torch._dynamo", "sqlalchemy"} & loaded
    assert "kdseg.report" not in loaded
