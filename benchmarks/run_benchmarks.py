r"""Per-step cost of the kernels against minimal torch loops, Pyro's HMC, RandomWalkKernel and NUTS.

Run from the repository root::

    python benchmarks/run_benchmarks.py            # quick: about two minutes
    python benchmarks/run_benchmarks.py --full     # more repetitions and longer ESS runs
    python benchmarks/run_benchmarks.py --no-write # print only, leave docs/performance.md alone

The script prints Markdown tables and writes them between the ``results`` markers of
``docs/performance.md``.

How it measures. Every contender is an object with a ``step()`` that runs one MCMC iteration.
The contenders of one comparison run *interleaved*: round after round, each one runs a short
batch of iterations, and the median over rounds is reported. Time is the CPU time of this
process (:func:`time.process_time`), which other jobs on a shared machine disturb far less than
wall time. Ratios between contenders of the same comparison are the numbers to read; absolute
times depend on the machine.

What is compared.

- *Minimal loops*: the obvious hand-written torch loop for each algorithm on the same
  ``potential_fn``, with the same work per iteration (momentum or noise draw, the gradient or
  potential evaluations, the accept/reject with one host synchronisation) and an identity mass
  matrix. This is the cost of the algorithm itself; the ratio of a kernel to it is the overhead.
- *Kernels*, driven by calling ``kernel.sample(params)`` after ``kernel.setup(0)``, as
  :class:`pyro.infer.MCMC` does, without the progress bar and sample storage that MCMC adds to
  every kernel alike. Adaptation is off, the step size and number of steps are the same.
- *ESS per second* of full :class:`~pyro.infer.MCMC` runs with adaptation on, against NUTS.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import arviz as az
import pyro
import torch
from pyro.infer import HMC, MCMC, NUTS, RandomWalkKernel
from pyro.infer.mcmc.util import initialize_model

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.targets import (
    correlated_gaussian,
    diagonal_gaussian,
    logistic_regression,
)

DTYPE = torch.float64
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
NUM_STEPS = 10  # leapfrog steps per HMC iteration

Potential = Callable[[dict[str, torch.Tensor]], torch.Tensor]


# ---------------------------------------------------------------------------- targets


def diagonal_potential(dim: int) -> tuple[Potential, dict[str, torch.Tensor]]:
    """The scaling target's potential written by hand: the cheapest gradient, the harshest test.

    Variances ``linspace(0.1, 1, dim)``, one site ``"x"``.
    """
    precision = 1.0 / torch.linspace(0.1, 1.0, dim, dtype=DTYPE)

    def potential_fn(params: dict[str, torch.Tensor]) -> torch.Tensor:
        x = params["x"]
        return 0.5 * (x * x * precision).sum(-1)

    return potential_fn, {"x": torch.full((dim,), 0.5, dtype=DTYPE)}


def hmc_step_size(dim: int) -> float:
    # About the optimal scale for the narrowest coordinate (sd 0.32): acceptance near 0.7-0.9.
    return 0.6 * math.sqrt(0.1) * dim**-0.25


# ---------------------------------------------------------------------------- minimal loops


def _value_and_grad(potential_fn: Potential, q: torch.Tensor):
    q = q.detach().requires_grad_(True)
    u = potential_fn({"x": q})
    (grad,) = torch.autograd.grad(u, q)
    return u.detach(), grad


def _accept(log_ratio: torch.Tensor) -> bool:
    return math.log(torch.rand(()).item()) < float(log_ratio)  # the one host sync


class MinimalHMC:
    """Hand-written HMC: identity mass, fixed step size and number of steps."""

    def __init__(self, potential_fn, init, step_size, num_steps):
        self.potential_fn, self.eps, self.num_steps = potential_fn, step_size, num_steps
        self.q = init["x"]
        self.u, self.grad = _value_and_grad(potential_fn, self.q)

    def step(self):
        eps = self.eps
        p0 = torch.randn_like(self.q)
        q, p, grad = self.q, p0, self.grad
        for _ in range(self.num_steps):
            p = p - (0.5 * eps) * grad
            q = q + eps * p
            u, grad = _value_and_grad(self.potential_fn, q)
            p = p - (0.5 * eps) * grad
        log_ratio = self.u + 0.5 * (p0 * p0).sum() - u - 0.5 * (p * p).sum()
        if _accept(log_ratio):
            self.q, self.u, self.grad = q, u, grad


class MinimalMALA:
    """Hand-written MALA: identity mass, fixed step size."""

    def __init__(self, potential_fn, init, step_size):
        self.potential_fn, self.eps = potential_fn, step_size
        self.q = init["x"]
        self.u, self.grad = _value_and_grad(potential_fn, self.q)

    def step(self):
        eps, q, grad = self.eps, self.q, self.grad
        noise = torch.randn_like(q)
        q_new = q - (0.5 * eps**2) * grad + eps * noise
        u_new, grad_new = _value_and_grad(self.potential_fn, q_new)
        back = (q - q_new + (0.5 * eps**2) * grad_new) / eps
        log_ratio = self.u - u_new - 0.5 * (back * back).sum() + 0.5 * (noise * noise).sum()
        if _accept(log_ratio):
            self.q, self.u, self.grad = q_new, u_new, grad_new


class MinimalRW:
    """Hand-written random-walk Metropolis: no gradient, one potential per iteration."""

    def __init__(self, potential_fn, init, step_size):
        self.potential_fn, self.eps = potential_fn, step_size
        self.q = init["x"]
        with torch.no_grad():
            self.u = potential_fn({"x": self.q})

    def step(self):
        q_new = self.q + self.eps * torch.randn_like(self.q)
        with torch.no_grad():
            u_new = self.potential_fn({"x": q_new})
        if _accept(self.u - u_new):
            self.q, self.u = q_new, u_new


class KernelRunner:
    """Drives a Pyro-style kernel the way :class:`~pyro.infer.MCMC` does, without its extras."""

    def __init__(self, kernel, init=None, model_args=()):
        if init is not None:
            kernel.initial_params = init
        kernel.setup(0, *model_args)
        self.kernel = kernel
        self.params = kernel.initial_params

    def step(self):
        self.params = self.kernel.sample(self.params)


# ---------------------------------------------------------------------------- timing


#: CPU seconds that one batch of one contender should take (batches are interleaved).
BATCH_SECONDS = 0.04


class Timings(dict):
    """Per-round CPU seconds per iteration, keyed by contender."""

    def median(self, name: str) -> float:
        return statistics.median(self[name])

    def ratio(self, name: str, baseline: str) -> float:
        """The median over rounds of the within-round ratio: the load on a shared machine drifts
        between rounds, and the contenders of one round share it."""
        return statistics.median(a / b for a, b in zip(self[name], self[baseline], strict=True))

    def per(self, divisor: float) -> Timings:
        return Timings({name: [t / divisor for t in ts] for name, ts in self.items()})


def interleaved(runners: dict[str, object], rounds: int) -> Timings:
    """CPU seconds per iteration of each runner, batches interleaved over ``rounds``.

    Each runner's batch size is set so that a batch takes about :data:`BATCH_SECONDS`; the
    calibration steps also warm caches, allocators and JIT traces.
    """
    iterations = {}
    for name, runner in runners.items():
        runner.step()
        start = time.process_time()
        runner.step()
        seconds = time.process_time() - start
        iterations[name] = max(3, min(2000, round(BATCH_SECONDS / max(seconds, 1e-6))))
    times = Timings({name: [] for name in runners})
    for _ in range(rounds):
        for name, runner in runners.items():
            # One untimed step first, so that each batch starts from its own warm state.
            runner.step()
            start = time.process_time()
            for _ in range(iterations[name]):
                runner.step()
            times[name].append((time.process_time() - start) / iterations[name])
    return times


def interleaved_calls(fns: dict[str, Callable], rounds: int) -> Timings:
    """The same for plain functions."""
    runners = {name: type("Call", (), {"step": staticmethod(fn)})() for name, fn in fns.items()}
    return interleaved(runners, rounds)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


# ---------------------------------------------------------------------------- the benchmarks


def per_step_table(dims, rounds) -> tuple[list[str], dict]:
    """Per leapfrog step (HMC) or per iteration (MALA, RW) on ``potential_fn`` targets."""
    lines = [
        "| D | SimpleHMC µs/step | minimal HMC | Pyro HMC | SimpleHMC / minimal "
        "| SimpleHMC / Pyro HMC | MALA µs/it | minimal MALA | MALA / minimal "
        "| RandomWalkMH µs/it | minimal RW | RW / minimal |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for dim in dims:
        potential_fn, init = diagonal_potential(dim)
        eps = hmc_step_size(dim)
        off = {"adapt_step_size": False, "adapt_mass_matrix": False}
        hmc_runners = {
            "simple": KernelRunner(
                SimpleHMC(potential_fn=potential_fn, step_size=eps, num_steps=NUM_STEPS, **off),
                dict(init),
            ),
            "minimal": MinimalHMC(potential_fn, dict(init), eps, NUM_STEPS),
            "pyro": KernelRunner(
                HMC(potential_fn=potential_fn, step_size=eps, num_steps=NUM_STEPS, **off),
                dict(init),
            ),
        }
        hmc = interleaved(hmc_runners, rounds).per(NUM_STEPS)
        mala_eps = 1.2 * math.sqrt(0.1) * dim ** (-1 / 6)
        rw_eps = 2.38 * math.sqrt(0.1) / math.sqrt(dim)
        mh = interleaved(
            {
                "mala": KernelRunner(
                    MALA(potential_fn=potential_fn, step_size=mala_eps, **off), dict(init)
                ),
                "minimal mala": MinimalMALA(potential_fn, dict(init), mala_eps),
                "rw": KernelRunner(
                    RandomWalkMH(potential_fn=potential_fn, step_size=rw_eps, **off), dict(init)
                ),
                "minimal rw": MinimalRW(potential_fn, dict(init), rw_eps),
            },
            rounds,
        )
        r = {
            "hmc/minimal": hmc.ratio("simple", "minimal"),
            "hmc/pyro": hmc.ratio("simple", "pyro"),
            "mala/minimal": mh.ratio("mala", "minimal mala"),
            "rw/minimal": mh.ratio("rw", "minimal rw"),
        }
        ratios[dim] = r
        lines.append(
            f"| {dim:,} | {us(hmc.median('simple'))} | {us(hmc.median('minimal'))} "
            f"| {us(hmc.median('pyro'))} | {r['hmc/minimal']:.2f} | {r['hmc/pyro']:.2f} "
            f"| {us(mh.median('mala'))} | {us(mh.median('minimal mala'))} "
            f"| {r['mala/minimal']:.2f} | {us(mh.median('rw'))} | {us(mh.median('minimal rw'))} "
            f"| {r['rw/minimal']:.2f} |"
        )
        print(lines[-1], flush=True)
    return lines, ratios


def model_table(rounds) -> tuple[list[str], dict]:
    """Kernels given ``model=``, with and without the JIT, and the potential-and-gradient cost."""
    lines = [
        "| model | jit | SimpleHMC µs/step | minimal HMC | Pyro HMC | SimpleHMC / minimal "
        "| SimpleHMC / Pyro HMC | RandomWalkMH µs/it | Pyro RandomWalkKernel | RW / Pyro RW "
        "| value+grad µs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    speedups = {}
    for target in (diagonal_gaussian(100), logistic_regression()):
        grad_cost = {}
        for jit in (False, True):
            pyro.set_rng_seed(0)
            pyro.clear_param_store()
            init, potential_fn, _, _ = initialize_model(
                target.model, jit_compile=jit, skip_jit_warnings=True
            )
            init = {k: v.detach() for k, v in init.items()}
            (name,) = init  # both targets have one site

            def potential_on_x(params, potential_fn=potential_fn, name=name):
                return potential_fn({name: params["x"]})

            eps = 0.5 * hmc_step_size(target.dim)
            jit_kwargs = {"jit_compile": jit, "ignore_jit_warnings": True}
            off = {"adapt_step_size": False, "adapt_mass_matrix": False}
            hmc = interleaved(
                {
                    "simple": KernelRunner(
                        SimpleHMC(
                            target.model, step_size=eps, num_steps=NUM_STEPS, **off, **jit_kwargs
                        )
                    ),
                    "minimal": MinimalHMC(potential_on_x, {"x": init[name]}, eps, NUM_STEPS),
                    "pyro": KernelRunner(
                        HMC(target.model, step_size=eps, num_steps=NUM_STEPS, **off, **jit_kwargs)
                    ),
                },
                rounds,
            )
            hmc = hmc.per(NUM_STEPS)
            rw_eps = 2.38 * math.sqrt(0.1) / math.sqrt(target.dim)
            rw = interleaved(
                {
                    "simple": KernelRunner(
                        RandomWalkMH(target.model, step_size=rw_eps, **off, **jit_kwargs)
                    ),
                    "pyro": KernelRunner(RandomWalkKernel(target.model, init_step_size=rw_eps)),
                },
                rounds,
            )
            q = init[name]

            def value_and_grad_once(potential_on_x=potential_on_x, q=q):
                return _value_and_grad(potential_on_x, q)

            grad_cost[jit] = interleaved_calls({"vg": value_and_grad_once}, rounds).median("vg")
            lines.append(
                f"| {target.name} (D={target.dim}) | {'on' if jit else 'off'} "
                f"| {us(hmc.median('simple'))} | {us(hmc.median('minimal'))} "
                f"| {us(hmc.median('pyro'))} | {hmc.ratio('simple', 'minimal'):.2f} "
                f"| {hmc.ratio('simple', 'pyro'):.2f} | {us(rw.median('simple'))} "
                f"| {us(rw.median('pyro'))} | {rw.ratio('simple', 'pyro'):.2f} "
                f"| {us(grad_cost[jit])} |"
            )
            print(lines[-1], flush=True)
        speedups[target.name] = grad_cost[False] / grad_cost[True]
    return lines, speedups


def min_ess(samples: torch.Tensor) -> float:
    """The smallest bulk ESS (arviz) over the coordinates of one chain's draws ``(N, D)``."""
    data = az.convert_to_dataset({"x": samples.detach().double().numpy()[None]})
    return float(az.ess(data)["x"].values.min())


