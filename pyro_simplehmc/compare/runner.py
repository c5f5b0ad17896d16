r"""Run kernels side by side on a target with known truth, and measure what each costs.

Every kernel, ours and Pyro's, runs through :class:`pyro.infer.MCMC` on the same target, with the
same number of draws, warmup, chains, starting points and seeds. The potential function is
wrapped in a :class:`CountingPotential`, so the cost of every kernel is counted the same way:
one *potential evaluation* per call, and one *gradient evaluation* per call whose input requires
a gradient (that is how both Pyro's and our kernels ask for :math:`\nabla U`).

The summary of a kernel (:class:`KernelResult`) holds

- bulk and tail ESS (arviz) of every coordinate :math:`x_i` and of every square :math:`x_i^2`;
- ESS per gradient evaluation (per potential evaluation for gradient-free kernels) and per second,
  both from the smallest bulk ESS, over the sampling phase;
- split :math:`\hat R`, acceptance rate, divergences and wall time;
- the validation: :math:`z`-scores of each posterior mean and variance against the truth and
  against NUTS, in Monte-Carlo standard errors, with the verdict ``PASS`` or ``FAIL``.

**The tolerance.** Each :math:`z` is an estimate minus the truth, divided by its Monte-Carlo
standard error (arviz's MCSE, which accounts for autocorrelation, combined in quadrature with the
truth's own standard error when the truth is itself a reference run). For a correct kernel each
:math:`z` is approximately standard normal. A kernel is tested on :math:`m = 2D` numbers (a mean
and a variance per coordinate), so the threshold is the Bonferroni bound
:math:`z^* = \Phi^{-1}(1 - \alpha / 2m)` with family-wise :math:`\alpha = 10^{-3}`: a correct
kernel is marked ``FAIL`` at most once in a thousand runs (3.66 for :math:`D = 2`, 4.06 for
:math:`D = 10`), while a biased one fails as soon as its bias exceeds a few standard errors.
The comparison with NUTS uses the same threshold with both MCSEs combined.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import arviz as az
import numpy as np
import pyro
import torch
from pyro.infer import HMC, MCMC, NUTS, RandomWalkKernel
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..kernels import MALA, RandomWalkMH, SimpleHMC
from ..targets import Target

#: Family-wise false-alarm rate of the validation of one kernel.
FAMILY_ALPHA = 1e-3
#: Below this bulk ESS, Monte-Carlo standard errors are themselves unreliable: warn.
MIN_RELIABLE_ESS = 100


# ---------------------------------------------------------------------------- counting


class CountingPotential:
    """A potential function that counts its calls.

    A call counts as a gradient evaluation when one of its inputs requires a gradient: Pyro's
    :func:`~pyro.ops.integrator.potential_grad` and this package's
    :func:`~pyro_simplehmc.integrators.value_and_grad` both mark the position that way before
    differentiating.

    :param potential_fn: the potential to wrap.
    """

    def __init__(self, potential_fn: Callable[[dict[str, Tensor]], Tensor]):
        self.potential_fn = potential_fn
        self.potentials = 0
        self.gradients = 0

    def __call__(self, params: dict[str, Tensor]) -> Tensor:
        self.potentials += 1
        if any(torch.is_tensor(v) and v.requires_grad for v in params.values()):
            self.gradients += 1
        return self.potential_fn(params)


class CountingRandomWalkKernel(RandomWalkKernel):
    """Pyro's :class:`~pyro.infer.RandomWalkKernel` with its potential counted.

    That kernel takes only a model and builds its potential in ``setup``; this subclass wraps the
    built potential in ``counter``. It also starts from the given initial parameters and resets
    its adaptation state at every ``setup`` (Pyro's keeps the step counter of the previous
    chain, so a second chain in the same process would not adapt).
    """

    def __init__(self, model, counter_factory: Callable[[Callable], CountingPotential], **kwargs):
        super().__init__(model, **kwargs)
        self._counter_factory = counter_factory
        self._given_params: dict[str, Tensor] | None = None
        self.counter: CountingPotential | None = None

    @property
    def initial_params(self):
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params):
        self._given_params = params
        self._initial_params = params

    def setup(self, warmup_steps, *args, **kwargs):
        self._t, self._accept_cnt, self._mean_accept_prob = 0, 0, 0.0
        self._log_step_size = math.log(self.init_step_size)
        super().setup(warmup_steps, *args, **kwargs)
        self.counter = self._counter_factory(self.potential_fn)
        self.potential_fn = self.counter
        if self._given_params is not None:
            self._initial_params = self._given_params
        self._energy_last = self.potential_fn(self._initial_params)


# ---------------------------------------------------------------------------- kernel specs


@dataclass(frozen=True)
class KernelSpec:
    """How to build one kernel of the comparison.

    :ivar name: the label in reports.
    :ivar make: ``make(target, potential_fn) -> kernel``; ``potential_fn`` is the counted
        potential, which the kernel must use (for a model-only kernel, see
        :class:`CountingRandomWalkKernel`).
    :ivar uses_gradient: whether cost is counted in gradients (else in potential evaluations).
    :ivar ours: whether the kernel is one of this package's (its own counters are cross-checked).
    """

    name: str
    make: Callable[[Target, Callable], MCMCKernel]
    uses_gradient: bool = True
    ours: bool = False


def _pyro_random_walk(target: Target, potential_fn: CountingPotential) -> MCMCKernel:
    # The runner's counter is handed over: the kernel wraps the potential it builds with it.
    def reuse(built: Callable) -> CountingPotential:
        potential_fn.potential_fn = built
        return potential_fn

    return CountingRandomWalkKernel(target.model, reuse)


#: The kernels available by name; :data:`DEFAULT_KERNELS` lists those run by default.
KERNELS: dict[str, KernelSpec] = {
    "RandomWalkMH": KernelSpec(
        "RandomWalkMH", lambda t, u: RandomWalkMH(potential_fn=u), False, True
    ),
    "MALA": KernelSpec("MALA", lambda t, u: MALA(potential_fn=u), True, True),
    "SimpleHMC": KernelSpec("SimpleHMC", lambda t, u: SimpleHMC(potential_fn=u), True, True),
    "NUTS": KernelSpec("NUTS", lambda t, u: NUTS(potential_fn=u), True, False),
    # Pyro's HMC holds the trajectory length fixed while its step size adapts.
    "HMC": KernelSpec("HMC", lambda t, u: HMC(potential_fn=u, trajectory_length=2.0), True, False),
    "RandomWalkKernel": KernelSpec("RandomWalkKernel", _pyro_random_walk, False, False),
}
DEFAULT_KERNELS: tuple[str, ...] = tuple(KERNELS)


def resolve_kernels(kernels: Sequence[str | KernelSpec] | None) -> list[KernelSpec]:
    """Kernel specs from names (see :data:`KERNELS`) or specs; ``None`` means all defaults."""
    if kernels is None:
        kernels = DEFAULT_KERNELS
    specs = []
    for kernel in kernels:
        if isinstance(kernel, KernelSpec):
            specs.append(kernel)
        elif kernel in KERNELS:
            specs.append(KERNELS[kernel])
        else:
            raise ValueError(f"unknown kernel {kernel!r}; choose from {sorted(KERNELS)}")
    if not specs:
        raise ValueError("kernels must name at least one kernel")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"kernels must have distinct names; got {names}")
    return specs


# ---------------------------------------------------------------------------- one run


@dataclass
class ChainRun:
    """The raw output of one chain of one kernel."""

    draws: np.ndarray  # (num_samples, D)
    potentials: dict[str, int]  # {"warmup": n, "sampling": n}
    gradients: dict[str, int]
    seconds: dict[str, float]
    diagnostics: dict[str, Any]


def initial_point(target: Target, seed: int) -> dict[str, Tensor]:
    """The starting point of chain ``seed``: the target's, jittered by :math:`\\mathcal{U}(-1, 1)`.

    A private generator keeps it the same for every kernel, whatever the global RNG has done.
    """
    generator = torch.Generator().manual_seed(seed)
    return {
        name: value + 2 * torch.rand(value.shape, generator=generator, dtype=value.dtype) - 1
        for name, value in target.initial_params.items()
    }


def run_chain(
    spec: KernelSpec,
    target: Target,
    num_samples: int,
    warmup_steps: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
) -> ChainRun:
    """Run one chain of ``spec`` on ``target`` with seed ``seed`` and count its cost."""
    counter = CountingPotential(target.potential_fn)
    pyro.set_rng_seed(seed)
    kernel = spec.make(target, counter)
    clock = {"start": time.perf_counter(), "warmup_end": None}
    at_warmup_end = {"potentials": 0, "gradients": 0}

    def hook(kernel, samples, stage, i):
        if stage == "Warmup":
            # Updated at every warmup iteration: after the last one it holds the warmup cost.
            at_warmup_end.update(potentials=counter.potentials, gradients=counter.gradients)
            clock["warmup_end"] = time.perf_counter()
        if on_step is not None:
            on_step()

    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        initial_params=initial_point(target, seed),
        disable_progbar=True,
        hook_fn=hook,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "chains run sequentially" and the like
        mcmc.run()
    end = time.perf_counter()
    warmup_end = clock["warmup_end"] if clock["warmup_end"] is not None else clock["start"]
    draws = target.flatten(mcmc.get_samples()).detach().cpu().double().numpy()
    # The kernel's own diagnostics of this one chain. MCMC.diagnostics() would first compute ESS
    # with pyro.ops.stats, whose _cummin allocates draws x draws x coordinates numbers (4 GB for
    # 6000 draws of 50 coordinates in Pyro 1.9.2); arviz computes ESS here instead.
    diagnostics = dict(mcmc._diagnostics[0])
    return ChainRun(
        draws=draws,
        potentials={
            "warmup": at_warmup_end["potentials"],
            "sampling": counter.potentials - at_warmup_end["potentials"],
        },
        gradients={
            "warmup": at_warmup_end["gradients"],
            "sampling": counter.gradients - at_warmup_end["gradients"],
        },
        seconds={"warmup": warmup_end - clock["start"], "sampling": end - warmup_end},
        diagnostics=diagnostics,
    )


# ---------------------------------------------------------------------------- summaries


@dataclass
class KernelResult:
    """Everything the report says about one kernel; arrays are per coordinate.

    ESS fields are for the coordinates (``x``) and their squares (``x2``).
    """

    name: str
    uses_gradient: bool
    num_chains: int
    num_samples: int
    ess_bulk_x: list[float]
    ess_tail_x: list[float]
    ess_bulk_x2: list[float]
    ess_tail_x2: list[float]
    r_hat: float
    acceptance_rate: float
    moved_fraction: float
    divergences: int
    potential_evals: dict[str, int]
    gradient_evals: dict[str, int]
    seconds: dict[str, float]
    mean: list[float]
    var: list[float]
    mean_mcse: list[float]
    var_mcse: list[float]
    z_mean_truth: list[float]
    z_var_truth: list[float]
    z_mean_nuts: list[float] | None = None
    z_var_nuts: list[float] | None = None
    status_truth: str = "PASS"
    status_nuts: str = "-"
    warnings: list[str] = field(default_factory=list)

    @property
    def min_ess(self) -> float:
        """The smallest bulk or tail ESS over all coordinates and squares."""
        return float(min(min(v) for v in self._ess_lists()))

    @property
    def min_bulk_ess(self) -> float:
        return float(min(min(self.ess_bulk_x), min(self.ess_bulk_x2)))

    @property
    def median_bulk_ess_x(self) -> float:
        return float(np.median(self.ess_bulk_x))

    @property
    def cost(self) -> int:
        """Sampling-phase cost: gradients, or potentials for a gradient-free kernel."""
        evals = self.gradient_evals if self.uses_gradient else self.potential_evals
        return evals["sampling"]

    @property
    def ess_per_eval(self) -> float:
        """Smallest bulk ESS per sampling-phase evaluation (see :attr:`cost`)."""
        return self.min_bulk_ess / self.cost if self.cost else 0.0

    @property
    def ess_per_second(self) -> float:
        seconds = self.seconds["sampling"]
        return self.min_bulk_ess / seconds if seconds > 0 else 0.0

    @property
    def max_abs_z_truth(self) -> float:
        return _max_abs(self.z_mean_truth + self.z_var_truth)

    @property
    def max_abs_z_nuts(self) -> float:
        if self.z_mean_nuts is None:
            return float("nan")
        return _max_abs(self.z_mean_nuts + self.z_var_nuts)

    def _ess_lists(self):
        return (self.ess_bulk_x, self.ess_tail_x, self.ess_bulk_x2, self.ess_tail_x2)

    def summary(self) -> dict[str, Any]:
        """The scalar columns of the report, in order."""
        return {
            "kernel": self.name,
            "status": self.status_truth,
            "vs_nuts": self.status_nuts,
            "max_abs_z_truth": self.max_abs_z_truth,
            "max_abs_z_nuts": self.max_abs_z_nuts,
            "min_ess_bulk_x": float(min(self.ess_bulk_x)),
            "median_ess_bulk_x": self.median_bulk_ess_x,
            "min_ess_tail_x": float(min(self.ess_tail_x)),
            "median_ess_tail_x": float(np.median(self.ess_tail_x)),
            "min_ess_bulk_x2": float(min(self.ess_bulk_x2)),
            "median_ess_bulk_x2": float(np.median(self.ess_bulk_x2)),
            "min_ess_tail_x2": float(min(self.ess_tail_x2)),
            "median_ess_tail_x2": float(np.median(self.ess_tail_x2)),
            "cost_unit": "gradient" if self.uses_gradient else "potential",
            "sampling_evals": self.cost,
            "warmup_gradient_evals": self.gradient_evals["warmup"],
            "sampling_gradient_evals": self.gradient_evals["sampling"],
            "warmup_potential_evals": self.potential_evals["warmup"],
            "sampling_potential_evals": self.potential_evals["sampling"],
            "ess_per_eval": self.ess_per_eval,
            "ess_per_second": self.ess_per_second,
            "r_hat": self.r_hat,
            "acceptance_rate": self.acceptance_rate,
            "moved_fraction": self.moved_fraction,
            "divergences": self.divergences,
            "warmup_seconds": self.seconds["warmup"],
            "sampling_seconds": self.seconds["sampling"],
        }


def _max_abs(values: Sequence[float]) -> float:
    array = np.abs(np.asarray(values, dtype=float))
    # NaN means "could not be checked", which must not pass silently.
    return float("inf") if np.isnan(array).any() else float(array.max())


def bonferroni_threshold(num_tests: int, alpha: float = FAMILY_ALPHA) -> float:
    r"""The two-sided :math:`z^*` with family-wise level ``alpha`` over ``num_tests`` tests."""
    return NormalDist().inv_cdf(1 - alpha / (2 * num_tests))


def _dataset(draws: np.ndarray):
    return az.convert_to_dataset({"x": draws})


def ess(draws: np.ndarray, method: str) -> np.ndarray:
    """arviz's ESS of each coordinate of ``draws`` (``(chains, draws, D)``); 0 where it is
    undefined or where nothing moved (arviz reports the number of draws for a constant chain)."""
    values = np.asarray(az.ess(_dataset(draws), method=method)["x"].values, dtype=float)
    constant = np.all(draws == draws[:, :1, :], axis=(0, 1))
    values[constant | ~np.isfinite(values)] = 0.0
    return values


def mcse_of_mean(draws: np.ndarray) -> np.ndarray:
    """arviz's Monte-Carlo standard error of the mean of each coordinate."""
    return np.asarray(az.mcse(_dataset(draws), method="mean")["x"].values, dtype=float)


