"""Many chains as one batch on a GPU: correctness and the throughput curve, C = 1 to 4,096.

Not part of the test suite (CI has no GPU). Run on a machine with CUDA::

    python scripts/gpu_vectorized.py --out gpu-report

For each number of chains ``C`` it runs ``SimpleHMC`` with ``chain_method="vectorized"`` on the
100-D diagonal Gaussian (variances 0.1 to 1) through ``potential_fn`` (batched) in float32 and
float64, and through a Pyro model (``model=``, the plate path) in float32; it records the time
per iteration, draws per second, the smallest ESS (Pyro's ``effective_sample_size``) and the
largest relative error of the estimated variances. A few more checks: MALA and RandomWalkMH at
C = 1,024, a constrained model, per-chain faults and ChEES. It writes ``gpu_vectorized.json``
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.stats import effective_sample_size

from pyro_simplehmc import MALA, MCMC, RandomWalkMH, SimpleHMC

DIM = 100


def variances(dtype, device):
    return torch.linspace(0.1, 1.0, DIM, dtype=dtype, device=device)


def batched_potential(var):
    def potential(params):
        return 0.5 * (params["x"] ** 2 / var).sum(-1)

    return potential


def gaussian_model(var):
    def model():
        pyro.sample("x", dist.Normal(torch.zeros_like(var), var.sqrt()).to_event(1))

    return model


def beta_bernoulli(data):
    p = pyro.sample("p", dist.Beta(data.new_tensor(2.0), data.new_tensor(2.0)))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Bernoulli(p), obs=data)


def timed_run(kernel, num_chains, warmup, samples, init=None, args=()):
    pyro.set_rng_seed(0)
    mcmc = MCMC(
        kernel,
        num_samples=samples,
        warmup_steps=warmup,
        num_chains=num_chains,
        initial_params=init,
        chain_method="vectorized",
        disable_progbar=True,
    )
    synchronize()
    start = time.perf_counter()
    mcmc.run(*args)
    synchronize()
    return mcmc, time.perf_counter() - start


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def throughput(path, dtype, num_chains, warmup, samples, device):
    var = variances(dtype, device)
    if path == "potential_fn":
        kernel = SimpleHMC(potential_fn=batched_potential(var), batched_potential=True)
        init = {"x": torch.randn(num_chains, DIM, dtype=dtype, device=device)}
    else:
        kernel = SimpleHMC(gaussian_model(var))
        init = None
    mcmc, seconds = timed_run(kernel, num_chains, warmup, samples, init)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert x.device.type == torch.device(device).type and x.dtype == dtype
    # ESS of at most 64 chains: Pyro's estimator allocates draws^2 x coordinates numbers.
    ess = effective_sample_size(x[:64].double().cpu(), chain_dim=0, sample_dim=1)
    ess = float(ess.min()) * num_chains / min(num_chains, 64)
    var_error = float(((x.double().var((0, 1)) / var.double()) - 1).abs().max())
    iterations = warmup + samples
    return {
        "path": path,
        "dtype": str(dtype).removeprefix("torch."),
        "chains": num_chains,
        "potential path": kernel.potential_path,
        "seconds": round(seconds, 3),
        "ms per iteration": round(1e3 * seconds / iterations, 3),
        "draws per second": round(num_chains * samples / seconds),
        "min ESS (scaled from 64 chains)": round(ess),
        "min ESS per second": round(ess / seconds),
        "max relative variance error": round(var_error, 4),
        "mean acceptance": round(float(mcmc.sample_stats["accept_prob"].mean()), 3),
    }


def extra_checks(device, big):
    out = []
    var = variances(torch.float32, device)
    for cls in (MALA, RandomWalkMH):
        kernel = cls(potential_fn=batched_potential(var), batched_potential=True)
        init = {"x": torch.randn(big, DIM, device=device)}
        mcmc, seconds = timed_run(kernel, big, 300, 300, init)
        x = mcmc.get_samples(group_by_chain=True)["x"]
        error = float(((x.var((0, 1)) / var) - 1).abs().max())
        out.append({"check": f"{cls.__name__} C={big} float32", "seconds": round(seconds, 2),
                    "max relative variance error": round(error, 3)})
    data = torch.tensor([1.0] * 6 + [0.0] * 14, device=device)
    mcmc, seconds = timed_run(SimpleHMC(beta_bernoulli), 256, 300, 300, args=(data,))
    p = mcmc.get_samples()["p"]
    out.append({"check": "Beta-Bernoulli C=256 (model=, constrained)", "path":
                mcmc.kernel.potential_path, "mean": round(float(p.mean()), 4), "truth": 1 / 3,
                "var": round(float(p.var()), 5), "truth var": round(8 * 16 / (24**2 * 25), 5)})

    def faulty(params):
        x = params["x"]
        return torch.where(x[..., 0] < 1.0, 0.5 * (x**2).sum(-1), torch.nan)

    init = {"x": torch.zeros(512, 2, device=device)}
    mcmc, seconds = timed_run(SimpleHMC(potential_fn=faulty, batched_potential=True), 512, 200,
                              500, init)
    x = mcmc.get_samples()["x"]
    out.append({"check": "NaN region x0 >= 1, C=512", "max x0": round(float(x[:, 0].max()), 3),
                "divergences": int(mcmc.sample_stats["diverging"].sum()),
                "mean x0 (truth -0.2876)": round(float(x[:, 0].mean()), 4)})
    kernel = SimpleHMC(potential_fn=batched_potential(var), batched_potential=True,
                       adapt_trajectory_length=True)
    init = {"x": torch.randn(big, DIM, device=device)}
    mcmc, seconds = timed_run(kernel, big, 500, 500, init)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    ess = float(effective_sample_size(x[:64].double().cpu(), chain_dim=0, sample_dim=1).min())
    grads = 64 * mcmc.kernel_diagnostics[0]["gradient evaluations"]["sampling"]
    out.append({"check": f"ChEES C={big} float32", "seconds": round(seconds, 2),
                "trajectory length": round(kernel.adapted_trajectory_length, 3),
                "step size": round(kernel.step_size, 4), "min ESS per gradient": ess / grads})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-report"))
    parser.add_argument("--chains", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024, 4096])
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--big", type=int, default=1024, help="chains in the extra checks")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = args.device
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(name, torch.__version__, pyro.__version__, flush=True)
    records = []
    plan = [("potential_fn", torch.float32), ("potential_fn", torch.float64),
            ("model", torch.float32)]
    for path, dtype in plan:
        for num_chains in args.chains:
            try:
                record = throughput(path, dtype, num_chains, args.warmup, args.samples, device)
            except Exception:  # record what broke and go on
                record = {"path": path, "dtype": str(dtype), "chains": num_chains,
                          "error": traceback.format_exc()}
            print(json.dumps(record), flush=True)
            records.append(record)
    try:
        extras = extra_checks(device, args.big)
    except Exception:
        extras = [{"error": traceback.format_exc()}]
    for extra in extras:
        print(json.dumps(extra), flush=True)
    (args.out / "gpu_vectorized.json").write_text(json.dumps(
        {"device": name, "torch": torch.__version__,
         "throughput": records, "checks": extras}, indent=1))
    keys = ["path", "dtype", "chains", "ms per iteration", "draws per second",
            "min ESS per second", "max relative variance error", "mean acceptance"]
    print("| " + " | ".join(keys) + " |")
    for r in records:
        print("| " + " | ".join(str(r.get(k, "error")) for k in keys) + " |")


if __name__ == "__main__":
    main()