def ess_table(num_warmup, num_samples, dense_nuts_at_100: bool) -> list[str]:
    """ESS per CPU second of whole runs (warmup included), adaptation on, one chain each.

    Dense NUTS at D=100 takes over a minute of warmup (deep trees while the 100 x 100 matrix is
    learnt), so the quick mode leaves it out.
    """
    lines = [
        "| target | kernel | gradients | CPU s | min ESS | ESS / s | ESS / s vs NUTS (diag) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    contenders = {
        "SimpleHMC (diag)": lambda pot: SimpleHMC(potential_fn=pot),
        "SimpleHMC (dense)": lambda pot: SimpleHMC(potential_fn=pot, full_mass=True),
        "SimpleHMC (diag, step_size_jitter=0.5)": lambda pot: SimpleHMC(
            potential_fn=pot, step_size_jitter=0.5
        ),
        "MALA (diag)": lambda pot: MALA(potential_fn=pot),
        "RandomWalkMH (diag)": lambda pot: RandomWalkMH(potential_fn=pot),
        "NUTS (diag)": lambda pot: NUTS(potential_fn=pot),
        "NUTS (dense)": lambda pot: NUTS(potential_fn=pot, full_mass=True),
    }
    for target in (correlated_gaussian(), diagonal_gaussian(100)):
        rows = []
        for name, make in contenders.items():
            if name == "NUTS (dense)" and target.dim == 100 and not dense_nuts_at_100:
                continue
            pyro.set_rng_seed(1)
            mcmc = MCMC(
                make(target.potential_fn),
                num_samples=num_samples,
                warmup_steps=num_warmup,
                initial_params=dict(target.initial_params),
                disable_progbar=True,
            )
            start = time.process_time()
            mcmc.run()
            seconds = time.process_time() - start
            ess = min_ess(target.flatten(mcmc.get_samples()))
            grads = mcmc.diagnostics().get("gradient evaluations", {}).get("chain 0")
            grads = "" if grads is None else f"{grads['warmup'] + grads['sampling']:,}"
            rows.append((name, grads, seconds, ess, ess / seconds))
        nuts = dict((r[0], r[4]) for r in rows)["NUTS (diag)"]
        for name, grads, seconds, ess, rate in rows:
            lines.append(
                f"| {target.name} (D={target.dim}) | {name} | {grads} | {seconds:.1f} "
                f"| {ess:.0f} | {rate:.0f} | {rate / nuts:.2f} |"
            )
            print(lines[-1], flush=True)
    return lines