def moments(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Mean and variance of each coordinate, with their MCSEs.

    The variance is the mean of the centred squares :math:`(x - \bar x)^2`, and its MCSE is the
    MCSE of that mean: the same estimator as for the mean, applied to another function of the
    draws.
    """
    flat = draws.reshape(-1, draws.shape[-1])
    mean = flat.mean(0)
    squares = (draws - mean) ** 2
    return (
        mean,
        squares.reshape(-1, draws.shape[-1]).mean(0),
        mcse_of_mean(draws),
        (mcse_of_mean(squares)),
    )


def _z(estimate, reference, se_a, se_b=None) -> np.ndarray:
    se = np.asarray(se_a, dtype=float) ** 2
    if se_b is not None:
        se = se + np.asarray(se_b, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.asarray(estimate) - np.asarray(reference)) / np.sqrt(se)
    # A zero standard error with a nonzero difference is infinitely far off; 0/0 is unchecked.
    return np.where(np.isnan(z), np.inf, z)


def summarise(
    name: str, uses_gradient: bool, chains: Sequence[ChainRun], target: Target
) -> KernelResult:
    """The :class:`KernelResult` of one kernel from its chains (validation against the truth)."""
    draws = np.stack([c.draws for c in chains])  # (chains, draws, D)
    notes = []
    moved = np.any(draws[:, 1:] != draws[:, :-1], axis=-1)  # (chains, draws - 1)
    moved_per_chain = moved.mean(1) if moved.shape[1] else np.zeros(len(chains))
    stuck = [i for i, m in enumerate(moved_per_chain) if m == 0]

    ess_values = {
        (what, method): ess(draws if what == "x" else draws**2, method)
        for what in ("x", "x2")
        for method in ("bulk", "tail")
    }
    if stuck:
        notes.append(f"chain(s) {stuck} never moved: ESS set to 0")
        for value in ess_values.values():
            value[:] = 0.0

    rates = [c.diagnostics.get("acceptance rate") for c in chains]
    if all(r is not None for r in rates):
        acceptance = float(np.mean([float(r) for r in rates]))
    else:  # for a Metropolis-Hastings kernel a move is an acceptance
        acceptance = float(moved_per_chain.mean())
    if stuck:
        acceptance = min(acceptance, float(moved_per_chain.mean()))
    divergences = sum(len(c.diagnostics.get("divergences") or []) for c in chains)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, var, mean_se, var_se = moments(draws)
        r_hat = _max_r_hat(draws) if draws.shape[0] > 1 else float("nan")

    truth_mean_se = None if target.mean_se is None else target.mean_se.numpy()
    truth_var_se = None if target.var_se is None else target.var_se.numpy()
    result = KernelResult(
        name=name,
        uses_gradient=uses_gradient,
        num_chains=draws.shape[0],
        num_samples=draws.shape[1],
        ess_bulk_x=ess_values["x", "bulk"].tolist(),
        ess_tail_x=ess_values["x", "tail"].tolist(),
        ess_bulk_x2=ess_values["x2", "bulk"].tolist(),
        ess_tail_x2=ess_values["x2", "tail"].tolist(),
        r_hat=r_hat,
        acceptance_rate=acceptance,
        moved_fraction=float(moved_per_chain.mean()),
        divergences=divergences,
        potential_evals=_sum_dicts([c.potentials for c in chains]),
        gradient_evals=_sum_dicts([c.gradients for c in chains]),
        seconds=_sum_dicts([c.seconds for c in chains]),
        mean=mean.tolist(),
        var=var.tolist(),
        mean_mcse=mean_se.tolist(),
        var_mcse=var_se.tolist(),
        z_mean_truth=_z(mean, target.mean.numpy(), mean_se, truth_mean_se).tolist(),
        z_var_truth=_z(var, target.var.numpy(), var_se, truth_var_se).tolist(),
        warnings=notes,
    )
    if result.min_bulk_ess < MIN_RELIABLE_ESS:
        notes.append(
            f"smallest bulk ESS {result.min_bulk_ess:.0f} < {MIN_RELIABLE_ESS}: "
            "the Monte-Carlo standard errors, and so the z-scores, are unreliable"
        )
    return result


def _max_r_hat(draws: np.ndarray) -> float:
    """The largest rank-normalised split R-hat over the coordinates and their squares."""
    values = np.concatenate(
        [np.asarray(az.rhat(_dataset(d))["x"].values, dtype=float) for d in (draws, draws**2)]
    )
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")


def _sum_dicts(dicts):
    return {key: sum(d[key] for d in dicts) for key in dicts[0]}


# ---------------------------------------------------------------------------- the comparison


@dataclass
class Comparison:
    """The result of :func:`compare`: settings, one :class:`KernelResult` per kernel, threshold."""

    target: str
    description: str
    dim: int
    num_samples: int
    warmup_steps: int
    num_chains: int
    seed: int
    threshold: float
    results: list[KernelResult]
    truth_mean: list[float]
    truth_var: list[float]
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> KernelResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def passed(self) -> bool:
        """No kernel marked FAIL, against the truth or against the reference."""
        return all(r.status_truth == "PASS" and r.status_nuts != "FAIL" for r in self.results)

    @property
    def reliable_failures(self) -> list[str]:
        """Kernels marked FAIL whose smallest bulk ESS is at least :data:`MIN_RELIABLE_ESS`.

        Below that, the Monte-Carlo standard errors are themselves too uncertain for a FAIL to
        prove a fault (the report says so in a warning).
        """
        return [
            r.name
            for r in self.results
            if (r.status_truth == "FAIL" or r.status_nuts == "FAIL")
            and r.min_bulk_ess >= MIN_RELIABLE_ESS
        ]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the draws, JSON-ready."""
        out = {k: v for k, v in asdict(self).items() if k not in ("results", "draws")}
        out["results"] = [{**asdict(r), "summary": r.summary()} for r in self.results]
        return out


def compare(
    target: Target,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | None = "NUTS",
    progress: bool = True,
    keep_draws: bool = True,
) -> Comparison:
    """Run ``kernels`` on ``target`` and validate each against the truth and against ``reference``.

    Chain :math:`c` of every kernel is seeded with ``seed + c`` and starts from the same point
    (:func:`initial_point`).

    :param target: a :class:`~pyro_simplehmc.targets.Target`.
    :param kernels: names from :data:`KERNELS` or :class:`KernelSpec` objects (default: all).
    :param num_samples: post-warmup draws per chain.
    :param warmup_steps: warmup (adaptation) iterations per chain.
    :param num_chains: chains per kernel, run one after the other.
    :param seed: the seed of the first chain.
    :param reference: the kernel the others are compared with (if it is among ``kernels``), or
        ``None``.
    :param progress: show a progress bar over all iterations of all kernels.
    :param keep_draws: keep the draws (``(chains, draws, D)`` per kernel) for the figures.
    """
    for arg, value, low in (
        ("num_samples", num_samples, 1),
        ("warmup_steps", warmup_steps, 0),
        ("num_chains", num_chains, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{arg} must be an integer >= {low}; got {value!r}")
    specs = resolve_kernels(kernels)
    total = len(specs) * num_chains * (num_samples + warmup_steps)
    bar = _progress_bar(total, target.name, progress)

    results, all_draws = [], {}
    try:
        for spec in specs:
            bar.set_postfix_str(spec.name)
            chains = [
                run_chain(spec, target, num_samples, warmup_steps, seed + c, bar.update)
                for c in range(num_chains)
            ]
            if spec.ours:
                _check_counters(spec.name, chains)
            result = summarise(spec.name, spec.uses_gradient, chains, target)
            results.append(result)
            if keep_draws:
                all_draws[spec.name] = np.stack([c.draws for c in chains])
    finally:
        bar.close()

    threshold = bonferroni_threshold(2 * target.dim)
    by_name = {r.name: r for r in results}
    ref = by_name.get(reference) if reference is not None else None
    for result in results:
        if result.max_abs_z_truth > threshold:
            result.status_truth = "FAIL"
        if ref is not None and result is not ref:
            result.z_mean_nuts = _z(result.mean, ref.mean, result.mean_mcse, ref.mean_mcse).tolist()
            result.z_var_nuts = _z(result.var, ref.var, result.var_mcse, ref.var_mcse).tolist()
            result.status_nuts = "FAIL" if result.max_abs_z_nuts > threshold else "PASS"
        for note in result.warnings:
            warnings.warn(f"{result.name}: {note}", RuntimeWarning, stacklevel=2)
    return Comparison(
        target=target.name,
        description=target.description,
        dim=target.dim,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        threshold=threshold,
        results=results,
        truth_mean=target.mean.tolist(),
        truth_var=target.var.tolist(),
        draws=all_draws,
    )


def _check_counters(name: str, chains: Sequence[ChainRun]) -> None:
    """Our kernels count their own evaluations; the wrapper's count must agree."""
    for chain in chains:
        for key, ours in (
            ("potential evaluations", chain.potentials),
            ("gradient evaluations", chain.gradients),
        ):
            theirs = chain.diagnostics.get(key)
            if theirs is not None and dict(theirs) != ours:
                warnings.warn(
                    f"{name}: the kernel counted {key} {dict(theirs)} but the wrapped potential "
                    f"was called {ours}",
                    RuntimeWarning,
                    stacklevel=3,
                )


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="it", dynamic_ncols=True, leave=False)


def as_kernel_spec(
    name: str,
    make: Callable[[Callable], MCMCKernel],
    uses_gradient: bool = True,
) -> KernelSpec:
    """A :class:`KernelSpec` from ``make(potential_fn) -> kernel``, for a kernel of your own."""
    return KernelSpec(name, lambda target, potential_fn: make(potential_fn), uses_gradient)


__all__ = [
    "DEFAULT_KERNELS",
    "KERNELS",
    "Comparison",
    "CountingPotential",
    "KernelResult",
    "KernelSpec",
    "as_kernel_spec",
    "bonferroni_threshold",
    "compare",
    "resolve_kernels",
    "summarise",
]
