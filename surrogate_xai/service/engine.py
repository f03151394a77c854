"""The service's shared state: one model session, one background, explainers, the store.

Everything is loaded once at start-up. A request gets an explainer for its (method, seed,
budget) as a shallow copy of the method's fitted explainer with those parameters changed: the
fitted state (the model, the background and its predictions) is shared, never refitted, and
``explain`` does not mutate an explainer, so requests can run on several threads at once
(onnxruntime's ``run`` is thread-safe). Explanations run in a bounded thread pool, off the
event loop, so ``/healthz`` answers while they run.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ..audit import AuditStore, ReplayResult
from ..background import Background
from ..decisions import CREDIT, DecisionPolicy, decide, record
from ..exceptions import AuditError, ConfigurationError
from ..explainers import registry
from ..explainers.base import BaseExplainer
from ..explainers.design_explainer import DesignExplainer, cached_design
from ..explanation import Explanation
from ..model import Model
from ..reasons import DecisionReasons, ReasonCatalogue
from ..tabular import TabularSchema
from .rows import FieldError, RequestFieldsError, decision_id_problems, rows_to_frame, text_problems
from .settings import ServiceSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ExplainJob:
    """One request's work, already checked for shape by the request schema."""

    rows: Sequence[Mapping[str, Any]]
    method: str
    seed: int
    max_evals: int
    n_reasons: int = 4
    adverse: Literal["decrease", "increase"] = "decrease"
    output: int | str = 0
    exclude: Sequence[str] = ()
    decision_ids: Sequence[str] | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class ExplainResult:
    explanation: Explanation
    reasons: list[DecisionReasons]
    record_ids: list[str] | None
    #: Per row, ``"declined"`` or ``"approved"`` at the request's threshold (None without one).
    decisions: list[str] | None = None
    threshold: float | None = None


