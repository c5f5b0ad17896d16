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

ROOT = Path(__file__).resolve().parents[2]
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
    "foundations.py": ["foundations.png"],
    "divergences.py": ["divergences.png"],
    "trajectory_length.py": ["trajectory_length.png"],
    "compare_model.py": ["compare_model_z.png", "compare_model_ess_per_eval.png"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(FIGURES)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every example at once (they are independent) and hand out the running processes.

    The scripts are mostly start-up time and single-threaded work, so running them side by side
    keeps this module's wall time close to that of the slowest one.
    """
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    started = {}
    for script in sorted(FIGURES):
        out = tmp_path_factory.mktemp(script.removesuffix(".py"))
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), "--quick", "--out", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[script] = (process, out)
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_example_runs_quick_and_writes_its_figures(script, runs):
    process, out = runs[script]
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout[-2000:] + stderr[-4000:]
    for figure in FIGURES[script]:
        path = out / figure
        assert path.is_file(), f"{script} did not write {figure}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
