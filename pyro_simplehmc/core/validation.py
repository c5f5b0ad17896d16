"""Argument checks with errors that name the argument and what it may be."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor


def _as_real(value: Any) -> float | None:
    """``value`` as a float if it is a real number (a 0-dim tensor or numpy scalar too)."""
    if isinstance(value, Tensor) and value.dim() == 0 and not value.is_complex():
        value = value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def positive_finite(name: str, value: Any) -> float:
    real = _as_real(value)
    if real is None or not math.isfinite(real) or real <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return real


def open_unit_interval(name: str, value: Any) -> float:
    real = _as_real(value)
    if real is None or not 0 < real < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    return real


def unit_interval_right_open(name: str, value: Any) -> float:
    real = _as_real(value)
    if real is None or not 0 <= real < 1:
        raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
    return real


def unit_interval(name: str, value: Any) -> float:
    real = _as_real(value)
    if real is None or not 0 <= real <= 1:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
    return real


def positive_int(name: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0; got {value!r}")
    return int(value)


def nonnegative_int_or_none(name: str, value: Any) -> int | None:
    return None if value is None else nonnegative_int(name, value)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def callable_or_none(name: str, value: Any) -> Callable | None:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be a callable; got {type(value).__name__}")
    return value


def dict_or_none(name: str, value: Any) -> dict | None:
    if value is not None and not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict or None; got {type(value).__name__}")
    return value


def full_mass(value: Any) -> bool | list[tuple[str, ...]]:
    allowed = "full_mass must be True, False, or a list of tuples of site names"
    if isinstance(value, bool):
        return value
    if not isinstance(value, list) or not value:
        raise ValueError(f"{allowed}; got {value!r}")
    for block in value:
        if (
            not isinstance(block, tuple)
            or not block
            or not all(isinstance(name, str) for name in block)
        ):
            raise ValueError(f"{allowed}; got the block {block!r}")
    return value


def inverse_mass_matrix(value: Any) -> Tensor | Mapping | None:
    if value is None or isinstance(value, Tensor | Mapping):
        return value
    raise ValueError(
        "inverse_mass_matrix must be None, a tensor (1-D diagonal or 2-D dense), or a dict "
        f"mapping tuples of site names to such tensors; got {type(value).__name__}"
    )


# --- chains run as a batch -------------------------------------------------------------------


def mass_estimator(value: Any, low_rank_size: Any, uses_gradient: bool) -> tuple[str, int | None]:
    """``mass_estimator`` and ``low_rank_size`` (checked against the dimension at setup)."""
    value = one_of("mass_estimator", value, ("stan", "fisher", "low_rank"))
    if value != "stan" and not uses_gradient:
        raise ValueError(
            f"mass_estimator={value!r} estimates from gradients, which this kernel does not "
            'compute: use "stan"'
        )
    if low_rank_size is not None:
        if value != "low_rank":
            raise ValueError(
                'low_rank_size is used with mass_estimator="low_rank" only; '
                f"got mass_estimator={value!r}"
            )
        low_rank_size = positive_int("low_rank_size", low_rank_size)
    return value, low_rank_size


def one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def chain_dimension(name: str, params: Mapping[str, Tensor], num_chains: int) -> None:
    """Each site of ``params`` must have a leading dimension of size ``num_chains``."""
    for site, value in params.items():
        if value.dim() == 0 or value.shape[0] != num_chains:
            raise ValueError(
                f"{name} must have a leading chain dimension of size num_chains={num_chains} "
                f"on every site; got site {site!r} with shape {tuple(value.shape)}"
            )


# ---------------------------------------------------------------------------- comparison runner,
# testing kit, targets and the command line (issue 12)


def int_at_least(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def real_in_open_interval(name: str, value: Any, low: float, high: float) -> float:
    real = _as_real(value)
    if real is None or not low < real < high:
        raise ValueError(
            f"{name} must be a number strictly between {low} and {high}; got {value!r}"
        )
    return real


def real_at_least(name: str, value: Any, minimum: float) -> float:
    real = _as_real(value)
    if real is None or not math.isfinite(real) or real < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}; got {value!r}")
    return real


def int_list(name: str, values: Any, minimum: int) -> list[int]:
    message = f"{name} must be a non-empty list of integers >= {minimum}; got {values!r}"
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise ValueError(message)
    values = list(values)
    if not values or any(
        not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum for v in values
    ):
        raise ValueError(message)
    return [int(v) for v in values]


def tuple_or_list(name: str, value: Any) -> tuple:
    if not isinstance(value, tuple | list):
        raise ValueError(f"{name} must be a tuple or a list; got {type(value).__name__}")
    return tuple(value)


def string_or_none(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None; got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------- ArviZ conversion


def no_unknown_keywords(function: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Keyword arguments a function collected with ``**`` but does not take: a ``TypeError``
    (Python's own for unexpected keywords) that lists the ones it takes."""
    if given:
        raise TypeError(
            f"{function}() got unknown arguments {sorted(given)}; it takes "
            f"{', '.join(allowed)}"
        )
