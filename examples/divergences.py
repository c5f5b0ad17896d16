"""Divergences: eight schools, centred against non-centred, and where the divergences occur.

The centred model samples each school's effect ``theta_j ~ Normal(mu, tau)`` directly; its
posterior is a funnel in ``(theta_j, log tau)``, wide at large ``tau`` and narrow at small
``tau``, where one step size cannot fit both. The non-centred model samples
``theta_trans_j ~ Normal(0, 1)`` and sets ``theta_j = mu + tau * theta_trans_j``: the same
posterior, in coordinates without the funnel. Both run with :class:`~pyro_simplehmc.SimpleHMC`
(adapted step size and diagonal mass matrix, jittered trajectory length) through
:class:`pyro.infer.MCMC`; the kernel's ``diagnostics()["divergences"]`` says which iterations
diverged.

Run ``python examples/divergences.py [--quick] [--out DIR] [--seed S]``; writes
``divergences.png`` (the draws of ``(theta_1, log tau)`` for both models, divergent ones marked).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC

from pyro_simplehmc import SimpleHMC

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def centred(y, sigma):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(y)):
        theta = pyro.sample("theta", dist.Normal(mu, tau))
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def non_centred(y, sigma):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(y)):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(mu + tau * theta_trans, sigma), obs=y)


def run(model, num_samples: int, warmup: int, seed: int) -> dict:
    pyro.set_rng_seed(seed)
    kernel = SimpleHMC(model, num_steps=10, num_steps_jitter=0.5)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup, disable_progbar=True)
    mcmc.run(Y, SIGMA)
    samples = mcmc.get_samples()
    if "theta" not in samples:
        samples["theta"] = samples["mu"][:, None] + samples["tau"][:, None] * samples["theta_trans"]
    diagnostics = mcmc.diagnostics()
    return {
        "samples": samples,
        "divergences": diagnostics["divergences"]["chain 0"],
        "acceptance": diagnostics["acceptance rate"]["chain 0"],
        "step size": diagnostics["step size"]["chain 0"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 warmup and 100 draws")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    num_samples, warmup = (100, 100) if args.quick else (2000, 1000)

    runs = {
        "centred": run(centred, num_samples, warmup, args.seed),
        "non-centred": run(non_centred, num_samples, warmup, args.seed),
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True, sharey=True)
    for ax, (name, result) in zip(axes, runs.items(), strict=True):
        theta1 = result["samples"]["theta"][:, 0]
        log_tau = result["samples"]["tau"].log()
        divergent = torch.zeros(len(theta1), dtype=torch.bool)
        divergent[list(result["divergences"])] = True
        ax.scatter(theta1[~divergent], log_tau[~divergent], s=4, alpha=0.35, label="draws")
        ax.scatter(
            theta1[divergent],
            log_tau[divergent],
            s=14,
            color="tab:red",
            label=f"divergent ({int(divergent.sum())})",
        )
        ax.set(
            xlabel=r"$\theta_1$",
            title=f"{name}: step size {result['step size']:.2f}, "
            f"acceptance {result['acceptance']:.2f}",
        )
        ax.legend(fontsize=8, loc="lower right")
        print(
            f"{name}: {len(result['divergences'])} divergent of {num_samples} iterations, "
            f"acceptance {result['acceptance']:.2f}, step size {result['step size']:.3f}, "
            f"smallest tau {float(result['samples']['tau'].min()):.3f}"
        )
    axes[0].set_ylabel(r"$\log\tau$")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "divergences.png", dpi=80)
    plt.close(fig)
    return {name: len(result["divergences"]) for name, result in runs.items()}


if __name__ == "__main__":
    main()
