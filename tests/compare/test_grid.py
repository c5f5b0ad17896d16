"""Comparison grids: Dask against serial, resuming, failing cells, clusters, bad input, report."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pyro_simplehmc.cli.main import main
from pyro_simplehmc.compare.grid import (
    Cell,
    GridFolder,
    cells_from_spec,
    load_records,
    product_cells,
    replicate_seeds,
    run_grid,
    run_grid_cell,
    same_records,
)
from pyro_simplehmc.compare.grid_report import (
    cell_summary,
    format_grid_report,
    slope_summary,
    t_interval,
    table_rows,
)

distributed = pytest.importorskip("distributed", reason="the grid extra is not installed")

#: A small grid: 2 dims x 2 kernels x 2 seeds, each cell well under a second.
SMALL = {
    "targets": ["diagonal_gaussian"],
    "dims": [2, 5],
    "kernels": ["RandomWalkMH", "MALA"],
    "seeds": 2,
    "num_samples": 150,
    "warmup_steps": 50,
    "num_chains": 1,
}


def small_cells() -> list[Cell]:
    return cells_from_spec(SMALL)


@pytest.fixture(scope="module", autouse=True)
def _pickle_by_value():
    # Workers cannot import this test module: ship its functions (raising_task, ...) by value.
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    """A local cluster of 2 single-threaded worker processes, shared by this module's tests."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
    )
    with Client(cluster) as c:
        yield c
    cluster.close()


class Boom(RuntimeError):
    pass


def raising_task(cell: Cell) -> dict:
    """``run_grid_cell``, except that the kernel of the cells with seed 1 raises while sampling."""
    from pyro_simplehmc.compare import KernelSpec
    from pyro_simplehmc.compare.grid import kernel_spec, run_grid_cell

    if cell.seed != 1:
        return run_grid_cell(cell)
    spec = kernel_spec(cell.kernel, cell.settings)

    def make(problem, potential_fn):
        kernel = spec.build(problem, potential_fn)

        def sample(params):
            raise Boom("the kernel broke")

        kernel.sample = sample
        return kernel

    return run_grid_cell(cell, spec=KernelSpec(spec.name, make, spec.uses_gradient))


# ------------------------------------------------------------------------------- cells


def test_cells_are_the_product_and_replicates_share_no_chain_seed():
    cells = small_cells()
    assert len(cells) == 2 * 2 * 2
    assert replicate_seeds(0, 3, 2) == [0, 2, 4]  # chains 0-1, 2-3, 4-5
    assert {c.seed for c in cells} == {0, 1}  # one chain per cell
    assert len({c.id for c in cells}) == len(cells)
    # A target without a size gets one cell per kernel and seed, not one per size.
    assert len(product_cells(["correlated_gaussian"], ["MALA"], dims=[2, 5, 10])) == 1
    # The id is a function of the content only.
    a = Cell("funnel", "MALA", 3, settings={"step_size": 0.5, "full_mass": False})
    b = Cell("funnel", "MALA", 3, settings={"full_mass": False, "step_size": 0.5})
    assert a.id == b.id and a.id != Cell("funnel", "MALA", 4).id
    assert Cell.from_dict(a.to_dict()) == a


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (Cell("banana", "MALA"), "unknown target 'banana'"),
        (Cell("funnel", "Gibbs", 3), "unknown kernel 'Gibbs'"),
        (Cell("funnel", "MALA", 3, settings={"stepsize": 0.1}), "takes no setting(s) ['stepsize']"),
        (Cell("funnel", "SimpleHMC", 3, settings={"num_steps": 0}), "num_steps must be"),
        (Cell("funnel", "MALA", 0), "dim must be"),
        (Cell("funnel", "MALA", 3, num_samples=0), "num_samples must be"),
    ],
)
def test_a_bad_cell_is_refused_before_anything_runs(cell, message, tmp_path):
    with pytest.raises(ValueError, match=r"cell 1 \(") as info:
        run_grid([Cell("funnel", "MALA", 3), cell], tmp_path / "out", serial=True)
    assert message in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_spec_keys_are_named():
    with pytest.raises(ValueError, match="unknown grid spec key"):
        cells_from_spec({"target": ["funnel"]})
    with pytest.raises(ValueError, match="unknown cell field"):
        cells_from_spec({"cells": [{"target": "funnel", "kernel": "MALA", "sed": 1}]})


