"""GlobalSurrogate: an interpretable scikit-learn estimator fitted to a black box's outputs.

The surrogate is only as good as its agreement with the black box on rows it has not seen, so
``fit`` always holds rows out, reports fidelity on them (overall, per leaf and per segment of
a named column), and refuses, or flags, a surrogate below ``min_fidelity``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from ..exceptions import ConfigurationError, ExplainerError
from ..model import Model
from ..seeding import resolve_seed
from ..tabular import as_frame
from ..validation import check_int, check_optional_int
from ._rules import encoder_for, leaf_rules, linear_rule, metrics, segment_table

logger = logging.getLogger(__name__)


class LowFidelityError(ExplainerError):
    """A surrogate's held-out fidelity is below the required minimum."""

    def __init__(self, message: str, fidelity: Fidelity) -> None:
        super().__init__(message)
        self.fidelity = fidelity


@dataclass(frozen=True)
class Fidelity:
    """Agreement between surrogate and black box on held-out rows.

    Attributes
    ----------
    metric : {"r2", "accuracy"}
        The headline metric: R² for scores, accuracy (agreement of classes) for classes.
    value : float
        The headline on all held-out rows (R² averaged over outputs).
    scores : dict
        Every held-out figure: ``r2[<output>]`` per output, or ``accuracy`` and ``auc`` (the
        surrogate's probability of the black box's class, ranked against that class; None
        when the held-out rows hold a single class).
    n_train, n_test : int
        Rows used to fit, rows held out.
    by_leaf : DataFrame or None
        Per leaf of a tree surrogate: ``leaf``, ``rule``, ``n_test`` and the metrics on the
        held-out rows in that leaf (``rmse``, ``r2``, or ``accuracy``).
    by_segment : DataFrame or None
        The same per value (or quartile bin) of the column named by ``segment_by``.
    """

    metric: str
    value: float
    scores: dict[str, float | None]
    n_train: int
    n_test: int
    by_leaf: pd.DataFrame | None
    by_segment: pd.DataFrame | None


