"""What the kernels would cost with three changes to files this benchmark does not own.

Run from the repository root::

    python benchmarks/what_if_shell.py

It patches, in this process only, each of

- ``view``: :meth:`DictRavel.unflatten` returns the flat vector itself for a single site of the
  same shape (a ``view`` is one more autograd node per gradient);
- ``mh``: :func:`metropolis_hastings` decides from ``float(log_accept_ratio)`` alone (NaN and
  +inf reject) instead of three ``isfinite`` tensor checks and a ``where``;
- ``validation``: no ``pyro.validation_enabled(False)`` switch per iteration;

and all three together, and prints each kernel's ratio to its minimal loop at D = 100, measured
as in ``run_benchmarks.py``. The numbers are quoted in docs/performance.md.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def patch(which: set[str]) -> None:
    import pyro_simplehmc.kernels.base as base
    import pyro_simplehmc.ravel as ravel

    if "view" in which:
        unflatten = ravel.DictRavel.unflatten

        def unflatten_single(self, q):
            if len(self.names) == 1 and q.shape == self.shapes[0]:
                return {self.names[0]: q}
            return unflatten(self, q)

        ravel.DictRavel.unflatten = unflatten_single
    if "mh" in which:

        def metropolis_hastings(
            current, proposal, log_accept_ratio, log_uniform, max_energy_error=1000.0
        ):
            log_r = float(log_accept_ratio)
            if not log_r < math.inf:  # NaN, or +inf from a potential of -inf: reject
                log_r = -math.inf
            log_alpha = min(0.0, log_r)
            accepted = log_uniform < log_alpha
            info = base.StepInfo(accepted, math.exp(log_alpha), -log_r, -log_r > max_energy_error)
            return (proposal if accepted else current), info

        base.metropolis_hastings = metropolis_hastings
    if "validation" in which:

        class NoSwitch:
            @staticmethod
            def validation_enabled(flag):
                return contextlib.nullcontext()

        base.pyro = NoSwitch


def measure(which: set[str]) -> None:
    sys.path.insert(0, str(HERE))
    import torch
    from run_benchmarks import (
        MALA,
        NUM_STEPS,
        KernelRunner,
        MinimalHMC,
        MinimalMALA,
        MinimalRW,
        RandomWalkMH,
        SimpleHMC,
        diagonal_potential,
        hmc_step_size,
        interleaved,
    )

    torch.set_num_threads(1)
    patch(which)
    dim = 100
    potential_fn, init = diagonal_potential(dim)
    off = {"adapt_step_size": False, "adapt_mass_matrix": False}
    mala_eps = 1.2 * math.sqrt(0.1) * dim ** (-1 / 6)
    rw_eps = 2.38 * math.sqrt(0.1) / math.sqrt(dim)
    eps = hmc_step_size(dim)
    hmc = SimpleHMC(potential_fn=potential_fn, step_size=eps, num_steps=NUM_STEPS, **off)
    t = interleaved(
        {
            "hmc": KernelRunner(hmc, dict(init)),
            "minimal hmc": MinimalHMC(potential_fn, dict(init), eps, NUM_STEPS),
            "mala": KernelRunner(
                MALA(potential_fn=potential_fn, step_size=mala_eps, **off), dict(init)
            ),
            "minimal mala": MinimalMALA(potential_fn, dict(init), mala_eps),
            "rw": KernelRunner(
                RandomWalkMH(potential_fn=potential_fn, step_size=rw_eps, **off), dict(init)
            ),
            "minimal rw": MinimalRW(potential_fn, dict(init), rw_eps),
        },
        11,
    )
    print(
        f"| {' + '.join(sorted(which)) or 'nothing'} | {t.ratio('hmc', 'minimal hmc'):.2f} "
        f"| {t.ratio('mala', 'minimal mala'):.2f} | {t.ratio('rw', 'minimal rw'):.2f} |",
        flush=True,
    )


def main() -> None:
    if len(sys.argv) > 1:
        measure(set(sys.argv[1].split(",")) - {""})
        return
    print("| patched | SimpleHMC | MALA | RandomWalkMH |\n|---|---:|---:|---:|")
    for which in ("", "view", "mh", "validation", "view,mh,validation"):
        # A fresh process per variant: the patches are not undone.
        subprocess.run([sys.executable, __file__, which], check=True)


if __name__ == "__main__":
    main()
