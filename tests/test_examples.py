"""Every example runs in --quick mode and writes the figures the documentation shows.

The scripts run in subprocesses, as a user runs them, from the repository root. Each writes into
a temporary folder, never into docs/figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

#: The figures each example must write.
FIGURES = {
    "euler_vs_leapfrog.py": ["euler_vs_leapfrog.png"],
    "correlated_gaussian.py": ["correlated_gaussian.png", "hmc_vs_rw_traces.png"],
    "scaling.py": ["scaling.png"],
    "tuning.py": ["tuning.png"],
    "swap_kernels.py": ["swap_kernels.png"],
    "constrained_trajectory.py": ["constrained_trajectory.png"],
    "custom_kernel.py": ["custom_kernel.png"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(FIGURES)


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_example_runs_quick_and_writes_its_figures(script, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for figure in FIGURES[script]:
        path = tmp_path / figure
        assert path.is_file(), f"{script} did not write {figure}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