SCALE_DIM = 10_000


def _status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (Linux), in bytes."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s*(\d+) kB", f.read()).group(1)) * 1024


def _reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets the high-water mark VmHWM (Linux >= 4.0), so that the peak
    # of the run is not hidden under the peak of importing torch.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def scale_child(kernel_name: str, iterations: int) -> None:
    """In a fresh process: ``iterations`` of one kernel at D=10,000 (half warmup, adapting)."""
    potential_fn, init = diagonal_potential(SCALE_DIM)
    kernel = {"SimpleHMC": SimpleHMC, "MALA": MALA, "RandomWalkMH": RandomWalkMH}[kernel_name]
    pyro.set_rng_seed(0)
    kernel = kernel(potential_fn=potential_fn)
    kernel.initial_params = init
    kernel.setup(iterations // 2)
    params = kernel.initial_params
    params = kernel.sample(params)  # the first step allocates the adapter's buffers
    _reset_peak_rss()
    before = _status_bytes("VmRSS")
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for _ in range(iterations - 1):
        params = kernel.sample(params)
    peak = _status_bytes("VmHWM")
    print(
        json.dumps(
            {
                "cpu": time.process_time() - start_cpu,
                "wall": time.perf_counter() - start_wall,
                "extra_peak": max(0, peak - before),
                "gradients": sum(kernel.diagnostics()["gradient evaluations"].values()),
                "acceptance": kernel.diagnostics()["acceptance rate"],
            }
        )
    )


def scale_table(iterations: int) -> list[str]:
    lines = [
        f"| kernel (D={SCALE_DIM:,}, {iterations:,} iterations) | gradients | CPU s | wall s "
        "| acceptance | peak memory above the start | in D-vectors of float64 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("SimpleHMC", "MALA", "RandomWalkMH"):
        out = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--scale-child",
                    name,
                    "--iterations",
                    str(iterations),
                    "--threads",
                    str(torch.get_num_threads()),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        r = json.loads(out)
        vectors = r["extra_peak"] / (8 * SCALE_DIM)
        lines.append(
            f"| {name} | {r['gradients']:,} | {r['cpu']:.1f} | {r['wall']:.1f} "
            f"| {r['acceptance']:.2f} | {r['extra_peak'] / 2**20:.1f} MiB | {vectors:.0f} |"
        )
        print(lines[-1], flush=True)
    return lines


# ---------------------------------------------------------------------------- report


def target_lines(ratios, speedups) -> list[str]:
    r = ratios[100]
    checks = [
        ("SimpleHMC / minimal HMC, D=100", r["hmc/minimal"], "≤ 1.15", r["hmc/minimal"] <= 1.15),
        ("SimpleHMC / Pyro HMC, D=100", r["hmc/pyro"], "≤ 0.80", r["hmc/pyro"] <= 0.8),
        ("MALA / minimal MALA, D=100", r["mala/minimal"], "≤ 1.20", r["mala/minimal"] <= 1.2),
        ("RandomWalkMH / minimal RW, D=100", r["rw/minimal"], "≤ 1.20", r["rw/minimal"] <= 1.2),
    ]
    for name, speedup in speedups.items():
        checks.append((f"jit speed-up of value+grad, {name}", speedup, "≥ 2.5", speedup >= 2.5))
    lines = ["| target | measured | goal | met |", "|---|---:|---|---|"]
    for name, value, goal, met in checks:
        lines.append(f"| {name} | {value:.2f} | {goal} | {'yes' if met else '**no**'} |")
    return lines


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), pyro {pyro.__version__}, "
        f"Python {platform.python_version()}"
    )


