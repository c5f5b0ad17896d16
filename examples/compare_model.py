"""Is my kernel good enough for my model? Compare MALA and SimpleHMC with NUTS on a Pyro model.

The model is the non-centred eight-schools model (Rubin, 1981), written as a user would write
it: data as arguments, a positive scale ``tau``, a deterministic site ``theta``.
:func:`pyro_simplehmc.compare.compare_model` runs NUTS for longer as the reference, then each
kernel, and validates the posterior mean and variance of every element of every latent site
(``mu``, ``tau``, ``theta_trans[0..7]``) against NUTS, in the constrained space, with both
Monte-Carlo errors combined. ``theta`` is reported, not tested.

The same file works from the command line, which finds the model and its arguments by name::

    simplehmc compare --model examples/compare_model.py:eight_schools \\
        --args examples/compare_model.py:make_args --kernels MALA SimpleHMC

Run ``python examples/compare_model.py [--quick] [--out DIR] [--seed S]``; prints the table and
writes ``compare_model_z.png`` (the z-score of every mean and variance against NUTS) and
``compare_model_ess_per_eval.png`` (the cost of an effective draw) into ``--out``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], dtype=torch.float64)
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], dtype=torch.float64)


def eight_schools(y: torch.Tensor, sigma: torch.Tensor) -> None:
    """Non-centred eight schools: ``theta = mu + tau * theta_trans``."""
    mu = pyro.sample("mu", dist.Normal(torch.tensor(0.0, dtype=y.dtype), 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(torch.tensor(5.0, dtype=y.dtype)))
    with pyro.plate("schools", len(y)):
        theta_trans = pyro.sample("theta_trans", dist.Normal(torch.zeros_like(y), 1.0))
        theta = pyro.deterministic("theta", mu + tau * theta_trans)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def make_args() -> tuple[tuple, dict]:
    """The model's arguments, for ``simplehmc compare --args``: ``(args, kwargs)``."""
    return (Y, SIGMA), {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (seconds)")
    parser.add_argument("--out", type=Path, default=Path("compare-model-out"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from pyro_simplehmc.compare import compare_model
    from pyro_simplehmc.compare.figures import plot_ess_per_eval, plot_z
    from pyro_simplehmc.compare.report import format_table

    # --quick is a smoke run (the figures' shapes, not their verdicts): NUTS's reference, four
    # times the draws by default, is most of its cost, so it gets only twice the draws there; and
    # no kernel continues its chains towards a reliable verdict.
    num_samples, warmup = (50, 50) if args.quick else (1000, 500)
    quick = {"max_evals": None, "batch_chains": 8} if args.quick else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the table lists the warnings
        comparison = compare_model(
            eight_schools,
            *make_args(),
            kernels=["MALA", "SimpleHMC"],
            num_samples=num_samples,
            warmup_steps=warmup,
            num_chains=2,
            reference_num_samples=2 * num_samples if args.quick else None,
            seed=args.seed,
            progress=False,
            **quick,
        )
    print(format_table(comparison))
    plot_z(comparison, args.out / "compare_model_z.png")
    plot_ess_per_eval(comparison, args.out / "compare_model_ess_per_eval.png")
    print(f"\nfigures written to {args.out}/")


if __name__ == "__main__":
    main()
