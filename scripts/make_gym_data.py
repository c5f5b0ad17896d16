"""Make ``pyro_simplehmc/data/gym_targets.json``: inference-gym's data and ground truths.

The data and ground-truth moments of three of the MAMS paper's benchmark models are read from a
git checkout of tensorflow/probability (``spinoffs/inference_gym``), parsed as literals (nothing of
that repository is executed or imported)::

    python scripts/make_gym_data.py /path/to/tensorflow-probability.git [COMMIT]

- ``brownian_motion``: ``BrownianMotionUnknownScalesMissingMiddleObservations``, its 30
  observations (10 missing), its published ground truth (Stan, 20,000 draws) and the exact
  truth (:func:`brownian_motion_exact`), which the target uses: the published one disagrees
  with the model on these data;
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


def brownian_motion_exact(observed: np.ndarray, grid: int = 161) -> dict[str, list[float]]:
    """The Brownian motion's exact posterior mean and standard deviation of
    ``[innovation_noise_scale, observation_noise_scale, locs...]``.

    Given the two scales the locs are Gaussian (a linear-Gaussian model: prior covariance
    ``sigma_i^2 min(s, t)``, observation noise ``sigma_o``), and the scales' posterior is the
    marginal likelihood of the observations times the LogNormal(0, 2) priors, integrated on a
    ``grid`` x ``grid`` grid of their logarithms over [-6, 1] (each log scale's posterior has a
    standard deviation of about 0.35 around -2.2; 121 and 241 points agree to 1e-5).
    """
    observed_mask = ~np.isnan(observed)
    y = observed[observed_mask]
    steps = np.arange(1, len(observed) + 1)
    prior = np.minimum.outer(steps, steps).astype(float)
    prior_inv = np.linalg.inv(prior)
    h = np.eye(len(observed))[observed_mask]
    logs = np.linspace(-6.0, 1.0, grid)
    log_post, firsts, seconds = [], [], []
    for a in logs:
        for b in logs:
            cov = np.linalg.inv(prior_inv * np.exp(-2 * a) + h.T @ h * np.exp(-2 * b))
            mu = cov @ (h.T @ y) * np.exp(-2 * b)
            marginal = np.exp(2 * a) * h @ prior @ h.T + np.exp(2 * b) * np.eye(len(y))
            _, logdet = np.linalg.slogdet(marginal)
            quad = y @ np.linalg.solve(marginal, y)
            log_post.append(-0.5 * logdet - 0.5 * quad - a**2 / 8 - b**2 / 8)
            scales = np.exp([a, b])
            firsts.append(np.concatenate([scales, mu]))
            seconds.append(np.concatenate([scales**2, np.diag(cov) + mu**2]))
    weights = np.exp(np.array(log_post) - max(log_post))
    weights /= weights.sum()
    mean = weights @ np.array(firsts)
    sd = np.sqrt(weights @ np.array(seconds) - mean**2)
    return {"mean": mean.tolist(), "sd": sd.tolist()}


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
            # inference-gym's published truth disagrees with this model on these data (the
            # observation scale's mean 0.101 against 0.113 exactly): the exact one is used.
            "truth": brownian_motion_exact(bm["OBSERVED_LOC"]),
            "truth_draws": "exact: Gaussian given the scales, the scales by quadrature",
            "gym_truth": truth(
                bm_truth, ["innovation_noise_scale", "observation_noise_scale", "locs"]
            ),
            "gym_truth_draws": "Stan, 20,000 draws (inference-gym's get_ground_truth)",
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
