"""Make ``pyro_simplehmc/data/gym_targets.json``: inference-gym's data and ground truths.

The data and ground-truth moments of three of the MAMS paper's benchmark models are read from a
git checkout of tensorflow/probability (``spinoffs/inference_gym``), parsed as literals (nothing of
that repository is executed or imported)::

    python scripts/make_gym_data.py /path/to/tensorflow-probability.git [COMMIT]

- ``brownian_motion``: ``BrownianMotionUnknownScalesMissingMiddleObservations``, its 30
  observations (10 missing) and ground truth (Stan, 20,000 draws);
- ``stochastic_volatility``: ``StochasticVolatilitySP500Small``, the last 100 absolute daily
  returns of the S&P 500, centred, and its ground truth (Stan, 50,000 draws);
- ``item_response_theory``: ``SyntheticItemResponseTheory``, 400 students by 100 questions, as
  two strings of the dense grid (answered or not, correct or not), and its ground truth.

German credit is not in that repository (inference-gym loads it through tensorflow-datasets), so
:mod:`pyro_simplehmc.checks.gym_targets` uses a stated substitute for it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

GYM = "spinoffs/inference_gym/inference_gym"
OUT = Path(__file__).resolve().parent.parent / "pyro_simplehmc" / "data" / "gym_targets.json"


def arrays(git_dir: str, commit: str, path: str) -> dict[str, np.ndarray]:
    """The ``NAME = np.array([...])...`` assignments of one file, as arrays (``np.nan`` kept)."""
    text = subprocess.run(
        ["git", "--git-dir", git_dir, "show", f"{commit}:{GYM}/{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    out = {}
    for node in ast.parse(text).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        call = node.value
        while isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            if call.func.attr == "array":
                break
            call = call.func.value  # .reshape(()), .astype(...)
        if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.List):
            source = ast.get_source_segment(text, call.args[0]).replace("np.nan", "None")
            values = [np.nan if v is None else v for v in ast.literal_eval(source)]
            out[node.targets[0].id] = np.asarray(values, dtype=float)
        elif isinstance(node.value, ast.Constant):
            out[node.targets[0].id] = np.asarray(node.value.value, dtype=float)
    return out


def truth(moments: dict[str, np.ndarray], sites: list[str]) -> dict[str, list[float]]:
    """Mean, its standard error and standard deviation of each site, concatenated in order."""
    parts = {"mean": [], "mean_se": [], "sd": []}
    for site in sites:
        key = f"IDENTITY_{site.upper()}"
        parts["mean"].append(np.atleast_1d(moments[f"{key}_MEAN"]))
        parts["mean_se"].append(np.atleast_1d(moments[f"{key}_MEAN_STANDARD_ERROR"]))
        parts["sd"].append(np.atleast_1d(moments[f"{key}_STANDARD_DEVIATION"]))
    return {k: np.concatenate(v).tolist() for k, v in parts.items()} | {"sites": sites}


def main() -> None:
    git_dir = sys.argv[1]
    commit = sys.argv[2] if len(sys.argv) > 2 else "HEAD"
    commit = subprocess.run(
        ["git", "--git-dir", git_dir, "rev-parse", commit], check=True, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    bm = arrays(git_dir, commit, "internal/datasets/brownian_motion_missing_middle_observations.py")
    bm_truth = arrays(
        git_dir,
        commit,
        "targets/ground_truth/brownian_motion_unknown_scales_missing_middle_observations.py",
    )
    prices = arrays(git_dir, commit, "internal/datasets/sp500_closing_prices.py")["CLOSING_PRICES"]
    returns = np.diff(prices)[-100:]
    sv_truth = arrays(git_dir, commit, "targets/ground_truth/stochastic_volatility_sp500_small.py")
    irt = arrays(git_dir, commit, "internal/datasets/synthetic_item_response_theory.py")
    irt_truth = arrays(git_dir, commit, "targets/ground_truth/synthetic_item_response_theory.py")
    students, questions = irt["STUDENT_IDS"].astype(int), irt["QUESTION_IDS"].astype(int)
    grid = np.full((400, 100), ".")
    grid[students, questions] = np.where(irt["CORRECT"] > 0.5, "1", "0")
    payload = {
        "source": f"tensorflow/probability@{commit}, {GYM}",
        "brownian_motion": {
            "observed_locs": [None if np.isnan(v) else float(v) for v in bm["OBSERVED_LOC"]],
            "truth": truth(bm_truth, ["innovation_noise_scale", "observation_noise_scale", "locs"]),
            "truth_draws": "Stan, 20,000 draws (inference-gym's get_ground_truth)",
        },
        "stochastic_volatility": {
            "centered_returns": (returns - returns.mean()).tolist(),
            "truth": truth(
                sv_truth,
                [
                    "persistence_of_volatility",
                    "mean_log_volatility",
                    "white_noise_shock_scale",
                    "log_volatility",
                ],
            ),
            "truth_draws": "Stan, 50,000 draws (inference-gym's get_ground_truth)",
        },
        "item_response_theory": {
            "grid": ["".join(row) for row in grid],
            "truth": truth(
                irt_truth,
                ["mean_student_ability", "centered_student_ability", "question_difficulty"],
            ),
            "truth_draws": "Stan, 50,000 draws (inference-gym's get_ground_truth)",
        },
    }
    OUT.write_text(json.dumps(payload, separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
