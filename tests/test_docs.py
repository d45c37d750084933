"""The pages that describe the code keep to it: the worked example of docs/methods.md is the
file the tests run, and every module or test file the pages name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = ["architecture.md", "cluster.md", "methods.md", "tracking.md", "training.md", "workflow.md"]


def test_the_worked_example_is_the_tested_method():
    page = (REPO / "docs" / "methods.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    example = (REPO / "tests" / "kd_method.py").read_text()
    assert example in blocks, "docs/methods.md must quote tests/kd_method.py verbatim"
    code = [line for line in example.splitlines() if line.strip() and not line.startswith("#")]
    assert len(code) <= 45  # about 30 lines of method, imports included


@pytest.mark.parametrize("page", PAGES)
def test_named_files_exist(page):
    text = (REPO / "docs" / page).read_text()
    named = set(re.findall(r"`((?:kdseg|methods|tests|rules|datasets)/[\w/.-]+\.(?:py|smk))", text))
    missing = sorted(p for p in named if not (REPO / p).exists())
    assert not missing, f"docs/{page} names files that do not exist: {missing}"
