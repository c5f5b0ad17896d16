r"""The MAMS paper's benchmark as a suite: contenders side by side on the eight gym models.

``simplehmc benchmark --suite mams`` (:mod:`pyro_simplehmc.cli.benchmark`) runs
:func:`run_suite`: on each model of :data:`~pyro_simplehmc.checks.gym_targets.GYM_TARGETS`, in
one process, one thread,

- this package's kernels, all chains as one batch (``chain_method="vectorized"``, a batched
  potential, each kernel's own tuning: per-chain step sizes, as BlackJAX's vmapped chains have):
  ``MAMS``, ``ChEES`` (:class:`~pyro_simplehmc.SimpleHMC` with
  ``adapt_trajectory_length=True``), ``MALA`` and ``RandomWalkMH`` (its cost in potential
  evaluations, not gradients);
- ``NUTS``: Pyro's NUTS, a few chains, one after the other (:func:`~pyro_simplehmc.compare.
  per_chain.run_chains`);
- optional extras from :mod:`pyro_simplehmc.compare.benchmark_jax` (imported only when asked
  for, skipped with a note where JAX is missing): ``numpyro-NUTS``, ``blackjax-NUTS`` and
  ``blackjax-MAMS`` (BlackJAX's adjusted MCLMC), vmapped over the same number of chains.

For each pair it records, through :func:`~pyro_simplehmc.compare.summary.summarise` (the same
summary as every comparison of the package):

- **gradients per chain to** :math:`b^2 < 0.01`, sampling only, with the 95% bootstrap interval
  over chains (:func:`~pyro_simplehmc.compare.summary.evals_to_low_bias`,
  :func:`~pyro_simplehmc.compare.summary.evals_to_low_bias_interval`), the warmup's gradients
  beside it;
- the smallest bulk ESS (coordinates and squares) **per 1000 gradients** of all chains;
- the **wall seconds** of warmup plus sampling (noisy on a shared machine);
- whether the moments **agree with the truth within MCSE**: the verdict of
  :func:`~pyro_simplehmc.checks.statistics.verdict` on the z-scores of means and variances
  (``PASS``/``FAIL`` only where the MCSEs are reliable; ``agrees`` is ``True``, ``False`` or
  ``None`` for unreliable).

:func:`write_results` writes ``results.json`` and ``results.md`` (:func:`markdown_table` and
:func:`goal_verdicts`: issue 22's goals, ratios within this one run).
"""

from __future__ import annotations

import json
import math
import platform
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks.gym_targets import GYM_TARGETS
from ..checks.targets import Target
from ..core import validation as check
from .execution import run_batch
from .per_chain import run_chains
from .problems import from_target
from .results import KernelResult
from .specs import KERNELS, KernelSpec
from .summary import ChainRun, evals_to_low_bias, evals_to_low_bias_interval, summarise

#: This package's kernels, as run in the suite (vectorized, batched potential).
OUR_CONTENDERS: dict[str, KernelSpec] = {
    "MAMS": KERNELS["MAMS"].with_settings(batched_potential=True),
    "ChEES": KERNELS["SimpleHMC"].with_settings(
        batched_potential=True, adapt_trajectory_length=True
    ),
    "MALA": KERNELS["MALA"].with_settings(batched_potential=True),
    "RandomWalkMH": KERNELS["RandomWalkMH"].with_settings(batched_potential=True),
}
#: Pyro's own NUTS, one chain at a time.
PYRO_CONTENDERS: dict[str, KernelSpec] = {"NUTS": KERNELS["NUTS"]}
#: The JAX contenders of :mod:`pyro_simplehmc.compare.benchmark_jax`.
JAX_CONTENDERS: tuple[str, ...] = (
    "numpyro-NUTS",
    "blackjax-NUTS",
    "blackjax-MAMS",
    "blackjax-MAMS-pinned",
)
#: Every contender, in report order.
CONTENDERS: tuple[str, ...] = (*OUR_CONTENDERS, *PYRO_CONTENDERS, *JAX_CONTENDERS)
#: Run unless ``contenders`` says otherwise.
DEFAULT_CONTENDERS: tuple[str, ...] = ("MAMS", "ChEES", "MALA", "NUTS", "blackjax-MAMS")
#: The suites by name: ``mams`` is the MAMS paper's eight models.
SUITES: dict[str, tuple[str, ...]] = {"mams": tuple(GYM_TARGETS)}
#: Settings of ``--quick``: enough to see that everything runs, not to judge anything.
QUICK = {"num_chains": 8, "warmup_steps": 150, "num_samples": 150, "nuts_chains": 2}


