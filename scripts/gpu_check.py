"""Run the kernels on CUDA tensors (float32 and float64) and report what breaks.

Not part of the test suite (CI has no GPU). Run on a machine with CUDA::

    python scripts/gpu_check.py --out gpu-report

It writes ``gpu-report/gpu_check.json`` with one record per check: its name, ``ok`` or
``FAIL`` (with the traceback), a one-line result and the time it took.
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
from pyro.infer import MCMC, NUTS

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC, leapfrog

KERNELS = (RandomWalkMH, MALA, SimpleHMC)


def scale_model(data):
    """A constrained model at module level, so that spawned worker processes can import it."""
    mu = pyro.sample("mu", dist.Normal(torch.zeros((), dtype=data.dtype, device=data.device), 10.0))
    sigma = pyro.sample(
        "sigma", dist.HalfNormal(torch.full((), 5.0, dtype=data.dtype, device=data.device))
    )
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(mu, sigma), obs=data)


def correlated_potential(precision):
    def potential(z):
        x = z["x"]
        return 0.5 * x @ precision @ x

    return potential


def dtype_checks(check, dtype: torch.dtype, device: str) -> None:
    """The kernels with tensors of one dtype on the device."""
    tag = str(dtype).removeprefix("torch.")
    cov = torch.tensor([[1.0, 0.95], [0.95, 1.0]], dtype=dtype, device=device)
    potential = correlated_potential(torch.linalg.inv(cov))
    start = {"x": torch.zeros(2, dtype=dtype, device=device)}

    for cls in KERNELS:
        for full_mass in (False, True):

            def potential_path(cls=cls, full_mass=full_mass):
                pyro.set_rng_seed(0)
                mcmc = MCMC(
                    cls(potential_fn=potential, full_mass=full_mass),
                    num_samples=1000,
                    warmup_steps=500,
                    initial_params=start,
                    disable_progbar=True,
                )
                mcmc.run()
                x = mcmc.get_samples()["x"]
                assert x.device.type == "cuda", x.device
                assert x.dtype == dtype, x.dtype
                assert torch.isfinite(x).all()
                diag = mcmc.diagnostics()
                corr = torch.corrcoef(x.T.double())[0, 1].item()
                return (
                    f"mean {[round(v, 3) for v in x.mean(0).tolist()]}, "
                    f"var {[round(v, 3) for v in x.var(0).tolist()]}, corr {corr:.3f}, "
                    f"acceptance {diag['acceptance rate']['chain 0']:.3f}, "
                    f"step {diag['step size']['chain 0']:.3g}, "
                    f"divergences {len(diag['divergences']['chain 0'])}"
                )

            check(f"{cls.__name__} potential_fn {tag} full_mass={full_mass}", potential_path)

        def model_path(cls=cls):
            pyro.set_rng_seed(0)
            data = 3.0 + 2.0 * torch.randn(50, dtype=dtype, device=device)
            mcmc = MCMC(cls(scale_model), 500, 300, disable_progbar=True)
            mcmc.run(data)
            s = mcmc.get_samples()
            assert s["mu"].device.type == "cuda" and (s["sigma"] > 0).all()
            return (
                f"mu {s['mu'].mean().item():.3f} (data mean {data.mean().item():.3f}), "
                f"sigma {s['sigma'].mean().item():.3f} (data sd {data.std().item():.3f})"
            )

        check(f"{cls.__name__} model {tag}", model_path)

    def nan_region():
        def walled(z):
            x = z["x"]
            nan = torch.tensor(float("nan"), dtype=x.dtype, device=x.device)
            return torch.where(x[0] > 1.0, nan, 0.5 * (x * x).sum())

        kernel = SimpleHMC(potential_fn=walled, step_size=0.5, num_steps=4, adapt_step_size=False)
        mcmc = MCMC(kernel, 200, 50, initial_params=start, disable_progbar=True)
        mcmc.run()
        x = mcmc.get_samples()["x"]
        divergences = mcmc.diagnostics()["divergences"]["chain 0"]
        assert torch.isfinite(x).all() and (x[:, 0] <= 1.0).all()
        assert divergences, "no divergence recorded"
        return f"{len(divergences)} divergences, draws finite and inside the wall"

    check(f"NaN region rejected {tag}", nan_region)

    def dict_leapfrog():
        out = leapfrog(
            {"a": torch.ones(3, dtype=dtype, device=device)},
            {"a": torch.zeros(3, dtype=dtype, device=device)},
            lambda z: 0.5 * (z["a"] ** 2).sum(),
            step_size=0.1,
            num_steps=10,
            inverse_mass_matrix=torch.eye(3, dtype=dtype, device=device),
        )
        assert out.position["a"].device.type == "cuda"
        return f"q(1.0) = {out.position['a'][0].item():.5f} (exact cos(1) = 0.54030)"

    check(f"leapfrog on dicts {tag}", dict_leapfrog)


def run_checks(device: str) -> list[dict]:
    records = []

    def check(name, fn):
        start = time.perf_counter()
        try:
            result, status = fn(), "ok"
        except Exception:
            result, status = traceback.format_exc(), "FAIL"
        record = {
            "name": name,
            "status": status,
            "result": result,
            "seconds": round(time.perf_counter() - start, 2),
        }
        records.append(record)
        print(f"[{status}] {name} ({record['seconds']} s): {result}", flush=True)

    for dtype in (torch.float32, torch.float64):
        dtype_checks(check, dtype, device)

    def two_chains_spawn():
        pyro.set_rng_seed(0)
        data = 3.0 + 2.0 * torch.randn(50, device=device)
        mcmc = MCMC(
            SimpleHMC(scale_model, num_steps=5),
            200,
            100,
            num_chains=2,
            mp_context="spawn",
            disable_progbar=True,
        )
        mcmc.run(data)
        mu = mcmc.get_samples(group_by_chain=True)["mu"]
        return f"draws {tuple(mu.shape)} on {mu.device}, chain means {mu.mean(1).tolist()}"

    check("two chains in spawned processes", two_chains_spawn)

    def large_diagonal():
        dim = 10_000
        variances = torch.linspace(0.1, 1.0, dim, device=device, dtype=torch.float64)

        def potential(z):
            return 0.5 * (z["x"] ** 2 / variances).sum()

        timings = {}
        for cls in KERNELS:
            pyro.set_rng_seed(0)
            mcmc = MCMC(
                cls(potential_fn=potential),
                num_samples=300,
                warmup_steps=300,
                initial_params={"x": torch.zeros(dim, device=device, dtype=torch.float64)},
                disable_progbar=True,
            )
            torch.cuda.synchronize()
            start = time.perf_counter()
            mcmc.run()
            torch.cuda.synchronize()
            timings[cls.__name__] = round((time.perf_counter() - start) / 600 * 1e3, 3)
        return f"ms per iteration at D=10,000 (float64): {timings}"

    check("D=10,000 diagonal Gaussian", large_diagonal)

    def nuts_reference():
        pyro.set_rng_seed(0)
        cov = torch.tensor([[1.0, 0.95], [0.95, 1.0]], device=device)
        mcmc = MCMC(
            NUTS(potential_fn=correlated_potential(torch.linalg.inv(cov))),
            300,
            300,
            initial_params={"x": torch.zeros(2, device=device)},
            disable_progbar=True,
        )
        mcmc.run()
        return f"Pyro NUTS on the same device works: var {mcmc.get_samples()['x'].var(0).tolist()}"

    check("Pyro NUTS control", nuts_reference)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-report")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script checks the kernels on a GPU")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
    }
    print(header, flush=True)
    records = run_checks("cuda")
    failed = [r["name"] for r in records if r["status"] != "ok"]
    (out / "gpu_check.json").write_text(json.dumps({**header, "checks": records}, indent=2))
    print(f"{len(records) - len(failed)} passed, {len(failed)} failed", flush=True)


if __name__ == "__main__":
    main()
