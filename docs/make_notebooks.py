"""Generate a Jupyter notebook from every tutorial page, with jupytext.

Each page's Markdown becomes Markdown cells and each of its top-level ``python`` blocks a code
cell, in order (the collapsed solutions of the exercises stay in the Markdown, for the reader to
try first). The notebooks are committed under ``docs/notebooks/`` so that the site can link
them; ``tests/test_docs.py`` checks that they are up to date and, in the slow suite, executes
them. Run from the repository root after editing a page::

    python docs/make_notebooks.py
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
NOTEBOOKS = DOCS / "notebooks"
#: The pages that become notebooks: the tutorial, and what it starts from.
PAGES = [
    "before-you-start.md",
    *sorted(f"tutorial/{path.name}" for path in (DOCS / "tutorial").glob("*.md")),
]


def notebook_text(page: str) -> str | None:
    """The notebook for ``page`` as JSON text, or None for a page without Python code."""
    import jupytext

    notebook = jupytext.reads((DOCS / page).read_text(), fmt="md")
    if not any(cell.cell_type == "code" for cell in notebook.cells):
        return None
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, cell in enumerate(notebook.cells):
        cell.metadata = {}
        cell["id"] = f"cell-{index}"  # stable ids: regenerating changes nothing
    return jupytext.writes(notebook, fmt="ipynb").rstrip("\n") + "\n"


def target(page: str) -> Path:
    return NOTEBOOKS / Path(page).with_suffix(".ipynb")


def main() -> int:
    written = 0
    for page in PAGES:
        text = notebook_text(page)
        if text is None:
            continue
        path = target(page)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            written += 1
    print(f"{written} notebook(s) written to {NOTEBOOKS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
