"""Numbers as JSON carries them: a float, or null where it is not finite.

JSON has no NaN or infinity. Results files, the service's answers and audit records all write
a missing standard error (NaN) or an undefined figure as ``null``; this is that one rule.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite_or_none(x: Any) -> float | None:
    """``float(x)``, or None when it is NaN or infinite."""
    value = float(x)
    return value if math.isfinite(value) else None


def nan_to_none(a: Any) -> list[Any]:
    """An array (any shape) as nested lists, NaN (an undefined figure) as None."""
    arr = np.asarray(a, dtype=np.float64)
    return np.where(np.isnan(arr), np.asarray(None), arr).tolist()
