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
    # Sphinx markup is rendered, not shown: the warning is an admonition, and the closing
    # paragraph and example of SimpleHMC come after its parameter list, not inside the last one.
    simple = api[api.index('id="pyro_simplehmc.SimpleHMC"') : api.index('id="pyro_simplehmc.MALA"')]
    assert ".. warning::" not in simple and "Example::" not in simple
    assert 'class="admonition warning"' in simple
    last_parameter = simple.index("num_steps_jitter</code></b>")
    closing = simple.index("The other arguments are those of")
    assert closing > simple.index("</ul>", last_parameter)


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


def _griffe_extension():
    sys.path.insert(0, str(DOCS))
    try:
        import griffe_sphinx_roles
    finally:
        sys.path.remove(str(DOCS))
    return griffe_sphinx_roles


def test_sphinx_docstrings_become_markdown():
    """Directives become admonitions, ``Example::`` a fenced block, roles code, maths delimited."""
    pytest.importorskip("griffe")
    ext = _griffe_extension()
    text = ext.rewrite(
        "Intro :math:`x^2` and :class:`~a.b.C`.\n\n"
        ".. warning:: Careful\n    with this.\n\n"
        "Example::\n\n    >>> f(1)\n    2\n"
    )
    assert "\\(x^2\\)" in text and "`C`" in text
    assert "!!! warning\n    Careful\n    with this." in text
    assert "Example:\n\n```pycon\n>>> f(1)\n2\n```" in text
    assert ".. warning::" not in text and "Example::" not in text


def test_text_after_the_field_list_is_split_off():
    """Griffe would read the closing paragraph as part of the last parameter's description."""
    pytest.importorskip("griffe")
    ext = _griffe_extension()
    head, tail = ext.split_tail(
        "Summary.\n\n:param a: first,\n    continued.\n:param b: second.\n\nClosing words.\n"
    )
    assert head.endswith(":param b: second.") and tail == "Closing words."
    assert ext.split_tail("No fields.\n\nAt all.") == ("No fields.\n\nAt all.", "")