class GlobalSurrogate(BaseEstimator):
    """A shallow tree or linear model that mimics a black box, with held-out fidelity.

    Use ``fit(model, X)`` to fit the black box's outputs on ``X`` (what it is for), or
    ``fit(X, y)`` with outputs already computed (the scikit-learn form).

    Parameters
    ----------
    kind : {"tree", "linear"}
        A decision tree (regressor on scores, classifier on classes) or a linear model
        (least squares, or logistic regression on classes) on standardised numeric columns
        and one-hot coded categories.
    max_depth : int
        Depth of the tree.
    max_features : int, optional
        Use at most this many input columns: the most important ones of a first fit
        (impurity importance for trees, |standardised coefficient| for linear models) are
        kept and the surrogate refitted on them. (Not scikit-learn's per-split sampling.)
    task : {"regression", "classification"}
        Mimic the black box's scores (all outputs, or ``output``) or its classes (the output
        with the largest score; class labels are the output names).
    output : str, optional
        With ``task="regression"`` and ``fit(model, X)``: the one output to mimic.
    test_size : float
        Share of rows held out for fidelity.
    min_fidelity : float
        Required held-out R² (scores) or accuracy (classes).
    on_low_fidelity : {"raise", "flag"}
        Below ``min_fidelity``: raise :class:`LowFidelityError` (the fitted surrogate and its
        ``fidelity_`` stay available on the estimator and the exception), or set
        ``low_fidelity_ = True`` and log a warning.
    segment_by : str, optional
        A column of ``X`` to report fidelity per value of (numeric columns: per quartile).
    random_state : int, numpy Generator or None
        Seed of the held-out split (and of tree tie-breaking).

    Attributes
    ----------
    estimator_ : DecisionTreeRegressor, DecisionTreeClassifier, LinearRegression or LogisticRegression
        The fitted scikit-learn model, on ``encoder_``'s columns.
    encoder_ : ColumnTransformer
    fidelity_ : Fidelity
    rules_ : list of str
        One readable rule per leaf (trees), or the fitted equation (linear).
    low_fidelity_ : bool
    train_indices_, test_indices_ : int arrays
        Positions in ``X`` of the rows fitted and held out.
    """

    def __init__(
        self,
        kind: Literal["tree", "linear"] = "tree",
        max_depth: int = 3,
        max_features: int | None = None,
        *,
        task: Literal["regression", "classification"] = "regression",
        output: str | None = None,
        test_size: float = 0.25,
        min_fidelity: float = 0.8,
        on_low_fidelity: Literal["raise", "flag"] = "raise",
        segment_by: str | None = None,
        random_state: Any = None,
    ) -> None:
        self.kind = kind
        self.max_depth = max_depth
        self.max_features = max_features
        self.task = task
        self.output = output
        self.test_size = test_size
        self.min_fidelity = min_fidelity
        self.on_low_fidelity = on_low_fidelity
        self.segment_by = segment_by
        self.random_state = random_state

    # -- scikit-learn plumbing ---------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        if self.task == "classification":
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(poor_score=True, multi_class=True)
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags(poor_score=True)
            tags.target_tags.multi_output = True
        tags.target_tags.required = True
        # A surrogate is shallow on purpose: it is judged by its held-out fidelity.
        return tags

    def _validate_params(self) -> None:
        if self.kind not in ("tree", "linear"):
            raise ConfigurationError(f"kind must be 'tree' or 'linear', got {self.kind!r}")
        if self.task not in ("regression", "classification"):
            raise ConfigurationError(
                f"task must be 'regression' or 'classification', got {self.task!r}"
            )
        check_int("max_depth", self.max_depth)
        check_optional_int("max_features", self.max_features)
        if not (isinstance(self.test_size, float | int) and 0 < self.test_size < 1):
            raise ConfigurationError(f"test_size must be in (0, 1), got {self.test_size!r}")
        if self.on_low_fidelity not in ("raise", "flag"):
            raise ConfigurationError(
                f"on_low_fidelity must be 'raise' or 'flag', got {self.on_low_fidelity!r}"
            )

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> GlobalSurrogate:
        """Fit to a black box's outputs: ``fit(model, X)``, or ``fit(X, y)`` given the outputs.

        Parameters
        ----------
        X : Model, or DataFrame / array of shape (n_samples, n_features)
        y : DataFrame / array of shape (n_samples, n_features) when ``X`` is a model, else the
            outputs: shape (n_samples,) or (n_samples, n_outputs) for scores, class labels of
            shape (n_samples,) for classes.
        """
        from sklearn.model_selection import train_test_split

        self._validate_params()
        if isinstance(X, Model):
            frame, target, names = self._from_model(X, y)
        else:
            frame, target, names = self._from_data(X, y)
        seed = resolve_seed(self.random_state) % 2**32
        n = len(frame)
        train, test = train_test_split(np.arange(n), test_size=self.test_size, random_state=seed)
        self.train_indices_, self.test_indices_ = np.sort(train), np.sort(test)
        self.output_names_ = names
        columns = list(frame.columns)
        estimator = self._fit_on(frame, target, columns, seed)
        if self.max_features is not None and len(columns) > self.max_features:
            importance = self._column_importance(estimator, frame, columns)
            keep = [columns[j] for j in np.argsort(-importance, kind="stable")[: self.max_features]]
            columns = [c for c in columns if c in keep]
            estimator = self._fit_on(frame, target, columns, seed)
        self.used_columns_ = columns
        self.estimator_ = estimator
        self.fidelity_ = self._fidelity(frame, target)
        self.rules_ = self._rules()
        self.low_fidelity_ = not (self.fidelity_.value >= self.min_fidelity)
        if self.low_fidelity_:
            message = (
                f"held-out {self.fidelity_.metric} of the surrogate is {self.fidelity_.value:.3g}, "
                f"below min_fidelity={self.min_fidelity} ({self.fidelity_.n_test} held-out rows); "
                "it does not describe the model well enough to be read as its explanation"
            )
            if self.on_low_fidelity == "raise":
                raise LowFidelityError(message, self.fidelity_)
            logger.warning(message)
        return self

    def _from_model(self, model: Model, X: Any) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        if X is None:
            raise ConfigurationError("fit(model, X) needs the rows X to fit on")
        frame = as_frame(X, model.feature_names).loc[:, model.feature_names].reset_index(drop=True)
        out = model.predict(frame)
        names = list(model.output_names)
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        if self.task == "classification":
            # Outputs named "probability[good]" stand for the class "good".
            classes = [
                n[n.index("[") + 1 : -1] if n.endswith("]") and "[" in n else n for n in names
            ]
            labels = np.asarray(classes, dtype=object)[np.argmax(out, axis=1)]
            return frame, labels, classes
        if self.output is not None:
            if self.output not in names:
                raise ConfigurationError(f"output {self.output!r} is not one of {names}")
            j = names.index(self.output)
            return frame, out[:, j], [self.output]
        return frame, (out[:, 0] if out.shape[1] == 1 else out), names

    def _from_data(self, X: Any, y: Any) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import column_or_1d, validate_data

        if y is None:
            raise ConfigurationError(
                f"{type(self).__name__} requires y to be passed, but the target y is None "
                "(fit(model, X) computes it from a model)"
            )
        classify = self.task == "classification"
        if isinstance(X, pd.DataFrame) and not all(
            pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
            for c in X.columns
        ):
            frame = X.reset_index(drop=True)
            self.n_features_in_ = frame.shape[1]
            self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
            frame.columns = list(self.feature_names_in_)
            target = np.asarray(y)
            if len(target) != len(frame):
                raise ConfigurationError(f"X has {len(frame)} rows but y has {len(target)}")
        else:
            X_arr, target = validate_data(
                self, X, y, multi_output=not classify, y_numeric=not classify
            )
            names = getattr(self, "feature_names_in_", None)
            columns = [str(c) for c in names] if names is not None else None
            frame = pd.DataFrame(X_arr, columns=columns or [f"x{j}" for j in range(X_arr.shape[1])])
        if classify:
            target = column_or_1d(target, warn=True)
            check_classification_targets(target)
            self.classes_ = np.unique(target)
            return frame, target, [str(c) for c in self.classes_]
        target = np.asarray(target, dtype=np.float64)
        k = 1 if target.ndim == 1 else target.shape[1]
        return frame, target, ["output"] if k == 1 else [f"output[{j}]" for j in range(k)]

    def _fit_on(
        self, frame: pd.DataFrame, target: np.ndarray, columns: list[str], seed: int
    ) -> Any:
        from sklearn.linear_model import LinearRegression, LogisticRegression
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        self.encoder_, self.categorical_ = encoder_for(
            frame.loc[:, columns], scale=self.kind == "linear"
        )
        rows = self.train_indices_
        Z = self.encoder_.fit_transform(frame.iloc[rows].loc[:, columns])
        t = target[rows]
        if self.task == "classification":
            model: Any = (
                DecisionTreeClassifier(max_depth=self.max_depth, random_state=seed)
                if self.kind == "tree"
                else LogisticRegression(max_iter=5000)
            )
            if self.kind == "tree" or len(np.unique(t)) > 1:
                model.fit(Z, t)
            else:
                raise ConfigurationError(
                    "the fitted rows hold a single class; a linear surrogate needs two"
                )
            if not hasattr(self, "classes_") or self.kind == "tree":
                self.classes_ = model.classes_
            return model
        model = (
            DecisionTreeRegressor(max_depth=self.max_depth, random_state=seed)
            if self.kind == "tree"
            else LinearRegression()
        )
        return model.fit(Z, t)

    def _column_importance(
        self, estimator: Any, frame: pd.DataFrame, columns: list[str]
    ) -> np.ndarray:
        raw = (
            estimator.feature_importances_
            if self.kind == "tree"
            else np.abs(np.atleast_2d(estimator.coef_)).sum(axis=0)
        )
        owners = self._owners(columns)
        return np.array([raw[owners == j].sum() for j in range(len(columns))])

    def _owners(self, columns: list[str]) -> np.ndarray:
        """For each encoded column, the position of its input column."""
        owners: list[int] = []
        for name, _, cols in self.encoder_.transformers_:
            if name == "num":
                owners.extend(columns.index(c) for c in cols)
            elif name == "cat":
                cats = self.encoder_.named_transformers_["cat"].categories_
                for c, values in zip(cols, cats, strict=True):
                    owners.extend([columns.index(c)] * len(values))
        return np.asarray(owners)

    # -- using it ----------------------------------------------------------------------------
    def _encode(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "estimator_")
        if self.categorical_ or (isinstance(X, pd.DataFrame) and not self._numeric_frame(X)):
            frame = as_frame(X, list(self.feature_names_in_))
        else:
            arr = validate_data(self, X, reset=False)
            frame = pd.DataFrame(arr, columns=self._column_names())
        return np.asarray(self.encoder_.transform(frame.loc[:, self.used_columns_]))

    @staticmethod
    def _numeric_frame(X: pd.DataFrame) -> bool:
        return all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns)

    def _column_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        return (
            [str(c) for c in names]
            if names is not None
            else [f"x{j}" for j in range(self.n_features_in_)]
        )

    def predict(self, X: Any) -> np.ndarray:
        """The surrogate's prediction for rows ``X`` (shape ``(n_samples, n_features)``)."""
        Z = self._encode(X)
        return np.asarray(self.estimator_.predict(Z))

    @available_if(lambda self: self.task == "classification")
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of a classification surrogate, shape ``(n_samples, n_classes)``."""
        Z = self._encode(X)
        return np.asarray(self.estimator_.predict_proba(Z))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² (scores) or accuracy (classes) of the surrogate against ``y``."""
        from sklearn.metrics import accuracy_score, r2_score

        pred = self.predict(X)
        if self.task == "classification":
            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def apply(self, X: Any) -> np.ndarray:
        """Leaf index of each row (tree surrogates)."""
        if self.kind != "tree":
            raise AttributeError("apply is only available with kind='tree'")
        Z = self._encode(X)
        return np.asarray(self.estimator_.apply(Z))

    # -- fidelity and rules ------------------------------------------------------------------
    def _fidelity(self, frame: pd.DataFrame, target: np.ndarray) -> Fidelity:
        test = self.test_indices_
        held = frame.iloc[test]
        Z = self.encoder_.transform(held.loc[:, self.used_columns_])
        truth = target[test]
        classify = self.task == "classification"
        pred = self.estimator_.predict(Z)
        proba = self.estimator_.predict_proba(Z) if classify else None
        scores = metrics(
            truth, pred, proba, self.classes_ if classify else None, self.output_names_
        )
        headline = "accuracy" if classify else "r2"
        value = scores[headline]
        by_leaf = None
        if self.kind == "tree":
            leaves = self.estimator_.apply(Z)
            rules = dict(leaf_rules(self.estimator_, self._encoded_names(), self.categorical_))
            by_leaf = segment_table(
                "leaf",
                leaves,
                truth,
                pred,
                proba,
                self.classes_ if classify else None,
                self.output_names_,
            )
            by_leaf.insert(1, "rule", [rules.get(int(v), "") for v in by_leaf["leaf"]])
            # Within a leaf the surrogate's prediction is constant: ranking (AUC) and R² there
            # say nothing about it, the error does.
            by_leaf = by_leaf.drop(columns=[c for c in ("auc", "r2") if c in by_leaf.columns])
        by_segment = None
        if self.segment_by is not None:
            if self.segment_by not in frame.columns:
                raise ConfigurationError(
                    f"segment_by={self.segment_by!r} is not a column of X: {list(frame.columns)}"
                )
            col = held[self.segment_by]
            if pd.api.types.is_numeric_dtype(col) and col.nunique() > 8:
                keys = pd.qcut(col, 4, duplicates="drop").astype(str).to_numpy()
            else:
                keys = col.astype(str).to_numpy()
            by_segment = segment_table(
                self.segment_by,
                keys,
                truth,
                pred,
                proba,
                self.classes_ if classify else None,
                self.output_names_,
            )
        return Fidelity(
            headline,
            float("nan") if value is None else float(value),
            scores,
            len(self.train_indices_),
            len(test),
            by_leaf,
            by_segment,
        )

    def _encoded_names(self) -> list[str]:
        return [str(n) for n in self.encoder_.get_feature_names_out()]

    def _rules(self) -> list[str]:
        names = self._encoded_names()
        if self.kind == "tree":
            return [rule for _, rule in leaf_rules(self.estimator_, names, self.categorical_)]
        return [linear_rule(self.estimator_, names, self.output_names_, self.task)]