@dataclass
class Engine:
    """Loaded model, background, catalogue and store, and the fitted explainers.

    Build it with :meth:`load`; :meth:`run` moves blocking work onto the engine's threads.
    """

    settings: ServiceSettings
    model: Model
    background: Background
    catalogue: ReasonCatalogue | None
    store: AuditStore | None
    _fitted: dict[str, BaseExplainer] = field(default_factory=dict)
    _fit_lock: threading.Lock = field(default_factory=threading.Lock)
    # SQLite takes one writer at a time anyway; queueing here keeps writers from spinning on
    # the database's busy timeout.
    _store_lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None
    _in_flight: int = 0

    @classmethod
    def load(cls, settings: ServiceSettings) -> Engine:
        """Load every input named by ``settings`` and fit the default method.

        Raises
        ------
        SurrogateXAIError or OSError
            For a file that is not ONNX, a background that does not fit the model, a malformed
            catalogue or an unusable store URL (the CLI turns these into one-line errors).
        """
        # The shared loaders: messages that name the user's file, column and row.
        from ..inputs import load_catalogue, load_model, read_csv, read_table

        # A single-tensor graph has no column names: the background's header names them (and
        # requests must then use those names), as for `sxai explain`.
        raw = read_csv(settings.background)
        model = load_model(settings.model, columns=[str(c) for c in raw.columns])
        frame = read_table(settings.background, model, "background", frame=raw)
        background = Background(
            frame.loc[:, model.feature_names],
            kind="full",
            details={"source": settings.background.name},
        )
        # A catalogue written for this model: a feature it maps that the model does not have is
        # a typo (``purpos``) that would leave every reason for it unmapped.
        catalogue = (
            None
            if settings.catalogue is None
            else load_catalogue(settings.catalogue, model.feature_names)
        )
        store = None if settings.store is None else AuditStore(settings.store)
        engine = cls(settings, model, background, catalogue, store)
        try:
            engine.fitted(settings.method)
        except Exception:
            engine.close()
            raise
        return engine

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.settings.workers, thread_name_prefix="sxai-explain"
            )
        return self._pool

    def close(self) -> None:
        """Stop the threads (after running work finishes) and release the store."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.store is not None:
            self.store.close()

    @property
    def in_flight(self) -> int:
        """Jobs submitted to the pool and not finished (running or queued)."""
        return self._in_flight

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the engine's threads and await it without blocking the loop."""
        loop = asyncio.get_running_loop()
        self._in_flight += 1  # only touched on the event loop's thread
        try:
            return await loop.run_in_executor(self.pool, fn, *args)
        finally:
            self._in_flight -= 1

    # -- explainers ------------------------------------------------------------------------------
    @property
    def schema(self) -> TabularSchema:
        """Columns, kinds and known categories, as the default method's fit inferred them."""
        return self.fitted(self.settings.method).schema_

    def fitted(self, method: str) -> BaseExplainer:
        """The method's explainer fitted on the shared model and background (once)."""
        with self._fit_lock:
            hit = self._fitted.get(method)
            if hit is None:
                hit = registry.get(method, service_safe=True).build()
                hit.fit(self.model, self.background)
                self._fitted[method] = hit
                logger.info("fitted %s on %d background rows", method, len(self.background))
            return hit

    def explainer(self, method: str, seed: int, max_evals: int) -> BaseExplainer:
        """A copy of the fitted explainer with this request's seed and budget."""
        try:
            base = self.fitted(method)
        except ConfigurationError as exc:
            raise RequestFieldsError([FieldError(("body", "method"), str(exc), "method")]) from exc
        spec = registry.of(base)
        if spec.exact:
            exact_rows = len(self.background) * (2 ** len(base.feature_names_) - 2)
            if exact_rows > max_evals:
                raise RequestFieldsError(
                    [
                        FieldError(
                            ("body", "max_evals"),
                            f"exact enumeration needs {exact_rows:,} model rows per explained "
                            f"row, more than max_evals={max_evals:,}",
                            "budget",
                        )
                    ]
                )
            return base
        # A shallow copy shares the fitted state; set_params only rebinds the copy's own
        # attributes, so the shared explainer is never changed. Service-safe methods take
        # their budget in model rows per explained row (the registry's tag).
        params: dict[str, Any] = {"random_state": seed} if spec.seeded else {}
        if spec.budget == "max_evals":
            params[spec.budget_param or spec.budget] = max_evals
        mine = copy.copy(base).set_params(**params)
        mine.validate_params()
        if not isinstance(mine, DesignExplainer):
            return mine
        try:
            # The design is what explain() would build first (and caches); building it now
            # refuses a budget below one block's cost before any row is checked or evaluated.
            cached_design(mine, len(mine.feature_names_), len(mine.background_), mine.call_seed())
        except ConfigurationError as exc:
            raise RequestFieldsError(
                [FieldError(("body", "max_evals"), str(exc), "budget")]
            ) from exc
        return mine

    # -- work (called on the pool's threads) -----------------------------------------------------
    def explain(self, job: ExplainJob) -> ExplainResult:
        """Check the rows, explain them, find the reasons, and record them (all or nothing).

        Everything the request says is checked before a model row is evaluated: the text of
        every field, the decision ids (which the store must be able to hold), the budget, the
        output, the excluded features and every cell; all problems are reported at once.
        """
        text = text_problems(job.rows, job.decision_ids, job.exclude, job.output)
        if text:
            # Names that cannot be text are not looked up as columns, outputs or ids as well.
            raise RequestFieldsError(text)
        errors = []
        over_limit = job.max_evals > self.settings.max_evals
        if over_limit:
            errors.append(
                FieldError(
                    ("body", "max_evals"),
                    f"max_evals={job.max_evals:,} is over this service's limit of "
                    f"{self.settings.max_evals:,} model rows per explained row",
                    "budget",
                )
            )
        if job.decision_ids is not None and len(job.decision_ids) != len(job.rows):
            errors.append(
                FieldError(
                    ("body", "decision_ids"),
                    f"{len(job.decision_ids)} decision ids for {len(job.rows)} rows",
                    "length",
                )
            )
        if job.decision_ids is not None:
            errors.extend(decision_id_problems(job.decision_ids))
        names = self.model.output_names
        if (isinstance(job.output, int) and not 0 <= job.output < len(names)) or (
            isinstance(job.output, str) and job.output not in names
        ):
            errors.append(
                FieldError(
                    ("body", "output"), f"no output {job.output!r}; outputs: {names}", "output"
                )
            )
        columns = self.schema.columns
        errors.extend(
            FieldError(("body", "exclude", i), f"no feature {name!r} to exclude", "exclude")
            for i, name in enumerate(job.exclude)
            if name not in columns
        )
        explainer: BaseExplainer | None = None
        if not over_limit:
            try:  # the method, and a budget below one block's cost
                explainer = self.explainer(job.method, job.seed, job.max_evals)
            except RequestFieldsError as exc:
                errors.extend(exc.errors)
        try:
            frame = rows_to_frame(job.rows, self.schema, self._input_limits())
        except RequestFieldsError as exc:
            errors.extend(exc.errors)
        if errors or explainer is None:
            raise RequestFieldsError(errors)
        explanation = explainer.explain(frame)
        decided = decide(
            explanation,
            DecisionPolicy(
                output=job.output,
                threshold=job.threshold,
                adverse=job.adverse,
                n_reasons=job.n_reasons,
                exclude=tuple(job.exclude),
                catalogue=self.catalogue,
                # The service's published schema answers "declined" / "approved".
                framing=CREDIT,
            ),
        )
        reasons, decisions = decided.reasons, decided.labels
        record_ids = None
        if self.store is not None:
            with self._store_lock:
                record_ids = record(decided, self.store, job.decision_ids)
        return ExplainResult(explanation, reasons, record_ids, decisions, job.threshold)

    def _input_limits(self) -> dict[str, tuple[float, float]]:
        """The finite range of each numeric column the model's input type can hold."""
        return dict(self.model.input_limits())

    def get_record(self, record_id: str) -> dict[str, Any]:
        return self._store().get(record_id)

    def replay(self, record_id: str) -> ReplayResult:
        return self._store().replay(record_id, self.model, self.background)

    def _store(self) -> AuditStore:
        if self.store is None:
            raise NoStoreError()
        return self.store

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` shows."""
        schema = self.schema
        return {
            "identity": self.model.identity,
            "feature_names": list(schema.columns),
            "feature_kinds": dict(zip(schema.columns, schema.kinds, strict=True)),
            "known_categories": {k: list(v) for k, v in schema.known_categories.items()},
            "allow_missing": schema.allow_missing,
            "output_names": self.model.output_names,
            "description": self.model.describe(),
            "background": self.background.describe(),
            "catalogue": None if self.catalogue is None else self.catalogue.describe(),
            "store": self.store is not None,
            "methods": registry.names(service_safe=True),
            "defaults": {
                "method": self.settings.method,
                "seed": self.settings.seed,
                "max_evals": self.settings.max_evals,
            },
            "limits": {
                "max_rows": self.settings.max_rows,
                "max_body_bytes": self.settings.max_body_bytes,
                "max_evals": self.settings.max_evals,
            },
        }


class NoStoreError(AuditError):
    """The service was started without ``--store``, so it keeps no records."""

    def __init__(self) -> None:
        super().__init__("this service keeps no records (start it with --store URL)")
