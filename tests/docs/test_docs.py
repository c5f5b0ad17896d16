"""The documentation site builds in strict mode, and its figures are the examples' figures."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
    # Sphinx markup is rendered, not shown (directives become admonitions: see the unit test
    # below), and the closing paragraph and example of SimpleHMC come after its parameter list,
    # not inside the last parameter's description.
    # (the "source code" panels quote the docstrings verbatim: leave code out of the check).
    prose = re.sub(r"<(pre|code)[^>]*>.*?</\1>", "", api, flags=re.S)
    assert ".. warning::" not in prose and "Example::" not in prose and ":param " not in prose
    simple = api[api.index('id="pyro_simplehmc.SimpleHMC"') : api.index('id="pyro_simplehmc.MALA"')]
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


def python_blocks(text: str) -> list[str]:
    """Every ``python`` code block of a page, in order, those indented in admonitions included."""
    return [
        textwrap.dedent(match.group(2))
        for match in re.finditer(r"^( *)```python[^\n]*\n(.*?)^\1```", text, re.M | re.S)
    ]


#: Every page with Python code. Each page's blocks run in order in one namespace, as a reader
#: runs them top to bottom (the first block of a tutorial page is its setup).
PAGES = sorted(
    page.relative_to(DOCS).as_posix()
    for page in DOCS.rglob("*.md")
    if python_blocks(page.read_text())
)


def run_page(page: str, quick: bool) -> dict:
    import matplotlib
    import matplotlib.pyplot
    import pyro
    import torch

    from pyro_simplehmc.teaching import quick_runs

    matplotlib.use("Agg")
    pyro.set_rng_seed(0)
    namespace = {"__name__": "__page__"}
    # A page may change torch's default dtype (as a reader's session would); the next may not.
    dtype = torch.get_default_dtype()
    try:
        with quick_runs() if quick else contextlib.nullcontext():
            for index, block in enumerate(python_blocks((DOCS / page).read_text())):
                exec(compile(block, f"{page}, block {index}", "exec"), namespace)
    finally:
        torch.set_default_dtype(dtype)
        matplotlib.pyplot.close("all")
    return namespace


def test_the_block_finder_sees_indented_blocks():
    text = (
        "a\n```python\nx = 1\n```\n??? note\n    ```python\n    y = x\n    ```\n"
        "```bash\nls\n```\n"
    )
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]


@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_on_the_page_runs(page, tmp_path, monkeypatch):
    """Every Python block of every page, solutions included, in order; MCMC runs shortened."""
    monkeypatch.chdir(tmp_path)
    run_page(page, quick=True)


#: The pages whose full-length runs take longest (measured, in this order), first: with the test
#: workers of pytest-xdist they then run side by side with the shorter ones, not last.
LONGEST_PAGES = ["tutorial/nuts.md", "compare-your-model.md", "tutorial/divergences.md"]


@pytest.mark.slow
@pytest.mark.parametrize("page", LONGEST_PAGES + [p for p in PAGES if p not in LONGEST_PAGES])
def test_every_code_block_on_the_page_runs_in_full(page, tmp_path, monkeypatch):
    """The same at the lengths the pages give: the exercises' checks hold at full length too."""
    monkeypatch.chdir(tmp_path)
    run_page(page, quick=False)


def _notebook_maker():
    sys.path.insert(0, str(DOCS))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(DOCS))
    return make_notebooks


def test_every_tutorial_page_has_an_up_to_date_notebook_and_links_it():
    """docs/notebooks holds jupytext's conversion of each page; regenerate with make_notebooks."""
    pytest.importorskip("jupytext")
    maker = _notebook_maker()
    made = 0
    for page in maker.PAGES:
        text = maker.notebook_text(page)
        if text is None:
            continue
        made += 1
        path = maker.target(page)
        assert path.is_file() and path.read_text() == text, (
            f"{path.relative_to(ROOT)} is stale: run python docs/make_notebooks.py"
        )
        link = os.path.relpath(path, (DOCS / page).parent)
        assert f"]({link})" in (DOCS / page).read_text(), f"{page} does not link {link}"
    assert made >= 10


@pytest.mark.slow
def test_every_notebook_runs_in_its_quick_form():
    """Each generated notebook runs top to bottom in a Jupyter kernel, MCMC runs shortened."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    quick = nbformat.v4.new_code_cell(
        "import matplotlib\nmatplotlib.use('Agg')\n"
        "from pyro_simplehmc.teaching import quick_runs\n"
        # Keep the context manager referenced: a collected one would restore MCMC at once.
        "_quick_runs = quick_runs()\n_quick_runs.__enter__()"
    )
    failures = {}
    for path in sorted((DOCS / "notebooks").rglob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.insert(0, quick)
        client = nbclient.NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}}
        )
        try:
            client.execute()
        except Exception as error:  # report every notebook, not just the first failure
            failures[path.name] = str(error)[-1500:]
    assert not failures, failures
