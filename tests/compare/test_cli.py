"""The command line, end to end in ``--quick`` mode."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys

import pytest

from pyro_simplehmc.cli.main import main

COMPARISON_FILES = [
    "correlated_gaussian.txt",
    "correlated_gaussian.csv",
    "correlated_gaussian.json",
    "correlated_gaussian_traces.png",
    "correlated_gaussian_scatter.png",
    "correlated_gaussian_z.png",
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


def test_validate_quick_as_module_gives_every_kernel_a_reliable_verdict(tmp_path):
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
    for name in COMPARISON_FILES:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == PNG_MAGIC
    table = (out / "correlated_gaussian.txt").read_text()
    assert table in completed.stdout
    rows = list(csv.DictReader((out / "correlated_gaussian.csv").open()))
    assert [r["kernel"] for r in rows] == ["RandomWalkMH", "MALA", "SimpleHMC", "NUTS"]
    # --quick is sized for verdicts that mean something: PASS or FAIL, never "too few draws".
    for row in rows:
        assert row["status"] in ("PASS", "FAIL"), row
        assert min(float(row["min_ess_bulk_x"]), float(row["min_ess_bulk_x2"])) >= 100, row
        assert float(row["r_hat"]) < 1.01, row
    report = json.loads((out / "correlated_gaussian.json").read_text())
    assert report["num_samples"] == 500 and report["num_chains"] == 4
    assert report["results"][0]["num_samples"] == 3000  # the random walk's cheap draws


def test_scaling_quick_writes_its_files(tmp_path):
    argv = ["scaling", "--quick", "--dims", "2", "3", "--kernels", "MALA", "SimpleHMC"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path)]) == 0
    for name in SCALING_FILES:
        assert (tmp_path / name).is_file(), name
    scaling = json.loads((tmp_path / "scaling.json").read_text())
    assert scaling["settings"]["dims"] == [2, 3] and scaling["settings"]["num_samples"] == 200
    assert set(scaling["slopes_min_ess"]) == {"MALA", "SimpleHMC"}


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
        ["compare", "--num-samples", "0", "--no-progress"],
        ["compare", "--num-chains", "0", "--no-progress"],
        ["compare", "--warmup-steps", "-1", "--no-progress"],
        ["compare", "--target", "correlated_gaussian", "--dim", "3", "--no-progress"],
        ["compare", "--reference", "Gibbs", "--no-progress"],
        ["compare", "--posterior", "nope", "--no-progress"],
        ["compare", "--args", "x.py:f", "--no-progress"],
        ["compare", "--model", "no_such_file.py:model", "--no-progress"],
        ["compare", "--model", "no_such_module_xyz:model", "--no-progress"],
        ["compare", "--model", "model_without_colon.py", "--no-progress"],
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


def test_num_samples_zero_is_refused_not_replaced(tmp_path, capsys):
    argv = ["compare", "--num-samples", "0", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--num-samples must be an integer >= 1; got 0" in capsys.readouterr().err


MODEL_FILE = """
import pyro, pyro.distributions as dist, torch

def model(y):
    loc = pyro.sample("loc", dist.Normal(torch.tensor(0.0), 10.0))
    scale = pyro.sample("scale", dist.HalfNormal(torch.tensor(3.0)))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(loc, scale), obs=y)

def make_args():
    return (torch.tensor([0.5, 1.5, -0.2, 0.9]),), {}

def wrong_args():
    return torch.tensor([0.5])

def tuple_args():
    return (torch.tensor([0.5, 1.5, -0.2, 0.9]),)

def dict_last():
    return (torch.tensor([0.5]), {"scale": 1.0})

def no_latent(y):
    pyro.sample("y", dist.Normal(0.0, 1.0), obs=y)

def broken(y):
    raise KeyError("a bug in the model")
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_model.py"
    path.write_text(MODEL_FILE)
    return path