# ------------------------------------------------------------------------------- running


def test_local_cluster_gives_the_same_records_as_serial(tmp_path, client):
    cells = small_cells()
    serial = run_grid(cells, tmp_path / "serial", serial=True, progress=False)
    dask = run_grid(cells, tmp_path / "dask", client=client, progress=False)
    assert serial.ran == dask.ran == len(cells) and serial.failed == dask.failed == 0
    # Both workers took part, and every record agrees with the serial one but for the clock.
    assert len({r["pid"] for r in dask.records}) == 2
    for a, b in zip(serial.records, dask.records, strict=True):
        assert a["id"] == b["id"] and a["status"] == "ok"
        assert same_records(a, b), a["cell"]
    # What is on disk is what was returned.
    assert [r["id"] for r in load_records(tmp_path / "dask")] == [c.id for c in cells]
    for record in dask.records:
        on_disk = json.loads((tmp_path / "dask" / "cells" / f"{record['id']}.json").read_text())
        assert on_disk == record
    # The comparison must notice a difference: a record of another seed is not the same.
    assert not same_records(serial.records[0], serial.records[1])


def test_an_interrupted_grid_resumes_without_rerunning_finished_cells(tmp_path):
    cells = small_cells()
    out = tmp_path / "out"
    calls = []

    def interrupted(cell):
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the fourth cell runs
        calls.append(cell.id)
        return run_grid_cell(cell)

    with pytest.raises(KeyboardInterrupt):
        run_grid(cells, out, serial=True, progress=False, _task=interrupted)
    finished = {p.stem: p.read_bytes() for p in (out / "cells").glob("*.json")}
    assert set(finished) == set(calls) and len(finished) == 3
    # A run killed while writing leaves a temporary file, never a half record: it is ignored.
    (out / "cells" / f".{cells[5].id}.json.123.tmp").write_text('{"format": 1, "id"')

    rerun = []

    def counting(cell):
        rerun.append(cell.id)
        return run_grid_cell(cell)

    run = run_grid(cells, out, serial=True, progress=False, _task=counting)
    assert run.skipped == 3 and run.ran == len(cells) - 3
    assert set(rerun) == {c.id for c in cells} - set(calls)
    for cell_id, content in finished.items():
        assert (out / "cells" / f"{cell_id}.json").read_bytes() == content
    assert all(r is not None and r["status"] == "ok" for r in run.records)
    # A third run has nothing to do.
    assert run_grid(cells, out, serial=True, progress=False, _task=counting).ran == 0
    assert len(rerun) == len(cells) - 3


@pytest.mark.parametrize("mode", ["serial", "dask"])
def test_a_raising_cell_is_recorded_and_the_rest_completes(mode, tmp_path, request):
    cells = small_cells()
    where = {"serial": True} if mode == "serial" else {"client": request.getfixturevalue("client")}
    run = run_grid(cells, tmp_path, progress=False, _task=raising_task, **where)
    failed = [r for r in run.records if r["status"] == "error"]
    assert {r["cell"]["seed"] for r in failed} == {1} and len(failed) == len(cells) // 2
    assert all(r["status"] == "ok" for r in run.records if r["cell"]["seed"] != 1)
    assert run.failed == len(failed)
    for record in failed:
        assert record["error"] == "Boom: the kernel broke"
        assert "raise Boom" in record["traceback"]
    # A later run skips them too, unless asked to retry; a retry that works replaces them.
    assert run_grid(cells, tmp_path, serial=True, progress=False).ran == 0
    retried = run_grid(cells, tmp_path, serial=True, progress=False, retry_failed=True)
    assert retried.ran == len(failed) and retried.failed == 0


