"""TreeSHAP: exact interventional Shapley values of the tree ensembles inside ONNX graphs."""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..background import Background
from ..exceptions import ConfigurationError, TreeGraphError
from ..explanation import Explanation
from ..model import Model
from ..onnx_model import ONNXModel
from ..trees import TreeFunction, TreeMarginModel, read_function
from ..trees.interventional import TreeGame, interventional_values, node_units
from ..trees.margin import compare_outputs
from ._design import BlockDesign
from ._engine import RowResult
from ._tree_paths import (
    control_variate_row,
    differing_units,
    enumerate_row,
    enumeration_cost,
)
from .design_explainer import Revision, cached_design
from .permutation import PermutationSHAP

logger = logging.getLogger(__name__)

Fallback = Literal["permutation", "raise"]


class TreeSHAP(PermutationSHAP):
    """Exact interventional Shapley values for tree ensembles read from an ONNX graph.

    The trees (``TreeEnsembleRegressor``, ``TreeEnsembleClassifier`` or the opset-5
    ``TreeEnsemble``), the column-wise preprocessing in front of them (scalers, imputers,
    one-hot encoders: explained in the raw columns, a one-hot block as one feature) and the
    nodes behind them are read from the graph and checked against it on the background.
    The game is the one every estimator here targets, ``v(S) = Σ_b w_b f(x_S, b_S̄)``.

    * Where the explained output is affine in the trees' raw scores (a regressor, a random
      forest's averaged probabilities, or a :class:`~surrogate_xai.trees.TreeMarginModel`),
      every value is exact, computed tree by tree in polynomial time: standard errors 0,
      ``diagnostics.exact`` True, and no model rows beyond ``f(x)``.
    * Behind LOGISTIC / SOFTMAX (probabilities of a boosted classifier) the game has no
      closed form. A row is enumerated exactly when the units on which it differs from each
      background row (as far as any split can tell) are few enough for ``max_evals``;
      otherwise it is sampled with permutations, with the exact margin values as a control
      variate. ``diagnostics.extra["tree_path"]`` says which, per row.
    * A graph that cannot be followed exactly (an operator or node this reader does not
      know, a parse that does not reproduce the graph) is explained by PermutationSHAP with
      ``fallback="permutation"``, the reason recorded in ``diagnostics.extra``; with
      ``fallback="raise"`` it raises :class:`~surrogate_xai.exceptions.TreeGraphError`.

    Parameters
    ----------
    max_evals : int
        Model rows per explained row, at most, on the sampled and enumerated paths.
    tol : float, optional
        Stop a sampled row early once every standard error is below ``tol``.
    random_state : int, numpy Generator or None
        Seed of the sampled paths (recorded; unused when every value is exact).
    fallback : {"permutation", "raise"}
        What to do with a graph whose trees cannot be read exactly.
    batch_rows : int
        Rows built and evaluated at once per explained row.
    n_jobs : int
        Explained rows processed concurrently on threads on the probability paths (the
        margin values are one vectorised pass); results do not depend on it.
    """

    method = "tree"

    def __init__(
        self,
        *,
        max_evals: int = 20_000,
        tol: float | None = None,
        random_state: Any = None,
        fallback: Fallback = "permutation",
        batch_rows: int = 65_536,
        n_jobs: int = 1,
        revision: Revision = 2,
    ) -> None:
        super().__init__(
            max_evals=max_evals,
            tol=tol,
            random_state=random_state,
            batch_rows=batch_rows,
            n_jobs=n_jobs,
            revision=revision,
        )
        self.fallback = fallback

    def validate_params(self) -> None:
        super().validate_params()
        if self.fallback not in ("permutation", "raise"):
            raise ConfigurationError(
                f"fallback must be 'permutation' or 'raise', got {self.fallback!r}"
            )

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self,
        model: Model,
        background: pd.DataFrame | np.ndarray | Background,
        feature_groups: Any = None,
    ) -> TreeSHAP:
        """Bind ``model`` and ``background`` and read the trees (see the class docstring).

        Raises
        ------
        TreeGraphError
            With ``fallback="raise"``, when the graph's trees cannot be read exactly.
        """
        super().fit(model, background, feature_groups)
        self.fallback_reason_: str | None = None
        try:
            self.trees_ = self._read_trees(model)
        except TreeGraphError as exc:
            if self.fallback == "raise":
                raise
            self.fallback_reason_ = str(exc)
            logger.warning("TreeSHAP falls back to permutation sampling: %s", exc)
        return self

    def _read_trees(self, model: Model) -> _FittedTrees:
        if isinstance(model, TreeMarginModel):
            function = model.function
            linear: tuple[np.ndarray, np.ndarray] | None = (
                np.eye(function.n_margins),
                np.zeros(function.n_margins),
            )
        elif isinstance(model, ONNXModel):
            function = read_function(model)
            linear = (
                function.output.linear_part(function.n_margins) if function.output.affine else None
            )
        else:
            raise TreeGraphError(
                f"TreeSHAP reads the trees of an ONNXModel or a TreeMarginModel; "
                f"{type(model).__name__} has no graph to read"
            )
        bg = self.background_.data.loc[:, list(self.schema_.columns)]
        Z_b = function.features(function.frame_columns(bg))
        g_b = function.margins_of(Z_b)
        mine = g_b if isinstance(model, TreeMarginModel) else function.output(g_b)
        compare_outputs(mine, self.background_predictions_, model.output_names, "the background")
        column_unit = self.unit_index_[
            [function.raw_column(t) for t in range(len(function.plan.columns))]
        ]
        game = TreeGame(
            ensemble=function.ensemble,
            leaf_values=function.ensemble.leaf_values[:, function.output.margin_targets],
            units=node_units(function.ensemble, column_unit),
            n_units=len(self.feature_names_),
            dec_b=function.ensemble.decisions(Z_b),
            weights=self.background_.weights,
        )
        return _FittedTrees(function, linear, game, g_b)

    # -- explaining ----------------------------------------------------------------------------
    def explain_rows(self, X: pd.DataFrame | np.ndarray, row_offset: int) -> Explanation:
        self.check_fitted()
        if self.fallback_reason_ is not None:
            exp = super().explain_rows(X, row_offset)
            extra = {
                **exp.diagnostics.extra,
                "tree_path": ["permutation-fallback"] * len(exp),
                "fallback_reason": self.fallback_reason_,
            }
            return dataclasses.replace(
                exp, diagnostics=dataclasses.replace(exp.diagnostics, extra=extra)
            )
        frame, _, codebook = self.prepare(X)
        trees = self.trees_
        function = trees.function
        model = self.model_
        X_enc = codebook.encode(frame)
        f_x = model.predict(codebook.decode(X_enc))
        Z_x = function.features(function.frame_columns(frame))
        g_x = function.margins_of(Z_x)
        dec_x = function.ensemble.decisions(Z_x)
        n_units = len(self.feature_names_)
        phi_g = interventional_values(trees.game, dec_x)
        seed = self.call_seed()
        if trees.linear is not None:
            A, _ = trees.linear
            if not isinstance(model, TreeMarginModel):
                compare_outputs(function.output(g_x), f_x, model.output_names, "X", row_offset)
            values = np.einsum("ndm,mk->ndk", phi_g, A)
            results = [
                RowResult(values[i], np.zeros_like(values[i]), f_x[i], 1, 0, True)
                for i in range(len(frame))
            ]
            paths = ["exact"] * len(frame)
        else:
            compare_outputs(function.output(g_x), f_x, model.output_names, "X", row_offset)
            results, paths = self._probability_rows(X_enc, codebook, f_x, g_x, dec_x, phi_g, seed)
        design = (
            _closed_form(n_units, len(self.background_))
            if trees.linear is not None
            else _cached_design_for(self, seed)
        )
        return self.from_rows(
            frame,
            results,
            design,
            seed,
            exact=trees.linear is not None,
            extra={"tree_path": paths, "post_transform": function.ensemble.post_transform},
            design_fields={"trees": function.ensemble.n_trees},
        )

    def _probability_rows(
        self,
        X_enc: np.ndarray,
        codebook: Any,
        f_x: np.ndarray,
        g_x: np.ndarray,
        dec_x: np.ndarray,
        phi_g: np.ndarray,
        seed: int | None,
    ) -> tuple[list[RowResult], list[str]]:
        trees = self.trees_
        function = trees.function
        model = self.model_
        dtype = model.input_dtype
        bg_frame = self.background_.data.loc[:, list(self.schema_.columns)]

        def margins(rows: np.ndarray) -> np.ndarray:
            decoded = codebook.decode(rows)
            return function.margins_of(function.features(function.frame_columns(decoded)))

        problem = self.problem(codebook, bg_frame)
        design = _cached_design_for(self, seed)
        per_round = max(1, self.batch_rows // max(design.rows_per_block, 1))
        tol = self.tolerance()
        X_rows = X_enc.astype(dtype, copy=False)

        def one(i: int) -> tuple[RowResult, str]:
            differs = differing_units(dec_x[i], trees.game.dec_b, trees.game.units, problem.n_units)
            if enumeration_cost(differs) <= self.max_evals - 1:
                return enumerate_row(
                    X_rows[i], f_x[i], differs, problem, self.batch_rows
                ), "enumerated"
            row = control_variate_row(
                X_rows[i], problem, margins, g_x[i], trees.g_b, phi_g[i], f_x[i], design,
                per_round, tol, self.batch_rows,
            )  # fmt: skip
            return row, "control-variate"

        # Rows are independent (each row's model calls hold only its own rows), so threads
        # cannot change a value.
        if self.n_jobs == 1 or len(X_rows) == 1:
            done = [one(i) for i in range(len(X_rows))]
        else:
            with ThreadPoolExecutor(max_workers=self.n_jobs) as pool:
                done = list(pool.map(one, range(len(X_rows))))
        return [r for r, _ in done], [p for _, p in done]


@dataclasses.dataclass(frozen=True, eq=False)
class _FittedTrees:
    function: TreeFunction
    linear: tuple[np.ndarray, np.ndarray] | None  # output = margin @ A + c, when affine
    game: TreeGame  # the trees, their units and the background's decisions
    g_b: np.ndarray  # (n_background, n_margins)


def _closed_form(n_units: int, n_background: int) -> BlockDesign:
    """What the provenance records for values computed tree by tree: every background row
    once, exactly, and no coalition evaluated."""
    return BlockDesign(
        masks=np.zeros((1, 0, n_units), dtype=bool),
        G=np.zeros((1, n_units, 0)),
        h=np.zeros((1, n_units)),
        baselines=np.arange(n_background, dtype=np.intp),
        exact_blocks=True,
        cycles=1,
        n_background=n_background,
    )


def _cached_design_for(explainer: TreeSHAP, seed: int | None) -> BlockDesign:
    return cached_design(explainer, len(explainer.feature_names_), len(explainer.background_), seed)
