"""A Griffe extension for this site: render the docstrings' Sphinx markup as Markdown.

The package's docstrings follow Pyro's Sphinx style (``:math:`...```, ``.. math::``,
``:class:`...```). mkdocstrings parses their ``:param:`` fields but passes the text through as
Markdown, where those roles would show verbatim. This rewrites them before rendering: inline math
to ``\\( \\)`` and display math to ``$$ $$`` (both rendered by ``pymdownx.arithmatex`` and
MathJax), cross-reference roles to code spans.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|ref):`(~?)([^`<]+?)(?:\s*<[^>]*>)?`")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    # "~a.b.C" shows as "C", as in Sphinx.
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _display_math(text: str) -> str:
    """Turn ``.. math:: expr`` (and its indented continuation lines) into a ``$$`` block."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if not stripped.startswith(".. math::"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        body = [stripped[len(".. math::") :].strip()]
        i += 1
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i].strip())
            i += 1
        expression = " ".join(part for part in body if part)
        out.extend(["", f"{indent}$$", f"{indent}{expression}", f"{indent}$$", ""])
    return "\n".join(out)


def rewrite(text: str) -> str:
    text = _display_math(text)
    text = _INLINE_MATH.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    return _ROLE.sub(_role, text)


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
