"""The command line, end to end in ``--quick`` mode."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from pyro_simplehmc.cli import main

COMPARISON_FILES = [
    "correlated_gaussian.txt",
    "correlated_gaussian.csv",
    "correlated_gaussian.json",
    "correlated_gaussian_traces.png",
    "correlated_gaussian_scatter.png",
    "correlated_gaussian_ess_per_eval.png",
]
SCALING_FILES = [
    "scaling.txt",
    "scaling.csv",
    "scaling.json",
    "scaling_ess_per_eval.png",
    "scaling_median_ess_per_eval.png",
    "scaling_acceptance.png",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_validate_quick_as_module_writes_table_csv_json_and_figures(tmp_path):
    out = tmp_path / "report"
    command = [sys.executable, "-m", "pyro_simplehmc", "validate", "--quick", "--no-progress"]
    completed = subprocess.run(
        [*command, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode in (0, 1), completed.stderr  # 1: a kernel marked FAIL
    assert f"written to {out}" in completed.stdout
    for name in COMPARISON_FILES + SCALING_FILES:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_MAGIC
    table = (out / "correlated_gaussian.txt").read_text()
    assert table in completed.stdout
    for kernel in ("RandomWalkMH", "MALA", "SimpleHMC", "NUTS", "HMC", "RandomWalkKernel"):
        assert kernel in table
    rows = list(csv.DictReader((out / "correlated_gaussian.csv").open()))
    assert len(rows) == 6 and {r["status"] for r in rows} <= {"PASS", "FAIL"}
    report = json.loads((out / "correlated_gaussian.json").read_text())
    assert report["num_samples"] == 200 and len(report["results"]) == 6
    scaling = json.loads((out / "scaling.json").read_text())
    assert scaling["settings"]["dims"] == [2, 10]
    assert set(scaling["slopes_min_ess"]) == {"RandomWalkMH", "MALA", "SimpleHMC", "NUTS"}


def test_compare_subcommand_in_process(tmp_path, capsys):
    status = main(
        [
            *("compare", "--target", "diagonal_gaussian", "--dim", "3"),
            *("--kernels", "RandomWalkMH", "MALA", "--num-samples", "100"),
            *("--warmup-steps", "50", "--no-progress", "--no-figures", "--out", str(tmp_path)),
        ]
    )
    assert status in (0, 1)
    assert (tmp_path / "diagonal_gaussian.csv").is_file()
    assert not list(tmp_path.glob("*.png"))
    assert "diagonal_gaussian" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--target", "banana", "--no-progress"],
        ["compare", "--kernels", "Gibbs", "--no-progress"],
        ["scaling", "--dims", "0", "--no-progress"],
    ],
)
def test_bad_input_is_an_error_message_not_a_traceback(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simplehmc: error:") and "Traceback" not in err


def test_console_script_is_installed():
    path = shutil.which("simplehmc")
    if path is None:
        pytest.skip("the package is not installed with its console script")
    completed = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0
    for command in ("validate", "compare", "scaling", "chapter"):
        assert command in completed.stdout
