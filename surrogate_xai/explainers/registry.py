"""The one list of estimators: names, classes and what each can be used for.

Every surface reads this list instead of keeping its own: ``sxai explain --method``, the
service's ``method`` field, ``AuditStore.replay`` (which class re-runs a record), batch runs
(which methods may be split into partitions) and the conformance tests. Adding an estimator
is its own module plus one :class:`Estimator` line in :data:`BUILTIN` (or a
:func:`register` call for one defined elsewhere).

The tags follow scikit-learn's estimator tags: facts about a method that callers branch on,
declared once where the method is listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from .base import BaseExplainer

#: Which budget option of a surface feeds an estimator: model rows per explained row
#: (``--max-evals``) or neighbourhood samples per row (``--n-samples``).
Budget = Literal["max_evals", "n_samples"]


@dataclass(frozen=True)
class Estimator:
    """One estimator and its tags.

    Attributes
    ----------
    name : str
        The method's name: in provenance and audit records, on the command line and in the
        service (the class's ``method``).
    target : str
        ``"module:Class"``, imported on first use.
    summary : str
        One line for help texts.
    aliases : tuple of str
        Other names accepted on the command line.
    budget : {"max_evals", "n_samples"} or None
        The surface option that sets its budget; None when it takes none (exact methods).
    budget_param : str or None
        The constructor parameter that takes the budget (default: ``budget``).
    seeded : bool
        Takes ``random_state``.
    exact : bool
        Its values are exact (standard error 0), not estimates.
    row_independent : bool
        A row's values do not depend on the other rows explained with it: a record replays
        alone, and a batch may be split into partitions (CLI progress, Dask).
    service_safe : bool
        Offered by the REST service: thread-safe on a shared fitted explainer and budgeted in
        model rows per explained row (``max_evals``).
    efficient : bool
        Its values add up to ``prediction - base value`` for every row (Shapley efficiency);
        a local surrogate's add up to its own prediction instead.
    legacy_params : mapping
        Parameters added after the method's first release, with the value that reproduces
        the earlier behaviour: a record that does not list one was written before it existed
        and is replayed with this value (``AuditStore.replay``).
    """

    name: str
    target: str
    summary: str
    aliases: tuple[str, ...] = ()
    budget: Budget | None = "max_evals"
    budget_param: str | None = None
    seeded: bool = True
    exact: bool = False
    row_independent: bool = True
    service_safe: bool = False
    efficient: bool = True
    legacy_params: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> type[BaseExplainer]:
        """The estimator's class."""
        from .base import BaseExplainer

        module, _, attr = self.target.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"method {self.name!r} is not available: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, BaseExplainer)):
            raise ConfigurationError(f"{self.target} is not an explainer")
        if cls.method != self.name:
            raise ConfigurationError(
                f"{self.target} records itself as {cls.method!r}, not {self.name!r}"
            )
        return cls

    def build(
        self,
        *,
        seed: Any = None,
        max_evals: int | None = None,
        n_samples: int | None = None,
        **params: Any,
    ) -> BaseExplainer:
        """An unfitted explainer with a surface's seed and budget (and any other parameter).

        The budget of the kind this estimator takes is passed on; the other is ignored, so a
        surface can offer both options whatever the method.
        """
        if self.budget is not None:
            value = max_evals if self.budget == "max_evals" else n_samples
            if value is not None:
                params[self.budget_param or self.budget] = value
        if self.seeded and seed is not None:
            params["random_state"] = seed
        return self.load()(**params)


#: The library's estimators, in the order help texts list them.
BUILTIN: tuple[Estimator, ...] = (
    Estimator(
        "kernelshap",
        "surrogate_xai.explainers.kernel:KernelSHAP",
        "Shapley-kernel regression per background row, with standard errors",
        service_safe=True,
        legacy_params={"revision": 1},
    ),
    Estimator(
        "oddkernelshap",
        "surrogate_xai.explainers.odd:OddKernelSHAP",
        "KernelSHAP with a refit of the game's odd part on the 3-way terms its residuals "
        "point to (fewest model rows per unit of error at high budgets)",
        service_safe=True,
    ),
    Estimator(
        "permutation",
        "surrogate_xai.explainers.permutation:PermutationSHAP",
        "antithetic permutation sampling, unbiased, with standard errors",
        service_safe=True,
        legacy_params={"revision": 1},
    ),
    Estimator(
        "exact",
        "surrogate_xai.explainers.exact:ExactSHAP",
        "every coalition enumerated (up to 12 features or groups)",
        budget=None,
        seeded=False,
        exact=True,
        service_safe=True,
    ),
    Estimator(
        "tree",
        "surrogate_xai.explainers.trees:TreeSHAP",
        "exact values read from an ONNX graph's tree ensembles (sampled with a control "
        "variate where the output is not affine in the trees)",
        service_safe=True,
    ),
    Estimator(
        "local-surrogate",
        "surrogate_xai.explainers.local:LocalSurrogate",
        "LIME-style local surrogate with its fidelity",
        aliases=("local",),
        budget="n_samples",
        efficient=False,
    ),
    Estimator(
        "lime",
        "surrogate_xai.explainers.lime_backend:LIME",
        "the lime package, seeded per row",
        budget="n_samples",
        efficient=False,
    ),
    Estimator(
        "shap-kernel",
        "surrogate_xai.explainers.shap_backend:ShapKernel",
        "the shap package's KernelExplainer (rows depend on each other)",
        aliases=("shap",),
        budget="n_samples",
        budget_param="nsamples",
        row_independent=False,
    ),
)

_REGISTRY: dict[str, Estimator] = {}


def register(estimator: Estimator) -> Estimator:
    """Add an estimator (its name and aliases must be new); returns it."""
    taken = [n for n in (estimator.name, *estimator.aliases) if n in _names()]
    if taken:
        raise ConfigurationError(f"method name {taken[0]!r} is already registered")
    _REGISTRY[estimator.name] = estimator
    return estimator


def unregister(name: str) -> None:
    """Remove an estimator added with :func:`register` (the built-in ones stay)."""
    if any(e.name == name for e in BUILTIN):
        raise ConfigurationError(f"{name!r} is a built-in method")
    _REGISTRY.pop(name, None)


def _names() -> dict[str, Estimator]:
    out: dict[str, Estimator] = {}
    for e in estimators():
        out[e.name] = e
        for alias in e.aliases:
            out[alias] = e
    return out


def estimators(**tags: Any) -> Iterator[Estimator]:
    """Every estimator, built-in first; with tags (``service_safe=True``), those that have
    them."""
    for e in (*BUILTIN, *_REGISTRY.values()):
        if all(getattr(e, tag) == wanted for tag, wanted in tags.items()):
            yield e


def names(**tags: Any) -> list[str]:
    """The method names (no aliases) of :func:`estimators` with these tags."""
    return [e.name for e in estimators(**tags)]


def get(name: str, **tags: Any) -> Estimator:
    """The estimator called ``name`` (or an alias), which must have ``tags``.

    Raises
    ------
    ConfigurationError
        Naming the method and the names that would have been accepted.
    """
    found = _names().get(name)
    if found is not None and all(getattr(found, t) == v for t, v in tags.items()):
        return found
    accepted = names(**tags)
    if found is not None:
        return _refuse(name, accepted, "is not offered here")
    return _refuse(name, accepted, "is not a method")


def _refuse(name: str, accepted: list[str], why: str) -> Estimator:
    raise ConfigurationError(f"{name!r} {why}; methods: {', '.join(accepted)}")


def of(explainer: Any) -> Estimator:
    """The registry entry of an explainer instance (by its ``method``)."""
    return get(str(getattr(explainer, "method", "")))