def test_a_record_of_a_cell_that_ran_is_never_overwritten(tmp_path):
    cell = small_cells()[0]
    folder = GridFolder(tmp_path)
    folder.claim([cell])
    good = run_grid_cell(cell)
    folder.write(good)
    content = folder.record_path(cell.id).read_bytes()
    bad = {**good, "status": "error", "result": None, "error": "RuntimeError: later failure"}
    folder.write(bad)
    assert folder.record_path(cell.id).read_bytes() == content
    # An error record, on the other hand, is replaced by a later success.
    folder.record_path(cell.id).write_text(json.dumps(bad))
    folder.write(good)
    assert folder.read(cell.id)["status"] == "ok"


@pytest.mark.slow  # about 45 s on 2 busy cores: a cluster, a death, a restarted worker
def test_a_worker_that_keeps_dying_is_reported(tmp_path):
    cells = small_cells()[:3]
    run = run_grid(
        cells, tmp_path, workers=2, retries=0, progress=False, echo=None, _task=dying_task
    )
    by_seed = {r["cell"]["seed"]: r for r in run.records}
    assert by_seed[1]["status"] == "error"
    assert "never returned" in by_seed[1]["error"] and "KilledWorker" in by_seed[1]["error"]
    assert by_seed[0]["status"] == "ok"


def dying_task(cell: Cell) -> dict:
    """Kills its worker process on the cell with seed 1."""
    if cell.seed == 1:
        os._exit(13)
    return run_grid_cell(cell)


def test_a_folder_of_another_grid_is_refused_unless_forced(tmp_path):
    cells = small_cells()
    run_grid(cells[:2], tmp_path, serial=True, progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "cells").iterdir()}
    with pytest.raises(ValueError, match="holds records of a different grid") as info:
        run_grid(cells[:3], tmp_path, serial=True, progress=False)
    assert "--force" in str(info.value)
    run = run_grid(cells[:3], tmp_path, serial=True, progress=False, force=True)
    assert run.skipped == 2 and run.ran == 1  # records of the cells in both grids are reused
    for name, content in before.items():
        assert (tmp_path / "cells" / name).read_bytes() == content


def test_an_unreachable_scheduler_fails_fast_naming_the_address(tmp_path):
    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"no Dask scheduler answers at tcp://127\.0\.0\.1:9 "):
        run_grid(small_cells(), tmp_path, scheduler=address, connect_timeout=2, progress=False)
    assert time.perf_counter() - start < 15


