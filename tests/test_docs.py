"""The documentation site builds in strict mode, and its figures are the examples' figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"


def referenced_figures() -> set[str]:
    names = set()
    for page in DOCS.rglob("*.md"):
        names |= set(re.findall(r"figures/([\w\-]+\.png)", page.read_text()))
    return names


def test_mkdocs_builds_in_strict_mode(tmp_path):
    """A broken link, a missing page or figure, or an unresolved API reference fails."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "api" / "index.html").read_text()
    # The API reference is generated from the docstrings, math included.
    assert "record_trajectory" in api and "SimpleHMC" in api
    assert 'class="arithmatex"' in api


def test_every_shown_figure_is_committed_and_every_committed_figure_is_shown():
    shown = referenced_figures()
    committed = {p.name for p in FIGURES.glob("*.png")}
    assert shown, "no page shows a figure"
    assert shown <= committed, f"pages show figures that are missing: {shown - committed}"
    assert committed <= shown, f"figures no page shows: {committed - shown}"


def test_figures_are_small():
    total = sum(p.stat().st_size for p in FIGURES.glob("*.png"))
    assert total < 3_000_000, f"docs/figures holds {total / 1e6:.1f} MB"


def test_every_figure_is_made_by_an_example():
    made = set()
    for script in (ROOT / "examples").glob("*.py"):
        made |= set(re.findall(r"[\"']([\w\-]+\.png)[\"']", script.read_text()))
    assert referenced_figures() <= made, referenced_figures() - made


#: Code blocks that run as they stand (page, index of the ```python block on the page). The
#: others are excerpts of the package's source or need a user's model and data.
RUNNABLE = [
    ("tutorial/hamiltonian-dynamics.md", 0),
    ("tutorial/leapfrog.md", 1),
    ("tutorial/constrained.md", 0),
]


@pytest.mark.parametrize(("page", "index"), RUNNABLE)
def test_tutorial_code_runs(page, index):
    """The snippets a reader copies first keep working as the API changes."""
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    exec(compile(blocks[index], f"{page}[{index}]", "exec"), {"__name__": "snippet"})
