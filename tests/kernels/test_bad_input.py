"""Bad input: every public argument of every kernel, given invalid values, raises a ValueError
that names the argument and says what it may be.

One parametrised test covers them all: a case is (argument, invalid value, the kernels it
applies to, a pattern the message must match). Checks that can only happen once the model's
sites are known (mass-matrix shapes, site names in ``full_mass``, ``warmup_steps``) run through
``setup``.
"""

from __future__ import annotations

import math

import pytest
import torch

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC

ALL = (SimpleHMC, MALA, RandomWalkMH)
HMC_ONLY = (SimpleHMC,)


def potential_fn(params):
    return 0.5 * (params["a"] ** 2).sum() + 0.5 * (params["b"] ** 2).sum()


INIT = {"a": torch.zeros(2), "b": torch.zeros(())}

POSITIVE = "must be a positive finite number"
BOOLEAN = "must be True or False"
UNIT = "strictly between 0 and 1"
FULL_MASS = r"full_mass must be .*True, False,? or a list of tuples of site names"

# (argument, invalid value, kernels, pattern). The pattern names the argument and the allowed
# values; ``None`` as argument marks a combination of arguments (given in ``value``).
CASES = [
    ("model", 3, ALL, "model must be a callable"),
    ("potential_fn", "U", ALL, "potential_fn must be a callable"),
    (None, {}, ALL, "exactly one of model and potential_fn"),
    (None, {"model": potential_fn, "potential_fn": potential_fn}, ALL, "exactly one of model"),
    *[("step_size", v, ALL, "step_size " + POSITIVE) for v in (0, -0.1, math.inf, math.nan, "1")],
    ("step_size", True, ALL, "step_size " + POSITIVE),
    *[("adapt_step_size", v, ALL, "adapt_step_size " + BOOLEAN) for v in ("yes", 1, None)],
    *[("adapt_mass_matrix", v, ALL, "adapt_mass_matrix " + BOOLEAN) for v in ("no", 0)],
    *[("full_mass", v, ALL, FULL_MASS) for v in ("dense", [], [("a", 1)], [["a", "b"]], None)],
    ("transforms", [1], ALL, "transforms must be a dict or None"),
    *[
        ("max_plate_nesting", v, ALL, "max_plate_nesting must be an integer >= 0")
        for v in (-1, 1.5)
    ],
    ("max_plate_nesting", True, ALL, "max_plate_nesting must be an integer >= 0"),
    ("jit_compile", "no", ALL, "jit_compile " + BOOLEAN),
    ("jit_options", [("check_trace", False)], ALL, "jit_options must be a dict or None"),
    ("ignore_jit_warnings", 0, ALL, "ignore_jit_warnings " + BOOLEAN),
    *[("target_accept_prob", v, ALL, "target_accept_prob .*" + UNIT) for v in (0, 1, 1.5, -0.2)],
    ("target_accept_prob", "high", ALL, "target_accept_prob .*" + UNIT),
    ("init_strategy", "uniform", ALL, "init_strategy must be a callable"),
    ("inverse_mass_matrix", [1.0, 2.0, 3.0], ALL, "inverse_mass_matrix must be None, a tensor"),
    *[
        ("trajectory_length", v, HMC_ONLY, "trajectory_length " + POSITIVE)
        for v in (0, -1, math.inf)
    ],
    *[("num_steps", v, HMC_ONLY, r"num_steps must be an integer >= 1") for v in (0, -2, 2.5, True)],
    (
        None,
        {"num_steps": 5, "trajectory_length": 1.0},
        HMC_ONLY,
        "give num_steps or trajectory_length, not both",
    ),
    *[("step_size_jitter", v, HMC_ONLY, r"step_size_jitter must be .*\[0, 1\)") for v in (1, -0.1)],
    *[("num_steps_jitter", v, HMC_ONLY, r"num_steps_jitter must be .*\[0, 1\]") for v in (1.5, 2)],
]

# Checks that need the sites: (kwargs, setup warmup_steps, pattern).
SETUP_CASES = [
    ({"inverse_mass_matrix": torch.ones(4)}, 10, r"inverse_mass_matrix .*shape \(3,\) or \(3, 3\)"),
    (
        {"inverse_mass_matrix": -torch.ones(3)},
        10,
        r"inverse_mass_matrix must have finite, positive",
    ),
    (
        {"inverse_mass_matrix": torch.zeros(3, 3), "full_mass": True},
        10,
        r"inverse_mass_matrix block must be symmetric positive definite",
    ),
    (
        {"inverse_mass_matrix": {("c",): torch.ones(1)}},
        10,
        r"inverse_mass_matrix has a block for \('c',\); the blocks are",
    ),
    (
        {"full_mass": [("a", "c")]},
        10,
        r"full_mass names the unknown site 'c'; allowed: .*\['a', 'b'\]",
    ),
    ({"full_mass": [("a",), ("a", "b")]}, 10, r"full_mass names the site 'a' twice"),
    ({}, -1, r"warmup_steps must be an integer >= 0"),
    ({}, 2.5, r"warmup_steps must be an integer >= 0"),
]


def _ids(cases):
    return [f"{c[0]}={c[1]!r}" if c[0] else "+".join(c[1]) or "neither" for c in cases]


@pytest.mark.parametrize("kernel", ALL, ids=lambda k: k.__name__)
@pytest.mark.parametrize("argument, value, kernels, pattern", CASES, ids=_ids(CASES))
def test_invalid_argument_is_named_with_allowed_values(kernel, argument, value, kernels, pattern):
    if kernel not in kernels:
        pytest.skip(f"{kernel.__name__} has no argument {argument}")
    if argument is None:
        kwargs = dict(value)
    elif argument in ("model", "potential_fn"):
        kwargs = {argument: value}
    else:
        kwargs = {"potential_fn": potential_fn, argument: value}
    with pytest.raises(ValueError, match=pattern):
        kernel(**kwargs)


@pytest.mark.parametrize("kernel", ALL, ids=lambda k: k.__name__)
@pytest.mark.parametrize(
    "kwargs, warmup_steps, pattern", SETUP_CASES, ids=[c[2][:40] for c in SETUP_CASES]
)
def test_invalid_argument_found_at_setup(kernel, kwargs, warmup_steps, pattern):
    sampler = kernel(potential_fn=potential_fn, **kwargs)
    sampler.initial_params = INIT
    with pytest.raises(ValueError, match=pattern):
        sampler.setup(warmup_steps)


@pytest.mark.parametrize("kernel", ALL, ids=lambda k: k.__name__)
def test_potential_fn_without_initial_params(kernel):
    with pytest.raises(ValueError, match="initial_params are required with potential_fn"):
        kernel(potential_fn=potential_fn).setup(10)