@pytest.mark.slow
def test_a_scheduler_and_workers_started_as_separate_processes(tmp_path):
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
    ]  # fmt: skip
    try:
        for _ in range(300):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        processes.append(
            subprocess.Popen(
                [dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            )
        )  # fmt: skip
        cells = small_cells()
        out = tmp_path / "out"
        status = main(
            ["grid", "--spec", str(write_spec(tmp_path)), "--scheduler", address,
             "--connect-timeout", "120", "--out", str(out), "--no-progress", "--no-figures"]
        )  # fmt: skip
        assert status == 0
        records = load_records(out)
        assert len(records) == len(cells) and all(r["status"] == "ok" for r in records)
        serial = [run_grid_cell(c) for c in cells]
        assert all(same_records(a, b) for a, b in zip(serial, records, strict=True))
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def write_spec(folder: Path) -> Path:
    path = folder / "grid.json.in"
    path.write_text(json.dumps(SMALL))
    return path


# ------------------------------------------------------------------------------- command


def test_grid_command_serial_writes_records_report_and_figures(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["grid", "--spec", str(write_spec(tmp_path)), "--serial", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "8 run now, 0 already recorded, 0 failed to run" in printed
    for name in ("grid.json", "grid_report.txt", "grid_cells.csv", "grid_summary.json",
                 "grid_ess_per_eval.png", "grid_slopes.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert len(list((out / "cells").glob("*.json"))) == 8
    assert "slope of log(ESS/eval)" in (out / "grid_report.txt").read_text()
    assert main([*argv, "--no-progress"]) == 0
    assert "0 run now, 8 already recorded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--targets", "banana", "--serial"], "unknown target 'banana'"),
        (["--kernels", "Gibbs", "--serial"], "unknown kernel 'Gibbs'"),
        (["--kernel-settings", "MALA=3", "--serial"], "--kernel-settings takes NAME=JSON"),
        (["--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "tcp://127.0.0.1:9"),
    ],
)
def test_grid_command_bad_input_is_an_error_message(argv, message, tmp_path, capsys):
    assert main(["grid", "--quick", *argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simplehmc: error:") and message in err and "Traceback" not in err


def test_grid_command_without_dask_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert main(["grid", "--quick", "--out", str(tmp_path), "--no-progress"]) == 2
    assert 'pip install "pyro-simplehmc[grid]"' in capsys.readouterr().err
    # --serial needs no Dask.
    assert main(["grid", "--quick", "--serial", "--out", str(tmp_path), "--no-progress"]) == 0


# ------------------------------------------------------------------------------- report


def fake_records(
    slopes: dict[str, float], seeds: int, noise: float = 0.0, rng_seed: int = 0
) -> list[dict]:
    """Records whose ESS/eval is ``D**slope`` times log-normal noise, per kernel and seed."""
    rng = np.random.default_rng(rng_seed)
    records = []
    for kernel, slope in slopes.items():
        for seed in range(seeds):
            for dim in (2, 10, 100):
                value = dim**slope * math.exp(noise * rng.standard_normal())
                records.append(
                    {
                        "id": f"{kernel}-{seed}-{dim}",
                        "cell": Cell("diagonal_gaussian", kernel, dim, seed).to_dict(),
                        "status": "ok",
                        "result": {"ess_per_eval": value, "acceptance_rate": 0.5,
                                   "status": "PASS", "dim": dim},
                    }
                )  # fmt: skip
    return records


def test_slopes_recover_a_known_power_law_and_their_intervals_cover_it():
    exact = slope_summary(table_rows(fake_records({"MALA": -1 / 3, "RandomWalkMH": -1.0}, 3)))
    by_kernel = {s["kernel"]: s for s in exact}
    assert by_kernel["MALA"]["slope"] == pytest.approx(-1 / 3)
    assert by_kernel["RandomWalkMH"]["slope"] == pytest.approx(-1.0)
    assert by_kernel["MALA"]["theory"] == pytest.approx(-1 / 3)
    assert by_kernel["MALA"]["seeds"] == 3
    # With noise, the 95 % t interval over 4 seeds covers the true slope in 95 % of grids
    # (binomial sd 1.1 % over 400 grids); a normal interval (1.96 instead of t_3 = 3.18) would
    # cover 86 %.
    covered = 0
    for trial in range(400):
        rows = table_rows(fake_records({"MALA": -0.5}, 4, noise=0.3, rng_seed=trial))
        s = slope_summary(rows)[0]
        covered += s["slope_low"] <= -0.5 <= s["slope_high"]
    assert 0.91 <= covered / 400 <= 0.985


def test_t_interval_matches_scipy_and_needs_two_values():
    from scipy import stats

    values = [1.0, 2.0, 4.0, 3.0]
    mean, low, high = t_interval(values)
    ref = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(ref)
    assert mean == 2.5
    assert math.isnan(t_interval([1.0])[1])


def test_report_counts_verdicts_and_lists_failed_cells():
    records = fake_records({"MALA": -0.3}, 2)
    records[0]["result"]["status"] = "FAIL"
    records[1] = {**records[1], "status": "error", "result": None, "error": "Boom: x"}
    rows = table_rows(records)
    summary = {(s["dim"], s["label"]): s for s in cell_summary(rows)}
    assert summary[2, "MALA"]["verdicts"] == {"FAIL": 1, "PASS": 1}
    assert summary[10, "MALA"]["verdicts"] == {"ERROR": 1, "PASS": 1}
    assert summary[10, "MALA"]["ok"] == 1
    text = format_grid_report(rows)
    assert "Boom: x" in text and "FAIL 1 PASS 1" in text
