"""The FastAPI application: routes, authentication, limits and error answers.

``create_app(settings)`` loads everything (or takes a loaded :class:`Engine`) and returns the
app; ``sxai serve`` runs it on uvicorn. The interactive docs pages (/docs, /redoc) are turned
off because they load their scripts from a CDN; ``/openapi.json`` is served and works with any
local OpenAPI viewer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..audit import ReplayResult
from ..exceptions import (
    AuditError,
    BudgetExceededError,
    ConfigurationError,
    InputError,
    ModelError,
    RecordNotFoundError,
    ReplayRefusedError,
    SurrogateXAIError,
    TamperedRecordError,
)
from ..numbers import finite_or_none, nan_to_none
from .access_log import AccessLogMiddleware
from .auth import BearerAuthMiddleware, bearer_auth
from .engine import Engine, ExplainJob, ExplainResult, NoStoreError
from .limits import BodyLimitMiddleware
from .rows import RequestFieldsError
from .schemas import (
    ErrorOut,
    ExplainRequest,
    ExplainResponse,
    Health,
    ModelInfo,
    ReplayResponse,
    ValidationErrorOut,
)
from .settings import ServiceSettings

logger = logging.getLogger(__name__)

#: Record ids are UUIDs; anything else is refused before the store is asked.
RECORD_ID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
RecordId = Annotated[str, Path(pattern=RECORD_ID, description="An id from record_ids.")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A body that cannot be decoded (e.g. not UTF-8)."},
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    413: {"model": ErrorOut, "description": "Body or row count over the service's limits."},
    422: {"model": ValidationErrorOut, "description": "Fields that cannot be used, located."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such record, or the service has no store."},
    409: {"model": ErrorOut, "description": "The record fails its hash or cannot be replayed."},
}


def printable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) as ``\\udXXX`` escapes.

    Error answers quote what the client sent (a column name, an id); JSON from a client may
    hold lone surrogates (``"\\ud800"``), which no UTF-8 answer can carry.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(str(k)): _printable(v) for k, v in value.items()}
    return value


class ErrorResponse(JSONResponse):
    """A JSON error answer that can always be encoded, whatever the request held."""

    def render(self, content: Any) -> bytes:
        return super().render(_printable(content))


def explain_response(result: ExplainResult) -> ExplainResponse:
    """The JSON answer for an explained batch (no timestamps, so the same request and seed
    give byte-identical explanations)."""
    exp = result.explanation
    diag, prov = exp.diagnostics, exp.provenance
    rows = [
        {
            "row": i,
            "prediction": diag.predictions[i].tolist(),
            "base_values": exp.base_values[i].tolist(),
            "values": exp.values[i].tolist(),
            "stderr": nan_to_none(exp.stderr[i]),
            "efficiency_gap": diag.efficiency_gap[i].tolist(),
            "model_evaluations": int(diag.model_evaluations[i]),
            "converged": bool(diag.converged[i]),
            "reasons": result.reasons[i].to_dict(),
            "decision": None if result.decisions is None else result.decisions[i],
        }
        for i in range(len(exp))
    ]
    return ExplainResponse.model_validate(
        {
            "feature_names": exp.feature_names,
            "output_names": exp.output_names,
            "method": prov.method,
            "seed": prov.seed,
            "parameters": prov.parameters,
            "exact": bool(diag.exact),
            "model": str(prov.model.get("identity")),
            "background": str(prov.background.get("hash")),
            "threshold": result.threshold,
            "explanations": rows,
            "record_ids": result.record_ids,
        }
    )


def _replay_response(result: ReplayResult) -> ReplayResponse:
    return ReplayResponse(
        record_id=result.record_id,
        identical=result.identical,
        max_abs_diff=finite_or_none(result.max_abs_diff),
        differences={k: finite_or_none(v) for k, v in result.differences.items()},
        method=result.method,
        notes=list(result.notes),
    )


def _field_errors(loc: list[str | int], msg: str, kind: str) -> JSONResponse:
    return ErrorResponse(
        status_code=422, content={"detail": [{"loc": loc, "msg": msg, "type": kind}]}
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default answer echoes the input, which may hold NaN (not JSON) or a
        # large body; the location, message and type are what a client needs.
        detail = [
            {
                "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        return ErrorResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return ErrorResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
        )

    @app.exception_handler(SurrogateXAIError)
    async def _library(_request: Request, exc: SurrogateXAIError) -> JSONResponse:
        if isinstance(exc, RequestFieldsError):
            return ErrorResponse(
                status_code=422, content={"detail": [e.to_dict() for e in exc.errors]}
            )
        if isinstance(exc, InputError | ModelError):
            # The library's message names the column and the row.
            return _field_errors(["body", "rows"], str(exc), type(exc).__name__)
        if isinstance(exc, BudgetExceededError):
            return _field_errors(["body", "max_evals"], str(exc), type(exc).__name__)
        if isinstance(exc, ConfigurationError):
            # Parameters are checked up front and located (Engine.explain); this is a second
            # line for a parameter check the engine does not know about.
            return _field_errors(["body"], str(exc), type(exc).__name__)
        if isinstance(exc, RecordNotFoundError | NoStoreError):
            return ErrorResponse(status_code=404, content={"detail": str(exc)})
        if isinstance(exc, TamperedRecordError | ReplayRefusedError):
            return ErrorResponse(status_code=409, content={"detail": str(exc)})
        if isinstance(exc, AuditError):
            logger.error("audit store failure: %s", exc)
            return ErrorResponse(
                status_code=503, content={"detail": f"the audit store failed: {exc}"}
            )
        logger.exception("unexpected library error", exc_info=exc)
        return ErrorResponse(status_code=500, content={"detail": "internal error"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return ErrorResponse(status_code=500, content={"detail": "internal error"})


def create_app(settings: ServiceSettings, *, engine: Engine | None = None) -> FastAPI:
    """The service for ``settings``; loads the model, background, catalogue and store now.

    Parameters
    ----------
    settings : ServiceSettings
    engine : Engine, optional
        An engine already loaded from ``settings`` (``sxai serve`` loads it first, to report
        bad inputs before the server starts).
    """
    engine = engine if engine is not None else Engine.load(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()

    from .. import __version__

    app = FastAPI(
        title="surrogate-xai",
        version=__version__,
        summary="Per-decision Shapley explanations, reason codes and audit records.",
        docs_url=None,  # both pages load their scripts from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    # The last middleware added runs first: the key is checked before the body limit, so an
    # unauthenticated request gets 401 before a byte of its body is read (413 and JSON
    # errors are for authenticated clients only).
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.auth:
        app.add_middleware(BearerAuthMiddleware, keys=settings.api_keys)
    # Outermost: every answer is logged, the 401s of the key check included.
    app.add_middleware(AccessLogMiddleware)
    _install_error_handlers(app)
    guard = [Depends(bearer_auth(settings.api_keys))] if settings.auth else []
    errors = _ERRORS if settings.auth else {k: v for k, v in _ERRORS.items() if k != 401}

    @app.get("/healthz", tags=["service"])
    async def healthz() -> Health:
        """Liveness: answers at once, even while explanations run."""
        return Health(status="ok", in_flight=engine.in_flight)

    @app.get("/v1/model", tags=["model"], dependencies=guard, responses=errors)
    async def model_info() -> ModelInfo:
        """The model's identity, columns (kinds, known categories), outputs, and the limits."""
        return ModelInfo.model_validate(engine.describe())

    @app.post("/v1/explanations", tags=["explanations"], dependencies=guard, responses=errors)
    async def explain(body: ExplainRequest) -> ExplainResponse:
        """Explain rows: attributions with standard errors and principal reasons per row,
        and (with a store) one audit record per row."""
        if len(body.rows) > settings.max_rows:
            raise HTTPException(
                status_code=413,
                detail=f"{len(body.rows)} rows is over this service's limit of "
                f"{settings.max_rows} rows per request",
            )
        job = ExplainJob(
            rows=body.rows,
            method=body.method or settings.method,
            seed=settings.seed if body.seed is None else body.seed,
            max_evals=settings.max_evals if body.max_evals is None else body.max_evals,
            n_reasons=body.n_reasons,
            adverse=body.adverse,
            output=body.output,
            exclude=body.exclude,
            decision_ids=body.decision_ids,
            threshold=body.threshold,
        )
        result = await engine.run(engine.explain, job)
        return explain_response(result)

    @app.get(
        "/v1/explanations/{record_id}",
        tags=["explanations"],
        dependencies=guard,
        responses={**errors, **_NOT_FOUND},
    )
    async def get_record(record_id: RecordId) -> dict[str, Any]:
        """The stored audit record (checked against its hash)."""
        return await engine.run(engine.get_record, record_id)

    @app.post(
        "/v1/explanations/{record_id}/replay",
        tags=["explanations"],
        dependencies=guard,
        responses={**errors, **_NOT_FOUND},
    )
    async def replay(record_id: RecordId) -> ReplayResponse:
        """Re-run the record's explanation with the loaded model and background, and compare
        bit for bit."""
        return _replay_response(await engine.run(engine.replay, record_id))

    return app
