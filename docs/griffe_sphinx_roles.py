"""A Griffe extension for this site: render the docstrings' Sphinx markup as Markdown.

The package's docstrings follow Pyro's Sphinx style (``:math:`...```, ``.. math::``,
``:class:`...```). mkdocstrings parses their ``:param:`` fields but passes the text through as
Markdown, where those roles would show verbatim. This rewrites them before rendering: inline math
to ``\\( \\)`` and display math to ``$$ $$`` (both rendered by ``pymdownx.arithmatex`` and
KaTeX), cross-reference roles to code spans, ``.. warning::``/``.. note::`` directives to
admonitions, and literal blocks introduced by ``::`` (``Example::``) to fenced code blocks.

Griffe's Sphinx parser also takes every line up to the next field as part of the field above it,
so a paragraph after the ``:param:`` list (Pyro's usual closing remarks and ``Example::``) would
be swallowed into the last parameter's description. The extension splits such a tail off and
renders it as its own text section after the parameters, where Sphinx shows it.
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


_DIRECTIVE = re.compile(r"^(\s*)\.\. (warning|note|seealso|tip|danger|important)::\s*(.*)$")


def _indented_block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines from ``start`` that are blank or indented deeper than ``indent``, dedented."""
    end = start
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    block = lines[start:end]
    while block and not block[0].strip():
        block = block[1:]
    depth = min((len(b) - len(b.lstrip()) for b in block if b.strip()), default=0)
    return [b[depth:] for b in block], end


def _directives(text: str) -> str:
    """``.. warning:: text`` (and its indented body) becomes a Markdown admonition."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent, kind, first = match.groups()
        body, i = _indented_block(lines, i + 1, len(indent))
        kind = {"seealso": "info"}.get(kind, kind)
        out.extend(["", f"{indent}!!! {kind}"])
        content = [first, *body] if first else body
        out.extend(f"{indent}    {line}" if line else "" for line in content)
        out.append("")
    return "\n".join(out)


def _literal_blocks(text: str) -> str:
    """A paragraph ending in ``::`` and its indented block become text and a fenced block."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::") or line.lstrip().startswith(".."):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        body, end = _indented_block(lines, i + 1, indent)
        if not any(b.strip() for b in body):
            out.append(line)
            i += 1
            continue
        # "Example::" reads "Example:"; "text::" after words reads "text:" as in Sphinx.
        head = line.rstrip()[:-1]
        language = "pycon" if body and body[0].lstrip().startswith(">>>") else "python"
        pad = " " * indent
        out.extend([head, "", f"{pad}```{language}", *(pad + b for b in body), f"{pad}```", ""])
        i = end
    return "\n".join(out)


def rewrite(text: str) -> str:
    text = _display_math(text)
    text = _INLINE_MATH.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    text = _ROLE.sub(_role, text)
    text = _directives(text)
    return _literal_blocks(text)


def split_tail(text: str) -> tuple[str, str]:
    """Split a docstring into its part up to the end of its field list, and what follows.

    A field list ends at the first line that is neither blank, nor indented (a field's
    continuation), nor a new ``:field:`` line.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r":\w[^:]*:", line)), None)
    if start is None:
        return text, ""
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith((" ", "\t", ":")):
            return "\n".join(lines[:i]).rstrip(), "\n".join(lines[i:]).strip()
    return text, ""


class SphinxRoles(griffe.Extension):
    """Rewrite every docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        docstring.value = rewrite(docstring.value)
        head, tail = split_tail(docstring.value)
        if not tail:
            return
        # Parse the head with the configured parser and add the tail as a closing text section.
        head_only = griffe.Docstring(
            head,
            lineno=docstring.lineno,
            endlineno=docstring.endlineno,
            parent=obj,
            parser=docstring.parser,
            parser_options=docstring.parser_options,
        )
        sections = head_only.parse()
        sections.append(griffe.DocstringSectionText(tail))
        # ``Docstring.parsed`` is a cached property: fill its cache with the sections.
        docstring.__dict__["parsed"] = sections