def test_compare_a_model_from_a_file(model_file, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(
        [
            *("compare", "--model", f"{model_file}:model", "--args", f"{model_file}:make_args"),
            *("--kernels", "MALA", "--num-samples", "60", "--warmup-steps", "40"),
            *("--reference-samples", "120", "--max-evals", "0", "--no-progress", "--out", str(out)),
        ]
    )
    assert status in (0, 1)
    report = json.loads((out / "model.json").read_text())
    assert report["coords"] == ["loc", "scale"] and report["reference"] == "NUTS"
    assert [r["name"] for r in report["results"]] == ["NUTS", "MALA"]
    assert report["results"][0]["num_samples"] == 120
    for name in ("model.txt", "model.csv", "model_traces.png", "model_z.png"):
        assert (out / name).is_file(), name
    assert "vs NUTS" in capsys.readouterr().out


def test_compare_a_model_from_a_module(model_file, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(model_file.parent))
    status = main(
        [
            *("compare", "--model", "my_model:model", "--args", "my_model:make_args"),
            *("--kernels", "RandomWalkMH", "--num-samples", "30", "--warmup-steps", "20"),
            *("--reference", "MALA", "--max-evals", "0", "--no-progress", "--no-figures"),
            *("--out", str(tmp_path)),
        ]
    )
    assert status in (0, 1)
    rows = list(csv.DictReader((tmp_path / "model.csv").open()))
    assert [r["kernel"] for r in rows] == ["MALA", "RandomWalkMH"]
    assert rows[1]["reference"] == "MALA"


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("missing_function", "make_args", "has no 'missing_function'"),
        ("model", "wrong_args", "--args: .* must return \\(args, kwargs\\)"),
        ("no_latent", "make_args", "no continuous latent"),
        ("broken", "make_args", "KeyError: 'a bug in the model'"),
    ],
)
def test_compare_model_bad_input(model_file, tmp_path, capsys, model, args, message):
    argv = ["compare", "--model", f"{model_file}:{model}", "--args", f"{model_file}:{args}"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simplehmc: error:") and "Traceback" not in err
    assert re.search(message, err), err


def test_args_may_be_the_argument_tuple_alone(model_file):
    from pyro_simplehmc.cli.compare import load_model_args

    args, kwargs = load_model_args(f"{model_file}:tuple_args")
    assert len(args) == 1 and args[0].shape == (4,) and kwargs == {}
    assert load_model_args(f"{model_file}:make_args")[1] == {}
    # A tuple ending in a dict is neither form: refused, naming both.
    with pytest.raises(ValueError, match="the argument tuple alone"):
        load_model_args(f"{model_file}:dict_last")


def test_compare_a_posterior_uses_the_bundled_reference(tmp_path):
    status = main(
        [
            *("compare", "--posterior", "gp_pois_regr-gp_regr", "--kernels", "MALA"),
            *("--num-samples", "40", "--warmup-steps", "30", "--full-mass", "dense"),
            *("--max-evals", "0", "--no-progress", "--no-figures", "--out", str(tmp_path)),
        ]
    )
    assert status in (0, 1)
    report = json.loads((tmp_path / "gp_pois_regr-gp_regr.json").read_text())
    assert report["coords"] == ["rho", "alpha", "sigma"]
    assert report["truth_mean"][0] == pytest.approx(6.8743, abs=1e-3)  # posteriordb: rho


def test_list_posteriors(capsys):
    assert main(["compare", "--list-posteriors"]) == 0
    assert "arK-arK" in capsys.readouterr().out


def test_every_command_is_a_module_with_add_parser_and_run():
    import argparse

    from pyro_simplehmc.cli.main import COMMANDS, build_parser

    names = [c.__name__.rsplit(".", 1)[-1] for c in COMMANDS]
    assert names == [
        "validate",
        "compare",
        "leaderboard",
        "scaling",
        "chapter",
        "grid",
        "benchmark",
    ]
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert list(subparsers.choices) == names  # --help lists them in COMMANDS' order
    for command, name in zip(COMMANDS, names, strict=True):
        assert callable(command.add_parser) and callable(command.run)
        assert subparsers.choices[name].get_default("handler") is command.run


class _Captured(Exception):
    pass


@pytest.mark.parametrize(
    "argv, function, expected",
    [
        (["--posterior", "arK-arK"], "compare_posterior", {"full_mass": "auto"}),
        (
            ["--posterior", "arK-arK", "--full-mass", "diagonal"],
            "compare_posterior",
            {"full_mass": False},
        ),
        (["--full-mass", "auto"], "compare", {"full_mass": "auto"}),
        ([], "compare", {"full_mass": None, "kernels": None}),
        (["--quick"], "compare", {"kernels": ["RandomWalkMH", "MALA", "SimpleHMC", "NUTS", "HMC"]}),
        (["--quick", "--kernels", "MALA"], "compare", {"kernels": ["MALA"]}),
    ],
)
def test_compare_hands_its_mass_matrix_and_kernels_to_the_runner(
    monkeypatch, tmp_path, argv, function, expected
):
    import pyro_simplehmc.compare as compare_layer

    def fake(*args, **kwargs):
        raise _Captured(kwargs)

    monkeypatch.setattr(compare_layer, function, fake)
    with pytest.raises(_Captured) as caught:
        main(["compare", *argv, "--no-reference-cache", "--out", str(tmp_path)])
    kwargs = caught.value.args[0]
    assert {k: kwargs[k] for k in expected} == expected
