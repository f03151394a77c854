"""Checks of a parameter's value, written once: an int that is not a bool, a number in range.

``True`` is an ``int`` in Python and ``nan`` is a ``float``: a check written by hand as
``isinstance(v, int) and v >= 1`` takes ``True`` for 1, and ``v > 0`` is false for NaN but
``not v <= 0`` is true. These helpers get both right, raise :class:`ConfigurationError` naming
the parameter and the value, and return the value as a plain Python number.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import numpy as np

from .exceptions import ConfigurationError


def is_int(value: Any) -> TypeGuard[int | np.integer[Any]]:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float | np.integer[Any] | np.floating[Any]]:
    """A real number (int or float, Python or numpy), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def check_int(name: str, value: Any, *, minimum: int | None = 1) -> int:
    """``value`` as an int ``>= minimum``, or :class:`ConfigurationError`."""
    if not is_int(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ConfigurationError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def check_optional_int(name: str, value: Any, *, minimum: int | None = 1) -> int | None:
    """Like :func:`check_int`, and None is allowed."""
    if value is None:
        return None
    if not is_int(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ConfigurationError(f"{name} must be an integer{bound} or None, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict: bool = False,
    optional: bool = False,
) -> float | None:
    """``value`` as a finite float in ``[minimum, maximum]`` (open at ``minimum`` when
    ``strict``), or :class:`ConfigurationError`; None passes when ``optional``."""
    if value is None and optional:
        return None
    ok = is_number(value) and math.isfinite(float(value))
    if ok and minimum is not None:
        ok = float(value) > minimum if strict else float(value) >= minimum
    if ok and maximum is not None:
        ok = float(value) <= maximum
    if not ok:
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if strict else '>='} {minimum}")
        if maximum is not None:
            parts.append(f"<= {maximum}")
        bound = (" " + " and ".join(parts)) if parts else ""
        none = " or None" if optional else ""
        raise ConfigurationError(f"{name} must be a finite number{bound}{none}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` as one of ``choices``, or :class:`ConfigurationError` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigurationError(f"{name} must be one of {choices}, got {value!r}")
    return value