def _chains_to_result(
    name: str, uses_gradient: bool, chains: Sequence[ChainRun], target: Target
) -> KernelResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return summarise(name, uses_gradient, chains, target)


def per_chain_bias(result: KernelResult, chains: Sequence[ChainRun], target: Target) -> dict:
    """The paper's metric: gradients per chain until each chain's own :math:`b^2`, averaged
    over the chains, stays below 0.01 (``evals_to_low_bias(..., per_chain=True)``), with its
    interval; ``None`` where not reached (the pooled one of ``summarise`` falls faster the more
    chains there are)."""
    draws = np.stack([c.draws for c in chains])
    point, low, high = math.nan, math.nan, math.nan
    if result.cost and draws.shape[1]:
        per_draw = result.cost / (draws.shape[0] * draws.shape[1])
        truth = (target.mean.numpy(), target.var.numpy(), per_draw)
        point = evals_to_low_bias(draws, *truth, per_chain=True)
        low, high = evals_to_low_bias_interval(draws, *truth, per_chain=True)
    return {PER_CHAIN: _finite(point), f"{PER_CHAIN} interval": [_bound(low), _bound(high)]}


def run_contender(
    name: str,
    target: Target,
    num_chains: int,
    num_samples: int,
    warmup_steps: int,
    seed: int = 0,
    nuts_chains: int = 4,
) -> tuple[KernelResult | None, dict[str, Any]]:
    """One contender on one target: its summary, and extras for the row (or ``None`` and
    ``{"note": why}`` where it was skipped)."""
    extra: dict[str, Any] = {}
    if name in OUR_CONTENDERS:
        spec = OUR_CONTENDERS[name]
        chains, mcmc = run_batch(
            spec, target, num_samples, warmup_steps, num_chains, seed, chain_adaptation=None
        )
        kernel = mcmc.kernel
        if name == "MAMS":
            extra["trajectory length"] = float(kernel.length)
        elif name == "ChEES":
            extra["trajectory length"] = float(kernel.adapted_trajectory_length)
        extra["step size"] = float(np.mean(np.asarray(kernel.chain_step_size, dtype=float)))
        result = _chains_to_result(name, spec.uses_gradient, chains, target)
        return result, {**per_chain_bias(result, chains, target), **extra}
    if name in PYRO_CONTENDERS:
        spec = PYRO_CONTENDERS[name]
        seeds = [seed + c for c in range(nuts_chains)]
        chains, note = run_chains(
            spec, from_target(target), num_samples, warmup_steps, seeds, jobs=1
        )
        if note:
            extra["note"] = note
        result = _chains_to_result(name, True, chains, target)
        return result, {**per_chain_bias(result, chains, target), **extra}
    if name in JAX_CONTENDERS:
        try:
            from . import benchmark_jax
        except ImportError as error:  # JAX, NumPyro or BlackJAX missing
            return None, {"note": f"skipped: {error}"}
        chains, extra = benchmark_jax.run(name, target, num_chains, num_samples, warmup_steps, seed)
        if chains is None:
            return None, extra
        result = _chains_to_result(name, True, chains, target)
        return result, {**per_chain_bias(result, chains, target), **extra}
    raise ValueError(f"unknown contender {name!r}; choose from {list(CONTENDERS)}")


