"""The output folder of a grid: the manifest and one record per cell, written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..results import finite
from .cells import GRID_FORMAT, Cell, grid_id


class GridFolder:
    """The output folder of a grid: ``grid.json`` (the cells) and ``cells/<id>.json`` records.

    :param path: the folder (created if needed).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.cells_dir = self.path / "cells"
        self.manifest = self.path / "grid.json"

    def claim(self, cells: Sequence[Cell], force: bool = False) -> None:
        """Make the folder this grid's, refusing one that holds another grid's records.

        :raises ValueError: if the folder holds records of a different grid and not ``force``.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"out must be a folder; {self.path} is a file")
        this = grid_id(cells)
        if self.manifest.exists():
            try:
                data = json.loads(self.manifest.read_text())
                other = data.get("grid_id")
                other_n = len(data.get("cells", []))
            except (OSError, ValueError, AttributeError):
                other, other_n = None, "?"
            if other != this and not force:
                raise ValueError(
                    f"out folder {self.path} holds records of a different grid ({other_n} "
                    f"cells, grid id {other}; this grid: {len(cells)} cells, grid id {this}); "
                    "choose another folder, or pass --force (force=True) to run this grid "
                    "there (records of cells in both grids are reused, none is deleted)"
                )
        elif self.cells_dir.exists() and any(self.cells_dir.glob("*.json")) and not force:
            raise ValueError(
                f"out folder {self.path} holds cell records but no grid.json; choose another "
                "folder, or pass --force (force=True)"
            )
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": GRID_FORMAT,
            "grid_id": this,
            "cells": [c.to_dict() for c in cells],
        }
        _atomic_write(self.manifest, json.dumps(manifest, indent=1) + "\n")

    def record_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.json"

    def read(self, cell_id: str) -> dict[str, Any] | None:
        """The record of a cell, or ``None`` if it has none (or an unreadable one)."""
        path = self.record_path(cell_id)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != GRID_FORMAT:
            return None
        return record

    def write(self, record: dict[str, Any]) -> Path:
        """Write a record (atomically); a record of a cell that ran is never replaced.

        Draws, if any, go to ``cells/<id>.npy`` first, so that a record on disk always has them.
        """
        path = self.record_path(record["id"])
        existing = self.read(record["id"])
        if existing is not None and existing["status"] == "ok":
            return path
        record = dict(record)
        draws = record.pop("draws", None)
        if draws is not None:
            import numpy as np

            tmp = path.with_suffix(".npy.tmp")
            with tmp.open("wb") as f:
                np.save(f, np.asarray(draws))
            os.replace(tmp, path.with_suffix(".npy"))
            record["draws_file"] = path.with_suffix(".npy").name
        _atomic_write(path, json.dumps(finite(record), indent=1) + "\n")
        return path


def _atomic_write(path: Path, text: str) -> None:
    # A killed run leaves either the old file or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_records(out: str | Path) -> list[dict[str, Any]]:
    """The records of the grid in folder ``out``, in the order of its ``grid.json``."""
    folder = GridFolder(out)
    if not folder.manifest.exists():
        raise ValueError(f"{folder.path} holds no grid (no grid.json)")
    cells = [Cell.from_dict(c) for c in json.loads(folder.manifest.read_text())["cells"]]
    return [r for r in (folder.read(c.id) for c in cells) if r is not None]


__all__ = ["GridFolder", "load_records"]