def write_docs(block: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else f"{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{START}\n{block}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="more repetitions, longer ESS runs")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs page")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--scale-child", help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.scale_child:
        torch.set_num_threads(args.threads)
        scale_child(args.scale_child, args.iterations)
        return

    # One intra-op thread: on this machine torch 2.13 hands even 100-element ops such as
    # binary_cross_entropy_with_logits to its thread pool, which costs milliseconds instead of
    # microseconds under load (see docs/performance.md). Every contender gets the same setting.
    torch.set_num_threads(args.threads)
    pyro.set_rng_seed(0)
    rounds = 21 if args.full else 7
    num_warmup, num_samples = (1000, 2000) if args.full else (300, 500)
    started = time.perf_counter()
    command = "python benchmarks/run_benchmarks.py" + (" --full" if args.full else "")
    print(f"# {command}\n# {machine()}", flush=True)
    step_lines, ratios = per_step_table([2, 100, 1000, 10_000], rounds)
    model_lines, speedups = model_table(rounds)
    ess_lines = ess_table(num_warmup, num_samples, dense_nuts_at_100=args.full)
    scale_lines = scale_table(1000)
    block = "\n".join(
        [
            f"Generated by `{command}` in {time.perf_counter() - started:.0f} s on "
            f"{machine()}. Times: CPU time of the benchmark process, medians over "
            f"{rounds} interleaved rounds; ratios: medians of the within-round ratios.",
            "",
            "### Targets",
            "",
            *target_lines(ratios, speedups),
            "",
            "### Per step on a `potential_fn` (diagonal Gaussian, float64)",
            "",
            "HMC: per leapfrog step, "
            f"{NUM_STEPS} steps per iteration; MALA and random walk: per iteration.",
            "",
            *step_lines,
            "",
            "### Kernels given `model=`, with and without `jit_compile`",
            "",
            "value+grad: one potential-and-gradient evaluation of Pyro's potential for the model.",
            "",
            *model_lines,
            "",
            f"### ESS per second, adapted kernels against NUTS ({num_warmup} warmup + "
            f"{num_samples} draws, one chain)",
            "",
            *ess_lines,
            "",
            "### Scale: 10,000-dimensional diagonal Gaussian",
            "",
            *scale_lines,
        ]
    )
    print("\n" + block)
    if not args.no_write:
        write_docs(block)
        print(f"\nwritten to {DOCS}")


if __name__ == "__main__":
    main()
