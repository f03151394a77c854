"""The reference population that absent features are drawn from, explicit and recorded.

A :class:`Background` holds real rows and their weights. It is never truncated behind the
user's back: summarising it (a sample, or weighted k-means medoids) is a step the user asks for,
and the result's hash, size and kind go into every explanation's provenance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .exceptions import ConfigurationError, InputError
from .provenance import frame_digest
from .seeding import RandomState, resolve_seed, stream


class Background:
    """Rows of reference data with weights that sum to one.

    Parameters
    ----------
    data : DataFrame or 2-D array of shape (n_samples, n_features)
        Real rows in the model's raw feature space.
    weights : array of shape (n_samples,), optional
        Non-negative weights; default equal. They are normalised to sum to one.
    kind : str
        How the rows were chosen (recorded in provenance).
    """

    def __init__(
        self,
        data: pd.DataFrame | np.ndarray,
        weights: np.ndarray | None = None,
        *,
        kind: str = "full",
        details: dict[str, Any] | None = None,
    ) -> None:
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data))
        if len(frame) == 0:
            raise InputError("the background has no rows")
        frame = frame.reset_index(drop=True)
        if weights is None:
            w = np.full(len(frame), 1.0 / len(frame))
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(frame),):
                raise ConfigurationError(
                    f"weights has shape {w.shape}, expected ({len(frame)},) for the background"
                )
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ConfigurationError("background weights must be finite, >= 0 and not all 0")
            w = w / w.sum()
        self.data = frame
        self.weights = w
        self.kind = kind
        self.details = dict(details or {})
        # Computed once here, so that reading it later never changes the object.
        self._hash = frame_digest(self.data, self.weights)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def uniform(self) -> bool:
        return bool(np.all(self.weights == self.weights[0]))

    @property
    def hash(self) -> str:
        """sha256 of the rows (column names, values) and weights."""
        return self._hash

    def with_columns(self, columns: list[str]) -> Background:
        """The same rows with positional columns renamed (for array input) or reordered."""
        frame = self.data
        if list(frame.columns) == list(range(frame.shape[1])) and len(columns) == frame.shape[1]:
            frame = frame.set_axis(columns, axis=1)
        if list(frame.columns) == list(columns) and frame is self.data:
            return self
        missing = [c for c in columns if c not in frame.columns]
        # Leave a complaint about missing columns to the schema check, which names them.
        return self._derived(frame if missing else frame.loc[:, columns])

    def _derived(self, frame: pd.DataFrame) -> Background:
        """The same rows and weights under other column labels, weights taken as they are.

        Normalising again would be wrong: ``w / w.sum()`` of already normalised weights can
        move their last bit, and a replay (which derives the background twice: to check its
        hash, then to fit) would then differ from the record by ~1e-16.
        """
        out = object.__new__(Background)
        out.data = frame.reset_index(drop=True)
        out.weights = self.weights
        out.kind = self.kind
        out.details = dict(self.details)
        out._hash = frame_digest(out.data, out.weights)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "size": len(self),
            "kind": self.kind,
            "weighted": not self.uniform,
            **self.details,
        }

    # -- summaries ---------------------------------------------------------------------------
    @classmethod
    def sample(
        cls, data: pd.DataFrame | np.ndarray, n: int, random_state: RandomState = None
    ) -> Background:
        """A uniform random sample of ``n`` rows without replacement."""
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data))
        if not 0 < n <= len(frame):
            raise ConfigurationError(f"n must be in 1..{len(frame)}, got {n}")
        seed = resolve_seed(random_state)
        rows = np.sort(stream(seed, 1).choice(len(frame), size=n, replace=False))
        return cls(
            frame.iloc[rows],
            kind="sample",
            details={"source_rows": len(frame), "seed": seed},
        )

    @classmethod
    def kmeans(
        cls, data: pd.DataFrame | np.ndarray, k: int, random_state: RandomState = None
    ) -> Background:
        """``k`` real rows (cluster medoids) weighted by their cluster sizes.

        Numeric columns are standardised and categorical ones one-hot coded for clustering;
        each cluster is represented by its real row closest to the centroid, so categorical
        columns keep real categories.
        """
        from sklearn.cluster import KMeans

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data))
        if not 0 < k <= len(frame):
            raise ConfigurationError(f"k must be in 1..{len(frame)}, got {k}")
        seed = resolve_seed(random_state)
        parts = []
        for col in frame.columns:
            s = frame[col]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                v = s.to_numpy(dtype=np.float64)
                sd = v.std()
                parts.append(((v - v.mean()) / (sd if sd > 0 else 1.0))[:, None])
            else:
                parts.append(pd.get_dummies(s.astype(str)).to_numpy(dtype=np.float64))
        Z = np.hstack(parts)
        km = KMeans(n_clusters=k, n_init=4, random_state=seed % 2**32).fit(Z)
        medoids, weights = [], []
        for c in range(k):
            members = np.flatnonzero(km.labels_ == c)
            if len(members) == 0:
                continue
            dist = ((Z[members] - km.cluster_centers_[c]) ** 2).sum(axis=1)
            medoids.append(int(members[np.argmin(dist)]))
            weights.append(len(members))
        order = np.argsort(medoids)
        return cls(
            frame.iloc[np.asarray(medoids)[order]],
            np.asarray(weights, dtype=np.float64)[order],
            kind="kmeans",
            details={"source_rows": len(frame), "seed": seed, "k": k},
        )