#: The headline metric: gradients of all chains together until the squared bias of the chains'
#: pooled second moments stays below 0.01 (the pooled :math:`b^2` of :math:`C` chains of
#: :math:`n` draws is about that of one chain of :math:`Cn` draws, so this does not depend on
#: the number of chains, and short runs reach it).
HEADLINE = "all-chain gradients to b2 < 0.01"
#: The paper's: gradients per chain until the squared bias of each chain's own moments, averaged
#: over the chains, stays below 0.01 (needs long chains: often not reached in a short run).
PER_CHAIN = "gradients per chain to per-chain b2 < 0.01"


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _bound(value: float) -> float | str | None:
    """A bound of an interval for JSON: ``"inf"`` where a resample never got there."""
    if value == math.inf:
        return "inf"
    return _finite(value)


def row(model: str, contender: str, result: KernelResult, extra: dict[str, Any]) -> dict:
    """The record of one contender on one model (as in ``results.json``)."""
    per_chain = {
        phase: result.gradient_evals[phase] / result.num_chains
        if result.uses_gradient
        else result.potential_evals[phase] / result.num_chains
        for phase in ("warmup", "sampling")
    }
    status = result.status_truth
    extra = dict(extra)
    paper = {key: extra.pop(key, None) for key in (PER_CHAIN, f"{PER_CHAIN} interval")}
    return {
        "model": model,
        "contender": contender,
        "chains": result.num_chains,
        "draws per chain": result.num_samples,
        "cost unit": "gradients" if result.uses_gradient else "potential evaluations",
        "warmup gradients per chain": per_chain["warmup"],
        "sampling gradients per chain": per_chain["sampling"],
        HEADLINE: _finite(result.num_chains * result.evals_to_low_bias),
        f"{HEADLINE} interval": [
            _bound(result.num_chains * result.evals_to_low_bias_low),
            _bound(result.num_chains * result.evals_to_low_bias_high),
        ],
        PER_CHAIN: paper[PER_CHAIN],
        f"{PER_CHAIN} interval": paper[f"{PER_CHAIN} interval"] or [None, None],
        "min bulk ESS": result.min_bulk_ess,
        "ESS per 1000 gradients": 1000 * result.ess_per_eval,
        "wall seconds": sum(result.seconds.values()),
        "max |z| vs truth": _finite(result.max_abs_z_truth),
        "verdict": status,
        "agrees with truth": True if status == "PASS" else False if status == "FAIL" else None,
        "r_hat": _finite(result.r_hat),
        "acceptance rate": result.acceptance_rate,
        "divergences": result.divergences,
        "warnings": list(result.warnings),
        **extra,
    }


