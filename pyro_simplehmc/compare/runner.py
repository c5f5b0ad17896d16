r"""Run kernels side by side, count what each costs, and validate what each draws.

Every kernel runs on the same :class:`~pyro_simplehmc.compare.problems.Problem`, with the same
warmup, starting points and seeds. This package's kernels run ``batch_chains`` chains as one batch
and keep sampling until their verdict is reliable or the budget ``max_evals`` (the same for
every kernel) is spent; kernels that cannot batch (Pyro's) run ``num_chains`` chains one at a time
(:mod:`.execution`).

- :func:`compare`: on a :class:`~pyro_simplehmc.checks.targets.Target` with known truth;
- :func:`compare_model`: on your own Pyro model, against a longer run of a reference kernel
  (NUTS by default);
- :func:`compare_posterior`: on a ported posteriordb posterior, against its reference draws;
- :func:`~pyro_simplehmc.compare.execution.run_cell`: one kernel on one problem, the unit the
  others (and a grid runner) are made of.

The summary of a kernel (:class:`~pyro_simplehmc.compare.results.KernelResult`,
:mod:`.summary`) holds bulk and tail ESS of every validated number and of its square, ESS per
gradient evaluation (per potential evaluation for gradient-free kernels) with an interval, and
per second, split :math:`\hat R`, acceptance rate, divergences and wall time, and the verdicts:
:math:`z`-scores of each mean and variance against the truth and against the reference, with
``PASS``/``FAIL`` only where the Monte-Carlo standard errors can be trusted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyro.infer.autoguide import init_to_uniform

from ..checks.statistics import FAIL, bonferroni_threshold
from ..checks.targets import Target
from ..core import validation as check
from .execution import (
    DEFAULT_BATCH_CHAINS,
    DEFAULT_MAX_EVALS,
    as_problem,
    run_batch,
    run_cell,
    run_chain,
)
from .problems import Problem, from_model, from_posterior
from .reference_cache import ReferenceCache, reference_key
from .results import Comparison
from .specs import KERNELS, CountingPotential, KernelSpec, resolve_kernels
from .summary import ChainRun, judge_against, summarise

_as_problem = as_problem

#: ``full_mass="auto"`` (the default on models and posteriors) adapts a dense mass matrix up to
#: this dimension, for every kernel that takes one (the reference included, so the comparison
#: stays fair): a batch's pooled warmup estimates it from thousands of draws, and a single
#: chain of Pyro's NUTS, from about 200 draws in its last window at 500 warmup steps, still has
#: several per entry. Above it, diagonal.
DENSE_MAX_DIM = 30


def resolve_full_mass(full_mass: bool | str | None, dim: int) -> bool | None:
    """``full_mass`` for a problem of dimension ``dim``: ``"auto"`` is dense up to
    :data:`DENSE_MAX_DIM`, diagonal above; ``True``/``False`` as given; ``None``: each kernel's
    own setting."""
    if isinstance(full_mass, str):
        check.one_of("full_mass", full_mass, ("auto",))
        return dim <= DENSE_MAX_DIM
    return full_mass if full_mass is None else check.boolean("full_mass", full_mass)


def as_reference_cache(value: ReferenceCache | str | Path | bool | None) -> ReferenceCache | None:
    """A :class:`ReferenceCache` from the ``reference_cache`` argument (see :func:`compare`)."""
    if value is None or value is False:
        return None
    if value is True:
        return ReferenceCache()
    if isinstance(value, ReferenceCache):
        return value
    if isinstance(value, str | Path):
        return ReferenceCache(value)
    raise ValueError(
        "reference_cache must be None, True, a folder or a ReferenceCache; got "
        f"{type(value).__name__}"
    )


def _check_run_settings(
    num_samples, warmup_steps, num_chains, seed, progress, keep_draws, batch_chains=None,
    max_evals=None,
):  # fmt: skip
    if batch_chains is not None:
        check.positive_int("batch_chains", batch_chains)
    if max_evals is not None:
        check.positive_int("max_evals", max_evals)
    check.positive_int("num_samples", num_samples)
    check.nonnegative_int("warmup_steps", warmup_steps)
    check.positive_int("num_chains", num_chains)
    check.nonnegative_int("seed", seed)
    check.boolean("progress", progress)
    check.boolean("keep_draws", keep_draws)


def _run_all(
    problem: Problem,
    specs: Sequence[KernelSpec],
    lengths: Mapping[str, int],
    warmup_steps: int,
    num_chains: int,
    seed: int,
    reference: str | None,
    progress: bool,
    keep_draws: bool,
    reference_num_samples: int | None = None,
    batch_chains: int | None = DEFAULT_BATCH_CHAINS,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    reference_cache: ReferenceCache | None = None,
) -> Comparison:
    # One bar step per iteration: of the batch for a batched kernel, of each chain otherwise.
    per_kernel = {s.name: 1 if batch_chains is not None and s.ours else num_chains for s in specs}
    total = sum(per_kernel[s.name] * (lengths[s.name] + warmup_steps) for s in specs)
    bar = _progress_bar(total, problem.name, progress)
    threshold = bonferroni_threshold(2 * problem.dim)
    results, all_draws = [], {}
    try:
        for spec in specs:
            bar.set_postfix_str(spec.name)
            run = {
                "num_samples": lengths[spec.name], "warmup_steps": warmup_steps,
                "num_chains": num_chains, "seed": seed, "batch_chains": batch_chains,
                "max_evals": max_evals,
            }  # fmt: skip
            cached = key = None
            if reference_cache is not None and spec.name == reference:
                key = reference_key(problem, spec, run)
                cached = reference_cache.get(key)
            if cached is not None:
                result, draws = cached
                result.warnings.append(f"reference read from {reference_cache.path}/{key}.json")
                bar.update(per_kernel[spec.name] * (lengths[spec.name] + warmup_steps))
            else:
                result, draws = run_cell(spec, problem, on_step=bar.update, **run)
                if key is not None and result.error is None:
                    reference_cache.put(key, result, draws)
            results.append(result)
            if keep_draws and draws is not None:
                all_draws[spec.name] = draws
    finally:
        bar.close()

    by_name = {r.name: r for r in results}
    ref = by_name.get(reference) if reference is not None else None
    if ref is not None and ref.status_truth == FAIL:
        # A reference that disagrees with the truth cannot judge the others.
        for result in results:
            if result is not ref:
                result.warnings.append(
                    f"not judged against {ref.name}: its own draws FAIL against the truth"
                )
        ref = None
    for result in results:
        if ref is not None:
            judge_against(result, ref, threshold)
        for note in result.warnings:
            warnings.warn(f"{result.name}: {note}", RuntimeWarning, stacklevel=3)
        if result.error is not None:
            warnings.warn(f"{result.name}: {result.error}", RuntimeWarning, stacklevel=3)
    num_samples = min(lengths.values())
    return Comparison(
        target=problem.name,
        description=problem.description,
        dim=problem.dim,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        threshold=threshold,
        results=results,
        truth_mean=None if problem.truth_mean is None else problem.truth_mean.tolist(),
        truth_var=None if problem.truth_var is None else problem.truth_var.tolist(),
        coords=list(problem.coords),
        reference=reference if ref is not None else None,
        reference_num_samples=reference_num_samples,
        draws=all_draws,
        batch_chains=batch_chains,
        max_evals=max_evals,
    )


def compare(
    target: Target | Problem,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | None = "NUTS",
    progress: bool = True,
    keep_draws: bool = True,
    full_mass: bool | str | None = None,
    lengths: Mapping[str, int] | None = None,
    batch_chains: int | None = DEFAULT_BATCH_CHAINS,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    reference_cache: ReferenceCache | str | Path | bool | None = None,
) -> Comparison:
    """Run ``kernels`` on ``target`` and validate each against the truth and against ``reference``.

    Chain :math:`c` of every kernel is seeded with ``seed + c`` and starts from the same point.

    :param target: a :class:`~pyro_simplehmc.checks.targets.Target` (or a
        :class:`~pyro_simplehmc.compare.problems.Problem`).
    :param kernels: names from :data:`~pyro_simplehmc.compare.specs.KERNELS` or
        :class:`~pyro_simplehmc.compare.specs.KernelSpec` objects (default: all).
    :param num_samples: post-warmup draws per chain.
    :param warmup_steps: warmup (adaptation) iterations per chain.
    :param num_chains: chains of each kernel that cannot batch (Pyro's), run one after the
        other.
    :param seed: the seed of the first chain.
    :param reference: the kernel the others are compared with (if it is among ``kernels``), or
        ``None``.
    :param progress: show a progress bar over all iterations of all kernels.
    :param keep_draws: keep the draws (``(chains, draws, D)`` per kernel) for the figures.
    :param full_mass: if not ``None``, the ``full_mass`` of every kernel that takes one
        (``"auto"``: see :func:`resolve_full_mass`).
    :param lengths: draws per chain of particular kernels, by name, instead of ``num_samples``
        (a cheap kernel with a slowly mixing chain can take more draws for a reliable verdict).
    :param batch_chains: chains of each of this package's kernels, run as one batch with pooled
        adaptation (``None``: per chain, ``num_chains`` of them, as Pyro's).
    :param max_evals: a batched kernel keeps sampling (continuing its chains, no new warmup) until
        its verdict is reliable or it has spent this many evaluations (gradients, or potentials
        for a gradient-free kernel; all chains, warmup included); ``None``: exactly
        ``num_samples`` draws.
    """
    _check_run_settings(
        num_samples, warmup_steps, num_chains, seed, progress, keep_draws, batch_chains, max_evals
    )
    lengths = dict(check.dict_or_none("lengths", lengths) or {})
    for name, length in lengths.items():
        check.positive_int(f"lengths[{name!r}]", length)
    check.string_or_none("reference", reference)
    problem = _as_problem(target)
    specs = resolve_kernels(kernels, full_mass=resolve_full_mass(full_mass, problem.dim))
    if (
        reference is not None
        and reference not in KERNELS
        and reference not in {s.name for s in specs}
    ):
        raise ValueError(
            f"reference must be None or the name of a kernel of the comparison "
            f"({[s.name for s in specs]}) or of {sorted(KERNELS)}; got {reference!r}"
        )
    lengths = {s.name: lengths.get(s.name, num_samples) for s in specs}
    return _run_all(
        problem, specs, lengths, warmup_steps, num_chains, seed, reference, progress, keep_draws,
        batch_chains=batch_chains, max_evals=max_evals,
        reference_cache=as_reference_cache(reference_cache),
    )  # fmt: skip


def compare_model(
    model: Callable,
    model_args: tuple | list = (),
    model_kwargs: Mapping[str, Any] | None = None,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | KernelSpec = "NUTS",
    progress: bool = True,
    *,
    reference_num_samples: int | None = None,
    init_strategy: Callable = init_to_uniform,
    max_plate_nesting: int | None = None,
    full_mass: bool | str | None = "auto",
    keep_draws: bool = True,
    name: str | None = None,
    batch_chains: int | None = DEFAULT_BATCH_CHAINS,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    reference_cache: ReferenceCache | str | Path | bool | None = None,
) -> Comparison:
    r"""Does MALA or SimpleHMC sample *my* model as well as NUTS does, and at what cost?

    Runs ``reference`` (longer: ``reference_num_samples`` draws per chain, by default four times
    ``num_samples``, so that its own MCSE is half the others') and each of ``kernels`` on
    ``model``, and validates every element of every latent site, in the constrained space, against
    the reference: the posterior mean and variance of each, :math:`z`-scores with both MCSEs
    combined, Bonferroni over all the numbers tested. Deterministic sites are reported
    (:attr:`KernelResult.deterministic`), not tested. Chain :math:`c` of every kernel starts
    where ``init_strategy`` puts it with seed ``seed + c``: dispersed, so that R-hat can see a
    stuck chain. A kernel that raises on the model is reported with verdict ``ERROR`` and its
    message; the others' results are kept.

    Example::

        >>> comparison = compare_model(model, (data,), kernels=["MALA", "SimpleHMC"])
        >>> print(format_table(comparison))

    :param model: the Pyro model.
    :param model_args: its positional arguments.
    :param model_kwargs: its keyword arguments.
    :param kernels: kernel names (see :data:`~pyro_simplehmc.compare.specs.KERNELS`) or specs;
        default: RandomWalkMH, MALA and SimpleHMC.
    :param num_samples: post-warmup draws per chain of each kernel.
    :param warmup_steps: warmup iterations per chain (the reference's too).
    :param num_chains: chains per kernel.
    :param seed: the seed of the first chain.
    :param reference: the reference kernel's name or spec.
    :param progress: show a progress bar.
    :param reference_num_samples: draws per chain of the reference (default
        ``4 * num_samples``).
    :param init_strategy: a Pyro init strategy for the chains' starting points.
    :param max_plate_nesting: Pyro's bound on nested plates (guessed if ``None``).
    :param full_mass: the ``full_mass`` of every kernel that takes one: ``"auto"``, dense up to
        :data:`DENSE_MAX_DIM` dimensions (:func:`resolve_full_mass`); ``True``, ``False``; or
        ``None``, each kernel's own.
    :param keep_draws: keep the draws for the figures.
    :param name: the name in reports (default: the model's ``__name__``).
    :param batch_chains: as for :func:`compare`.
    :param max_evals: as for :func:`compare`.
    :param reference_cache: as for :func:`compare`.
    :returns: a :class:`~pyro_simplehmc.compare.results.Comparison`, the reference first.
    """
    _check_run_settings(
        num_samples, warmup_steps, num_chains, seed, progress, keep_draws, batch_chains, max_evals
    )
    if reference_num_samples is None:
        reference_num_samples = 4 * num_samples
    check.positive_int("reference_num_samples", reference_num_samples)
    ref_spec = _resolve_reference(reference)
    if kernels is None:
        kernels = [k for k in ("RandomWalkMH", "MALA", "SimpleHMC") if k != ref_spec.name]
    problem = from_model(
        model,
        model_args,
        model_kwargs,
        init_strategy=init_strategy,
        max_plate_nesting=max_plate_nesting,
        name=name,
    )
    full_mass = resolve_full_mass(full_mass, problem.dim)
    specs = [s for s in resolve_kernels(kernels, full_mass=full_mass) if s.name != ref_spec.name]
    ref_spec = resolve_kernels([ref_spec], full_mass=full_mass)[0]
    lengths = {s.name: num_samples for s in specs}
    lengths[ref_spec.name] = reference_num_samples
    return _run_all(
        problem,
        [ref_spec, *specs],
        lengths,
        warmup_steps,
        num_chains,
        seed,
        ref_spec.name,
        progress,
        keep_draws,
        reference_num_samples=reference_num_samples,
        batch_chains=batch_chains,
        max_evals=max_evals,
        reference_cache=as_reference_cache(reference_cache),
    )


def _resolve_reference(reference: str | KernelSpec) -> KernelSpec:
    if isinstance(reference, KernelSpec):
        return reference
    if not isinstance(reference, str) or reference not in KERNELS:
        raise ValueError(
            f"reference must be one of {sorted(KERNELS)} or a KernelSpec; got {reference!r}"
        )
    return KERNELS[reference]


def compare_posterior(
    name: str,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | None = "NUTS",
    progress: bool = True,
    keep_draws: bool = True,
    full_mass: bool | str | None = "auto",
    batch_chains: int | None = DEFAULT_BATCH_CHAINS,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    reference_cache: ReferenceCache | str | Path | bool | None = None,
) -> Comparison:
    """:func:`compare` on a ported posteriordb posterior, its reference draws as the truth.

    :param name: a key of :data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`.
    :param full_mass: as for :func:`compare_model`: by default dense up to
        :data:`DENSE_MAX_DIM` dimensions.

    The other parameters are those of :func:`compare`.
    """
    _check_run_settings(num_samples, warmup_steps, num_chains, seed, progress, keep_draws)
    problem = from_posterior(name)
    return compare(
        problem,
        kernels=kernels,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        reference=reference,
        progress=progress,
        keep_draws=keep_draws,
        full_mass=resolve_full_mass(full_mass, problem.dim),
        batch_chains=batch_chains,
        max_evals=max_evals,
        reference_cache=reference_cache,
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


__all__ = [
    "DENSE_MAX_DIM",
    "ChainRun",
    "CountingPotential",
    "compare",
    "compare_model",
    "compare_posterior",
    "judge_against",
    "resolve_full_mass",
    "run_batch",
    "run_cell",
    "run_chain",
    "summarise",
]
