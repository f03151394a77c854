"""LocalSurrogate: LIME-style local surrogates that are fast, stable and state their fidelity.

For each explained row ``x`` the model is evaluated on a neighbourhood sampled in the raw
feature space and a weighted surrogate is fitted to its outputs:

* ``sampling="gaussian"``: numeric columns move by ``σ_j ε_j`` (``σ_j`` the background's standard
  deviation, ``ε`` standard normal); categorical columns are replaced, with probability ½, by
  the category of a background row, so the model only sees real categories. The regressors
  are the standardised deltas ``ε_j`` and the replacement indicators ``z``.
* ``sampling="masking"``: every feature keeps ``x``'s value or takes a background row's, as
  in KernelSHAP; the regressors are the replacement indicators.

Three choices make the result stable across seeds and cheap:

* **one design for every row**: the standardised deltas, indicators, background rows and
  kernel weights depend only on the seed and the problem's size, so the regression map is
  computed once per call and all rows' neighbourhoods go to the model in a few large calls;
* **orthogonal blocks with mirror images**: samples come in blocks that cross one vector of
  step magnitudes with the sign patterns of a Hadamard matrix, each pattern with its mirror
  image (``−ε``, the complementary set of replaced features, the same background row), all
  with one kernel weight. Within a block the regressors are exactly orthogonal, so a term of
  the model in one feature (a curve, a step) adds no noise to another feature's slope, and
  terms even in the deltas (pairwise interactions) cancel with the mirrors;
* **quasi-random magnitudes**: the blocks' magnitudes are a low-discrepancy quadrature of the
  half-normal distribution, so each ``ε_j`` is standard normal over the blocks without the
  clumps and gaps of independent draws (details in ``_neighbourhood.fit_sample``).

Contributions are read off the surrogate between the row and a reference point: the
background mean for numeric columns, "replaced" for replaced columns. For a linear surrogate
``g(u) = a + c·u`` (``u = 0`` at ``x``) a numeric column contributes ``c_j (x_j − μ_j) / σ_j``
and a replaced column ``−c_j``; ``base_values`` is ``g`` at the reference, so values add up to
``g(x) − base``, and ``diagnostics.efficiency_gap`` is the surrogate's miss at the row,
``|g(x) − f(x)|``. With ``sampling="masking"`` and the default ridge surrogate the fit is
KernelSHAP's efficiency-constrained least squares (:func:`~surrogate_xai.regression.
constrained_wls_map`) under the LIME design, so values add up to ``f(x) − E f(b)`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import ConfigurationError, InputError, ModelError
from ..explanation import Explanation
from ..model import Model
from ..numbers import nan_to_none
from ..validation import check_int
from ._local_fit import Fitter, RowFit
from ._neighbourhood import Layout, fit_sample, holdout_sample, one_blas_thread
from .base import SeededExplainer

_SURROGATES = ("ridge", "lasso", "tree")
_SAMPLINGS = ("gaussian", "masking")


class LocalSurrogate(SeededExplainer):
    """Local surrogate explanations (LIME-style), stable across seeds, with their fidelity.

    Parameters
    ----------
    n_samples : int
        Model rows evaluated per explained row (plus the row itself). About a share
        ``holdout`` of them is a fresh, independent sample used only to measure fidelity; the
        rest, in whole blocks of ``2q`` samples (``q`` the power of two above the number of
        regressors), is fitted.
    kernel_width : float, optional
        Width of lime's exponential proximity kernel on the squared distance in standardised
        units: numeric deltas in standard deviations, plus ½ per replaced feature (a block
        replaces each of them in half its samples, and all samples of a block share one
        weight). Default ``0.75 √p`` for ``p`` regressors, as in lime.
    surrogate : {"ridge", "lasso", "tree"}
        Weighted linear fit (ridge penalty ``alpha``), weighted lasso (penalty ``alpha`` or the
        point of the LARS path with ``max_features`` features), or a weighted regression tree of
        depth ``max_depth`` whose contributions are its exact Shapley values between the row
        and the reference point.
    max_features : int, optional
        At most this many features (or groups) get a non-zero value: for ridge and trees the
        largest contributions of the full fit, refitted on those features (lime's
        ``highest_weights``); for lasso the path point with that many features.
    sampling : {"gaussian", "masking"}
        How the neighbourhood is drawn (see the module notes).
    alpha : float
        Penalty of ``surrogate="ridge"`` / ``"lasso"`` on the standardised regressors, with
        kernel weights normalised to sum to one. Ridge's default 0 is weighted least squares:
        the design is full rank by construction, and any penalty shrinks every contribution
        (a linear model is then no longer recovered exactly).
    holdout : float
        Share of ``n_samples`` drawn afresh (independently) to report held-out R².
    max_depth : int
        Depth of ``surrogate="tree"``.
    random_state : int, numpy Generator or None
        Seed of the neighbourhood design; ``None`` draws a fresh seed per call (recorded in
        provenance). The same seed gives bit-identical values whatever the batch or row order.
    batch_rows : int
        Model rows per model call: neighbourhoods of several explained rows are evaluated
        together. Each row's values depend only on its own model outputs, so the grouping
        changes nothing for models whose output for a row does not depend on the other rows
        in the call (onnxruntime tree ensembles, sklearn models); for a model with
        batch-dependent arithmetic, ``batch_rows <= n_samples + 1`` evaluates every row in a
        call of its own.

    Notes
    -----
    ``stderr`` for the linear fits (ridge without ``max_features``, and the masking
    least squares) is a sandwich estimate with the design's blocks as the sampling units,
    which is conservative for the quasi-random design; after feature selection (``max_features``,
    lasso) and for trees no valid standard error is available and it is NaN.
    ``diagnostics.extra`` holds, per row and output, ``r2`` (weighted, on the fitted
    neighbourhood), ``r2_holdout`` (weighted, on the fresh sample) and ``prediction_gap``
    (surrogate minus model at the row).
    """

    method = "local-surrogate"

    def __init__(
        self,
        *,
        n_samples: int = 5_000,
        kernel_width: float | None = None,
        surrogate: Literal["ridge", "lasso", "tree"] = "ridge",
        max_features: int | None = None,
        sampling: Literal["gaussian", "masking"] = "gaussian",
        alpha: float = 0.0,
        holdout: float = 0.2,
        max_depth: int = 3,
        random_state: Any = None,
        batch_rows: int = 65_536,
    ) -> None:
        self.n_samples = n_samples
        self.kernel_width = kernel_width
        self.surrogate = surrogate
        self.max_features = max_features
        self.sampling = sampling
        self.alpha = alpha
        self.holdout = holdout
        self.max_depth = max_depth
        self.random_state = random_state
        self.batch_rows = batch_rows

    # -- parameters ----------------------------------------------------------------------------
    def validate_params(self) -> None:
        super().validate_params()
        check_int("n_samples", self.n_samples, minimum=8)
        check_int("batch_rows", self.batch_rows)
        check_int("max_depth", self.max_depth)
        if self.max_features is not None:
            check_int("max_features", self.max_features)
        if self.surrogate not in _SURROGATES:
            raise ConfigurationError(
                f"surrogate must be one of {_SURROGATES}, got {self.surrogate!r}"
            )
        if self.sampling not in _SAMPLINGS:
            raise ConfigurationError(f"sampling must be one of {_SAMPLINGS}, got {self.sampling!r}")
        if self.kernel_width is not None and not (
            isinstance(self.kernel_width, int | float) and 0 < self.kernel_width < np.inf
        ):
            raise ConfigurationError(
                f"kernel_width must be a positive number or None, got {self.kernel_width!r}"
            )
        if not (isinstance(self.alpha, int | float) and 0 <= self.alpha < np.inf):
            raise ConfigurationError(f"alpha must be a number >= 0, got {self.alpha!r}")
        if not (isinstance(self.holdout, int | float) and 0 <= self.holdout <= 0.5):
            raise ConfigurationError(f"holdout must be a share in [0, 0.5], got {self.holdout!r}")
        if self.surrogate == "lasso" and self.alpha == 0 and self.max_features is None:
            raise ConfigurationError(
                "surrogate='lasso' needs alpha > 0 or max_features (with neither it is least squares)"
            )
        if self.sampling == "masking" and self.surrogate == "ridge" and self.alpha != 0:
            raise ConfigurationError(
                "alpha must be 0 with sampling='masking' and surrogate='ridge': that fit is the "
                "efficiency-constrained least squares shared with KernelSHAP"
            )

    def _sizes(self, n_regressors: int) -> tuple[int, int]:
        """Fitted and held-out samples per explained row (whole blocks are fitted)."""
        block = 2 << int(np.ceil(np.log2(n_regressors + 1)))
        n_fit = (self.n_samples - round(self.holdout * self.n_samples)) // block * block
        return n_fit, (self.n_samples - n_fit if self.holdout > 0 else 0)

    def fit(
        self,
        model: Model,
        background: pd.DataFrame | np.ndarray | Background,
        feature_groups: Mapping[str, Sequence[str]] | None = None,
    ) -> LocalSurrogate:
        """Bind ``model`` and ``background`` (the source of scales, reference and categories).

        Parameters
        ----------
        model : Model
        background : DataFrame, array of shape (n_background, n_features) or Background
        feature_groups : mapping of str to list of str, optional
            One value per group: its columns' contributions added up; replaced columns of a
            group are replaced together, from the same background row.
        """
        super().fit(model, background, feature_groups)
        self.layout_ = self._layout()
        p = self.layout_.n_regressors
        if self._sizes(p)[0] == 0:
            block = 2 << int(np.ceil(np.log2(p + 1)))
            raise ConfigurationError(
                f"n_samples={self.n_samples} is too small for {p} regressors: one block of the "
                f"design has {block} samples; raise n_samples to at least "
                f"{int(np.ceil(block / (1 - self.holdout)))}"
            )
        return self

    def _layout(self) -> Layout:
        frame = self.background_.data
        w = self.background_.weights
        gauss, mean, scale, replace, replace_unit = [], [], [], [], []
        for j, (col, kind) in enumerate(zip(self.schema_.columns, self.schema_.kinds, strict=True)):
            if self.sampling == "gaussian" and kind == "numeric":
                v = pd.to_numeric(frame[col]).to_numpy(dtype=np.float64, na_value=np.nan)
                if np.isnan(v).any():
                    raise InputError(
                        f"column {col!r} of the background has missing values; "
                        "sampling='gaussian' needs numeric values to scale by (use 'masking')"
                    )
                mu = float(w @ v)
                sd = float(np.sqrt(w @ (v - mu) ** 2))
                gauss.append(j)
                mean.append(mu)
                # A column constant in the background has no scale of its own: unit steps.
                scale.append(sd if sd > 0 else 1.0)
            else:
                replace.append(j)
                replace_unit.append(int(self.unit_index_[j]))
        units_replaced = sorted(set(replace_unit))  # one indicator per unit: replaced together
        replace_reg = np.array([units_replaced.index(u) for u in replace_unit], dtype=np.intp)
        reg_unit = np.concatenate(
            [
                self.unit_index_[np.asarray(gauss, dtype=np.intp)],
                np.asarray(units_replaced, dtype=np.intp),
            ]
        ).astype(np.intp)
        return Layout(
            np.asarray(gauss, dtype=np.intp),
            np.asarray(mean, dtype=np.float64),
            np.asarray(scale, dtype=np.float64),
            np.asarray(replace, dtype=np.intp),
            replace_reg,
            reg_unit,
            len(self.feature_names_),
        )

    # -- explaining ----------------------------------------------------------------------------
    def explain_rows(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        frame, bg_frame, codebook = self.prepare(X)
        model, layout = self.model_, self.layout_
        dtype = np.dtype(getattr(model, "input_dtype", np.float64))
        X_enc = codebook.encode(frame)
        if layout.n_gauss and np.isnan(X_enc[:, layout.gauss_cols]).any():
            pos = np.argwhere(np.isnan(X_enc[:, layout.gauss_cols]))[0]
            raise InputError(
                f"row {pos[0]} of X has a missing value in column "
                f"{self.schema_.columns[layout.gauss_cols[pos[1]]]!r}; sampling='gaussian' cannot "
                "perturb it (use sampling='masking')"
            )
        bg_enc = codebook.encode(bg_frame)
        seed = self.call_seed()
        p = layout.n_regressors
        n_fit, n_hold = self._sizes(p)
        width = float(self.kernel_width or 0.75 * np.sqrt(p))
        bg_w = self.background_.weights
        fit_s = fit_sample(layout, n_fit, bg_w, width, seed)
        hold_s = holdout_sample(layout, n_hold, bg_w, width, seed) if n_hold else None
        with one_blas_thread():
            fitter = Fitter(self, fit_s, hold_s)
        samples = [fit_s] if hold_s is None else [fit_s, hold_s]
        eps = np.concatenate([s.eps for s in samples])
        z = np.concatenate([s.z for s in samples])
        rows = np.concatenate([s.rows for s in samples])
        # Each sample is the row plus a shift (zero outside the Gaussian columns), then the
        # replaced columns overwritten: two passes over the block, whatever the layout.
        shift = np.zeros((len(rows), X_enc.shape[1]), dtype=dtype)
        shift[:, layout.gauss_cols] = eps * layout.scale
        replaced = z[:, layout.replace_reg]
        bg_values = bg_enc[rows][:, layout.replace_cols].astype(dtype)
        m = len(rows) + 1
        per_call = max(1, self.batch_rows // m)
        results: list[RowFit] = []
        f_x = np.empty((len(X_enc), len(model.output_names)))
        for start in range(0, len(X_enc), per_call):
            chunk = X_enc[start : start + per_call].astype(dtype)
            block = np.empty((len(chunk), m, chunk.shape[1]), dtype=dtype)
            block[:, 0] = chunk
            np.add(chunk[:, None, :], shift[None], out=block[:, 1:])
            if len(layout.replace_cols):
                block[:, 1:, layout.replace_cols] = np.where(
                    replaced[None], bg_values[None], chunk[:, None, layout.replace_cols]
                )
            try:
                out = model.predict(codebook.decode(block.reshape(-1, chunk.shape[1])))
            except ModelError as exc:
                raise type(exc)(
                    f"while explaining rows {row_offset + start}-"
                    f"{row_offset + start + len(chunk) - 1}: {exc}"
                ) from exc
            out = out.reshape(len(chunk), m, -1)
            f_x[start : start + len(chunk)] = out[:, 0]
            with one_blas_thread():
                results.extend(fitter.row(X_enc[start + i], out[i]) for i in range(len(chunk)))
        return self._assemble(frame, results, f_x, seed, width, n_fit, n_hold)

    def _assemble(
        self,
        frame: pd.DataFrame,
        results: list[RowFit],
        f_x: np.ndarray,
        seed: int,
        width: float,
        n_fit: int,
        n_hold: int,
    ) -> Explanation:
        values = np.stack([r.values for r in results])
        stderr = np.stack([r.stderr for r in results])
        base = np.stack([r.base for r in results])
        g_x = np.stack([r.g_x for r in results])

        extra = {
            "r2": nan_to_none(np.stack([r.r2 for r in results])),
            "r2_holdout": nan_to_none(np.stack([r.r2_holdout for r in results])),
            "prediction_gap": (g_x - f_x).tolist(),
            "surrogate_predictions": g_x.tolist(),
            "kernel_width": width,
        }
        return self.assemble(
            frame,
            values=values,
            stderr=stderr,
            base_values=base,
            predictions=f_x,
            model_evaluations=np.full(len(results), n_fit + n_hold + 1),
            converged=np.zeros(len(results), dtype=bool),
            blocks=np.ones(len(results), dtype=np.int64),
            exact=False,
            seed=seed,
            design={
                "sampling": self.sampling,
                "fitted_samples": n_fit,
                "holdout_samples": n_hold,
                "design": "Hadamard blocks with mirrors, Sobol quadrature magnitudes",
                "kernel_width": width,
                "gaussian_columns": [self.schema_.columns[j] for j in self.layout_.gauss_cols],
            },
            extra=extra,
        )