def run_suite(
    models: Sequence[str] | Mapping[str, Target] | None = None,
    contenders: Sequence[str] | None = None,
    num_chains: int = 16,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    nuts_chains: int = 4,
    seed: int = 0,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``contenders`` on ``models`` and collect the rows.

    :param models: names of :data:`~pyro_simplehmc.checks.gym_targets.GYM_TARGETS` (default:
        all eight), or targets by name (a truth of your own, e.g. to check the verdict).
    :param contenders: names of :data:`CONTENDERS` (default :data:`DEFAULT_CONTENDERS`).
    :param num_chains: chains of the vectorized and the JAX contenders.
    :param nuts_chains: chains of Pyro's NUTS (run one after the other).
    :param out: a folder for ``results.json`` and ``results.md``, rewritten after every row.
    :param progress: called with a line after every row (e.g. ``print``).
    :returns: ``{"settings": ..., "rows": [...], "notes": [...]}``.
    """
    if models is None:
        models = SUITES["mams"]
    if isinstance(models, Mapping):
        targets = dict(models)
    else:
        targets = {}
        for name in models:
            key = str(name).replace("-", "_")
            if key not in GYM_TARGETS:
                raise ValueError(f"unknown model {name!r}; choose from {list(GYM_TARGETS)}")
            targets[key] = None  # built when its turn comes
    contenders = list(DEFAULT_CONTENDERS if contenders is None else contenders)
    for name in contenders:
        if name not in CONTENDERS:
            raise ValueError(f"unknown contender {name!r}; choose from {list(CONTENDERS)}")
    for label, value in (("num_chains", num_chains), ("nuts_chains", nuts_chains)):
        check.int_at_least(label, value, 2)
    check.positive_int("num_samples", num_samples)
    check.nonnegative_int("warmup_steps", warmup_steps)
    settings = {
        "models": list(targets),
        "contenders": contenders,
        "num_chains": num_chains,
        "nuts_chains": nuts_chains,
        "num_samples": num_samples,
        "warmup_steps": warmup_steps,
        "seed": seed,
        "torch threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    payload: dict[str, Any] = {"settings": settings, "rows": [], "notes": []}
    for model, target in targets.items():
        if target is None:
            target = GYM_TARGETS[model]()
        for name in contenders:
            start = time.perf_counter()
            try:
                result, extra = run_contender(
                    name, target, num_chains, num_samples, warmup_steps, seed, nuts_chains
                )
            except Exception as error:  # one failure must not lose the others' results
                payload["rows"].append(
                    {
                        "model": model,
                        "contender": name,
                        "error": f"{type(error).__name__}: {error}",
                        "traceback": traceback.format_exc(limit=4),
                    }
                )
                line = f"{model} / {name}: ERROR {type(error).__name__}: {error}"
            else:
                if result is None:
                    payload["notes"].append(f"{model} / {name}: {extra.get('note')}")
                    line = f"{model} / {name}: {extra.get('note')}"
                else:
                    record = row(model, name, result, extra)
                    payload["rows"].append(record)
                    line = (
                        f"{model} / {name}: {HEADLINE} {record[HEADLINE]}, "
                        f"ESS/1000 grads {record['ESS per 1000 gradients']:.3g}, "
                        f"{record['verdict']} (max|z| {record['max |z| vs truth']}), "
                        f"{time.perf_counter() - start:.0f} s"
                    )
            if progress is not None:
                progress(line)
            if out is not None:
                write_results(payload, out)
    return payload


def _interval(r: dict) -> str:
    low, high = r[f"{HEADLINE} interval"]

    def fmt(v):
        return "-" if v is None else "inf" if v == "inf" else f"{v:,.0f}"

    return f"[{fmt(low)}, {fmt(high)}]"


def markdown_table(payload: dict[str, Any]) -> str:
    """One line per model and contender."""
    lines = [
        "| model | contender | gradients (all chains) to pooled b² < 0.01 [95%] | "
        "per chain to per-chain b² < 0.01 | warmup grads/chain | ESS per 1000 grads | wall s | "
        "truth (max \\|z\\|) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        if "error" in r:
            lines.append(
                f"| {r['model']} | {r['contender']} | ERROR: {r['error'][:80]} | | | | | |"
            )
            continue
        low_bias = r[HEADLINE]
        low_bias = "not reached" if low_bias is None else f"{low_bias:,.0f} {_interval(r)}"
        if r["cost unit"] != "gradients":
            low_bias += " (potentials)"
        paper = "not reached" if r[PER_CHAIN] is None else f"{r[PER_CHAIN]:,.0f}"
        z = r["max |z| vs truth"]
        lines.append(
            f"| {r['model']} | {r['contender']} | {low_bias} | {paper} | "
            f"{r['warmup gradients per chain']:,.0f} | {r['ESS per 1000 gradients']:.3g} | "
            f"{r['wall seconds']:.0f} | {r['verdict']} ({'-' if z is None else f'{z:.1f}'}) |"
        )
    return "\n".join(lines)


def goal_verdicts(payload: dict[str, Any]) -> dict[str, Any]:
    """Issue 22's goals in this run: MAMS at most half NUTS's gradients to low bias on at least
    6 of the 8 models, within 1.2x of BlackJAX's adjusted MCLMC on each, no wrong answer."""
    by = {(r["model"], r["contender"]): r for r in payload["rows"] if "error" not in r}
    models = list(dict.fromkeys(r["model"] for r in payload["rows"]))
    per_model = {}
    for model in models:
        mams = by.get((model, "MAMS"), {}).get(HEADLINE)
        nuts = by.get((model, "NUTS"), {}).get(HEADLINE)
        jax_row = by.get((model, "blackjax-MAMS"), {})
        jax_mams = jax_row.get(HEADLINE)
        # BlackJAX's chains in lockstep (the batch's cost) or each at its own cost
        jax_own = jax_mams / jax_row["lockstep / own gradients"] if jax_mams else None
        per_model[model] = {
            "NUTS / MAMS": nuts / mams if mams and nuts else None,
            "MAMS / blackjax-MAMS": mams / jax_mams if mams and jax_mams else None,
            "MAMS / blackjax-MAMS (own cost)": mams / jax_own if mams and jax_own else None,
            "MAMS reached": mams is not None,
        }
    half = sum(1 for v in per_model.values() if v["NUTS / MAMS"] and v["NUTS / MAMS"] >= 2)
    both = sum(1 for v in per_model.values() if v["NUTS / MAMS"] is not None)
    within = [v["MAMS / blackjax-MAMS"] for v in per_model.values()]
    within_own = [v["MAMS / blackjax-MAMS (own cost)"] for v in per_model.values()]
    wrong = [f"{r['model']} / {r['contender']}" for r in by.values() if r["verdict"] == "FAIL"]
    unreliable = [
        f"{r['model']} / {r['contender']}"
        for r in by.values()
        if r["verdict"] not in ("PASS", "FAIL")
    ]
    return {
        "per model": per_model,
        "MAMS <= half NUTS's gradients": (
            f"{half} of {both} models with both measured, of {len(models)} run (goal: 6 of 8)"
        ),
        "MAMS within 1.2x of blackjax-MAMS": (
            f"{sum(1 for w in within if w is not None and w <= 1.2)} of "
            f"{sum(1 for w in within if w is not None)} models with both measured"
        ),
        "MAMS within 1.2x of blackjax-MAMS at its chains' own cost": (
            f"{sum(1 for w in within_own if w is not None and w <= 1.2)} of "
            f"{sum(1 for w in within_own if w is not None)} models with both measured"
        ),
        "wrong answers (FAIL)": wrong,
        "unreliable verdicts": unreliable,
    }


def write_results(payload: dict[str, Any], out: str | Path) -> Path:
    """Write ``results.json`` and ``results.md`` into ``out``; returns the JSON's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    goals = goal_verdicts(payload)
    path = out / "results.json"
    path.write_text(json.dumps({**payload, "goals": goals}, indent=1, default=str))
    notes = "\n".join(f"- {n}" for n in payload["notes"])
    goal_lines = "\n".join(f"- {k}: {v}" for k, v in goals.items() if k != "per model")

    def ratio(value):
        return "-" if value is None else f"{value:.2f}"

    ratios = "\n".join(
        f"| {m} | {ratio(v['NUTS / MAMS'])} | {ratio(v['MAMS / blackjax-MAMS'])} | "
        f"{ratio(v['MAMS / blackjax-MAMS (own cost)'])} |"
        for m, v in goals["per model"].items()
    )
    settings = ", ".join(f"{k} {v}" for k, v in payload["settings"].items())
    text = (
        f"# simplehmc benchmark --suite mams\n\nSettings: {settings}\n\n"
        f"{markdown_table(payload)}\n\n"
        "| model | NUTS / MAMS, gradients to b² < 0.01 | MAMS / blackjax-MAMS (lockstep) | "
        "MAMS / blackjax-MAMS (own cost) |\n|---|---|---|---|\n"
        f"{ratios}\n\n{goal_lines}\n" + (f"\nNotes:\n{notes}\n" if notes else "")
    )
    (out / "results.md").write_text(text)
    return path


__all__ = [
    "CONTENDERS",
    "DEFAULT_CONTENDERS",
    "JAX_CONTENDERS",
    "OUR_CONTENDERS",
    "PYRO_CONTENDERS",
    "QUICK",
    "SUITES",
    "goal_verdicts",
    "markdown_table",
    "per_chain_bias",
    "row",
    "run_contender",
    "run_suite",
    "write_results",
]
