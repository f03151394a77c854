"""Seeds that belong to the call: never the global NumPy RNG.

Every random stream is derived from one recorded integer seed plus a fixed key that says what
the stream is for, so the same seed reproduces the same numbers in any process, in any order.
"""

from __future__ import annotations

import numpy as np

from .exceptions import ConfigurationError

RandomState = int | np.random.Generator | None


def resolve_seed(random_state: RandomState) -> int:
    """An integer seed that can be recorded and replayed.

    ``None`` draws fresh OS entropy; a ``Generator`` is asked for one integer (advancing it,
    as any use of a caller's generator does); an ``int`` is used as it is.
    """
    if random_state is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise ConfigurationError(
            f"random_state must be an int, a numpy Generator or None, got {random_state!r}"
        )
    if random_state < 0:
        raise ConfigurationError(f"random_state must be non-negative, got {random_state}")
    return int(random_state)


def stream(seed: int, *key: int) -> np.random.Generator:
    """The generator for purpose ``key`` under ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(key)))
