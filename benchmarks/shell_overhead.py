r"""What the shell costs: SimpleHMC through ``MCMC`` against a bare torch loop and Pyro's HMC.

Run from the repository root::

    python benchmarks/shell_overhead.py            # about two minutes
    python benchmarks/shell_overhead.py --rounds 15 --no-write

On a 100-D diagonal Gaussian (a cheap gradient: the harshest test of the overhead), with a fixed
step size, 10 leapfrog steps and no adaptation, each contender runs whole ``MCMC`` runs of
``--iterations`` iterations (setup included), interleaved round after round; the median over
rounds of the within-round ratio is reported, in CPU time of this one process.

- one chain: a bare torch loop (:class:`MinimalHMC`); SimpleHMC through :class:`pyro.infer.MCMC`;
  Pyro's :class:`~pyro.infer.HMC` through :class:`pyro.infer.MCMC`;
- a batch of 64 chains: the same bare loop on ``(64, D)`` with one accept per chain
  (``torch.where``); SimpleHMC through ``pyro_simplehmc.MCMC(chain_method="vectorized")``;
  Pyro's HMC per chain (64 chains cost 64 single-chain runs).

Issue 21's goals: per gradient, SimpleHMC at most 1.2x the bare loop and at most 0.8x Pyro's
HMC, with and without a batch. The tables go between the ``shell`` markers of
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
import warnings
from datetime import date
from pathlib import Path

import pyro
import torch
from pyro.infer import HMC
from pyro.infer import MCMC as PyroMCMC

from pyro_simplehmc import MCMC, SimpleHMC

DTYPE = torch.float64
DIM, NUM_STEPS, CHAINS = 100, 10, 64
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
START, END = "<!-- shell:start -->", "<!-- shell:end -->"
PRECISION = 1.0 / torch.linspace(0.1, 1.0, DIM, dtype=DTYPE)
STEP_SIZE = 0.6 * math.sqrt(0.1) * DIM**-0.25


def potential_fn(params: dict[str, torch.Tensor]) -> torch.Tensor:
    x = params["x"]
    return 0.5 * (x * x * PRECISION).sum(-1)


def _value_and_grad(q: torch.Tensor):
    q = q.detach().requires_grad_(True)
    u = potential_fn({"x": q})
    (grad,) = torch.autograd.grad(u.sum(), q)
    return u.detach(), grad


def minimal_run(iterations: int, num_chains: int | None) -> None:
    """The bare loop: identity mass, fixed step size and length, one accept per chain."""
    shape = (DIM,) if num_chains is None else (num_chains, DIM)
    q = torch.randn(shape, dtype=DTYPE)
    u, grad = _value_and_grad(q)
    eps, half = STEP_SIZE, 0.5 * STEP_SIZE
    for _ in range(iterations):
        p0 = torch.randn_like(q)
        q1, p, g = q, p0, grad
        for _ in range(NUM_STEPS):
            p = p - half * g
            q1 = q1 + eps * p
            u1, g = _value_and_grad(q1)
            p = p - half * g
        log_ratio = u + 0.5 * (p0 * p0).sum(-1) - u1 - 0.5 * (p * p).sum(-1)
        accept = torch.rand_like(u).log() < log_ratio
        if num_chains is None:
            if bool(accept):  # the one host synchronisation
                q, u, grad = q1, u1, g
        else:
            q = torch.where(accept[:, None], q1, q)
            u = torch.where(accept, u1, u)
            grad = torch.where(accept[:, None], g, grad)


def simplehmc_run(iterations: int, num_chains: int | None) -> None:
    kernel = SimpleHMC(potential_fn=potential_fn, step_size=STEP_SIZE, num_steps=NUM_STEPS,
                       num_steps_jitter=0.0, adapt_step_size=False, adapt_mass_matrix=False,
                       batched_potential=num_chains is not None)  # fmt: skip
    if num_chains is None:
        mcmc = PyroMCMC(kernel, iterations, 0, initial_params={"x": torch.randn(DIM, dtype=DTYPE)},
                        disable_progbar=True)  # fmt: skip
    else:
        init = {"x": torch.randn(num_chains, DIM, dtype=DTYPE)}
        mcmc = MCMC(kernel, iterations, 0, initial_params=init, num_chains=num_chains,
                    chain_method="vectorized", disable_progbar=True)  # fmt: skip
    mcmc.run()


def pyro_hmc_run(iterations: int, num_chains: int | None) -> None:
    for _ in range(num_chains or 1):
        kernel = HMC(potential_fn=potential_fn, step_size=STEP_SIZE, num_steps=NUM_STEPS,
                     adapt_step_size=False, adapt_mass_matrix=False)  # fmt: skip
        init = {"x": torch.randn(DIM, dtype=DTYPE)}
        PyroMCMC(kernel, iterations, 0, initial_params=init, disable_progbar=True).run()


CONTENDERS = {"bare torch loop": minimal_run, "SimpleHMC": simplehmc_run,
              "Pyro HMC": pyro_hmc_run}  # fmt: skip


def measure(num_chains: int | None, iterations: int, rounds: int) -> dict[str, list[float]]:
    """CPU seconds per gradient (per chain), per round, for every contender."""
    gradients = iterations * NUM_STEPS * (num_chains or 1)
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for run in CONTENDERS.values():  # warm up (imports, caches)
        run(5, num_chains)
    for _ in range(rounds):
        for name, run in CONTENDERS.items():
            start = time.process_time()
            run(iterations if name != "Pyro HMC" or num_chains is None else iterations // 4,
                num_chains)  # fmt: skip
            spent = time.process_time() - start
            scale = 4 if name == "Pyro HMC" and num_chains is not None else 1
            times[name].append(spent * scale / gradients)
    return times


def ratio(times: dict[str, list[float]], name: str, baseline: str) -> float:
    """The median over rounds of the within-round ratio (the contenders of a round share the
    machine's load)."""
    return statistics.median(a / b for a, b in zip(times[name], times[baseline], strict=True))


def table(iterations: int, rounds: int) -> list[str]:
    lines = [
        "| chains | bare loop (µs / gradient) | SimpleHMC / bare loop (goal ≤ 1.2) | "
        "SimpleHMC / Pyro HMC (goal ≤ 0.8) |",
        "|---|---|---|---|",
    ]
    for num_chains in (None, CHAINS):
        times = measure(num_chains, iterations, rounds)
        bare = statistics.median(times["bare torch loop"]) * 1e6
        lines.append(
            f"| {num_chains or 1} | {bare:.1f} | {ratio(times, 'SimpleHMC', 'bare torch loop'):.2f}"
            f" | {ratio(times, 'SimpleHMC', 'Pyro HMC'):.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    pyro.set_rng_seed(0)
    lines = table(args.iterations, args.rounds)
    lines += ["", f"Measured {date.today()} on {platform.machine()} ({platform.processor() or '?'}"
              f"), torch {torch.__version__}, pyro {pyro.__version__}, {args.rounds} rounds of "
              f"{args.iterations} iterations, CPU time of one process."]  # fmt: skip
    block = "\n".join(lines)
    print(block)
    if not args.no_write:
        text = DOCS.read_text()
        if START in text:
            head, rest = text.split(START, 1)
            text = head + START + "\n" + block + "\n" + END + rest.split(END, 1)[1]
            DOCS.write_text(text)


if __name__ == "__main__":
    main()
