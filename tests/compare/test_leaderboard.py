"""The posteriordb leaderboard and the package's own copy of the posteriordb references."""

from __future__ import annotations

import json

import pytest

from pyro_simplehmc.checks.posteriordb import POSTERIORS, load_posterior
from pyro_simplehmc.compare.leaderboard import (
    estimator_board,
    estimator_summary,
    format_markdown,
    leaderboard,
    rows,
    write_leaderboard,
)
from pyro_simplehmc.compare.problems import from_posterior
from pyro_simplehmc.compare.results import finite


def test_the_bundle_holds_every_ported_posterior_as_posteriordb_has_it(posteriordb_root):
    # The package must run without ../shared: its copy must match posteriordb's files. The
    # shared folder holds only some of the ports; the others come from a posteriordb clone
    # (scripts/make_posteriordb_bundle.py).
    checked = 0
    for name in POSTERIORS:
        _, data, reference = load_posterior(name)
        folder = posteriordb_root / name
        if not folder.is_dir():
            continue
        checked += 1
        assert data == json.loads((folder / "data.json").read_text())
        full = json.loads((folder / "reference_summary.json").read_text())["parameters"]
        assert list(reference) == list(full)
        for quantity, values in reference.items():
            assert values["mean"] == full[quantity]["mean"]
            assert values["sd"] == full[quantity]["sd"]
    assert checked >= 6


def test_a_posterior_problem_whose_reference_quantities_need_the_data():
    # gp_pois_regr's reference holds f = L(x, rho, alpha) f_tilde: the flatten needs the data.
    problem = from_posterior("gp_pois_regr-gp_pois_regr")
    assert problem.coords == ["rho", "alpha"] + [f"f[{i}]" for i in range(1, 12)]
    start = problem.initial_params(0)  # unconstrained
    flat = problem.flatten({k: problem.transforms[k](v)[None] for k, v in start.items()})
    assert flat.shape == (1, 13) and bool(flat.isfinite().all())


def test_posterior_problem_names_and_truth():
    problem = from_posterior("eight_schools-eight_schools_noncentered")
    # The reference holds theta (derived), not theta_trans; 1-based as posteriordb names them.
    assert problem.coords[:2] == ["theta[1]", "theta[2]"] and "tau" in problem.coords
    _, _, reference = load_posterior("eight_schools-eight_schools_noncentered")
    assert problem.truth_var[0] == pytest.approx(reference["theta[1]"]["sd"] ** 2)


def test_unknown_posterior_is_a_clear_error():
    with pytest.raises(ValueError, match="posterior must be one of"):
        load_posterior("eight_schools")
    with pytest.raises(ValueError, match="posteriors"):
        leaderboard(["nope"], progress=False)


def test_leaderboard_table_relative_to_nuts():
    board = leaderboard(
        ["gp_pois_regr-gp_regr"],
        kernels=["MALA", "NUTS"],
        num_samples=40,
        warmup_steps=30,
        progress=False,
        batch_chains=8,
        max_evals=None,
    )
    table = rows(board)
    nuts = next(r for r in table if r["kernel"] == "NUTS")
    mala = next(r for r in table if r["kernel"] == "MALA")
    assert nuts["relative_to_NUTS"] == pytest.approx(1.0)
    assert mala["relative_to_NUTS"] == pytest.approx(mala["ess_per_eval"] / nuts["ess_per_eval"])
    markdown = format_markdown(board)
    assert "| `gp_pois_regr-gp_regr` | 3 |" in markdown
    assert f"{mala['relative_to_NUTS']:.2f} ({mala['verdict']})" in markdown


def test_the_estimator_board_compares_estimators_with_stans_on_a_diagonal(tmp_path):
    board = estimator_board(
        ["gp_pois_regr-gp_regr"],
        num_samples=40,
        warmup_steps=30,
        progress=False,
        batch_chains=8,
        max_evals=None,
    )
    names = [r.name for r in board[0].results]
    assert names == ["SimpleHMC (stan)", "SimpleHMC (fisher)", "SimpleHMC (low_rank)"]
    table = rows(board, yardstick="SimpleHMC (stan)")
    assert table[0]["relative_to_SimpleHMC (stan)"] == pytest.approx(1.0)
    summary = estimator_summary(board)
    assert len(summary) == 2 and "SimpleHMC (fisher)" in summary[0]
    write_leaderboard(board, tmp_path, tmp_path / "page.md", estimators=board, wall_seconds=60)
    page = (tmp_path / "page.md").read_text()
    assert "## Mass-matrix estimators" in page and "1 minutes of wall time" in page
    # A page written from part of the set says so, and which posteriors it lacks.
    assert f"covers 1 of the {len(POSTERIORS)} ported posteriors" in page
    assert "`arK-arK`" in page.split("not yet run:")[1]


def test_an_interrupted_leaderboard_resumes_from_its_finished_posteriors(tmp_path, monkeypatch):
    import pyro_simplehmc.compare.leaderboard as board_module

    settings = {
        "kernels": ["MALA"], "num_samples": 30, "warmup_steps": 20, "progress": False,
        "batch_chains": 8, "max_evals": None, "reference": None, "records": tmp_path,
    }  # fmt: skip
    (first,) = leaderboard(["gp_pois_regr-gp_regr"], **settings)
    (kept,) = list(tmp_path.glob("gp_pois_regr-gp_regr-*.pkl"))
    calls = []
    real = board_module.compare_posterior

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    def same(a, b):  # NaN-safe: compare the JSON the leaderboard writes
        return json.dumps(finite(a.to_dict())) == json.dumps(finite(b.to_dict()))

    monkeypatch.setattr(board_module, "compare_posterior", counted)
    (again,) = leaderboard(["gp_pois_regr-gp_regr"], **settings)
    assert calls == [] and same(again, first)  # read back, not rerun
    # Other settings are another entry; a corrupt entry is rerun and overwritten.
    leaderboard(["gp_pois_regr-gp_regr"], **{**settings, "seed": 1})
    assert len(calls) == 1 and len(list(tmp_path.glob("*.pkl"))) == 2
    kept.write_bytes(b"not a pickle")
    (rerun,) = leaderboard(["gp_pois_regr-gp_regr"], **settings)
    assert len(calls) == 2  # the same draws again (only the timings differ)
    assert [r.min_ess for r in rerun.results] == [r.min_ess for r in first.results]
    assert kept.read_bytes() != b"not a pickle"
