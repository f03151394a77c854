"""Request and response bodies of the REST service (pydantic models, hence the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

from ..explainers import registry

#: A cell of a row: a number for a numeric column, a string for a categorical one; null (or
#: NaN) only where the model accepts missing values. Booleans are accepted by the schema so
#: the answer can name the column they were sent for.
Cell = StrictInt | StrictFloat | StrictStr | StrictBool | None

MAX_SEED = 2**63 - 1


def _enum_of_methods(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", []):
        if option.get("type") == "string":
            option["enum"] = registry.names(service_safe=True)


class ExplainRequest(BaseModel):
    """``POST /v1/explanations``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rows": [{"age": 35, "housing": "own"}],
                    "method": "kernelshap",
                    "seed": 7,
                    "n_reasons": 4,
                }
            ]
        },
    )

    rows: list[dict[str, Cell]] = Field(
        min_length=1,
        description="Rows to explain: one object per row mapping every model column to its "
        "value (GET /v1/model lists the columns). At most the service's max_rows (else 413).",
    )
    method: StrictStr | None = Field(
        None,
        description="Estimator; default: the service's.",
        # Listed when the schema is generated, from the estimator registry.
        json_schema_extra=lambda schema: _enum_of_methods(schema),
    )
    seed: StrictInt | None = Field(
        None, ge=0, le=MAX_SEED, description="Seed of the sampling design; default: the service's."
    )
    n_reasons: StrictInt = Field(4, ge=1, le=20, description="Principal reasons per row, at most.")
    max_evals: StrictInt | None = Field(
        None,
        ge=3,
        description="Model rows per explained row, at most; default and ceiling: the service's.",
    )
    adverse: Literal["decrease", "increase"] = Field(
        "decrease", description="Which direction of `output` is the adverse outcome."
    )
    output: StrictInt | StrictStr = Field(
        0, description="The output (index or name) whose value decides; reasons explain it."
    )
    exclude: list[StrictStr] = Field(
        default_factory=list,
        description="Protected attributes: never given as reasons; flagged when one would "
        "have ranked among them.",
    )
    decision_ids: list[StrictStr] | None = Field(
        None,
        description="The caller's id of each decision, stored with its record; one per row, "
        "no two alike.",
    )
    threshold: StrictFloat | None = Field(
        None,
        allow_inf_nan=False,
        description="Decision threshold on `output`. With it each row is 'declined' or "
        "'approved' by the rule the CLI and reports use ('decrease': declined when "
        "score <= threshold; 'increase': declined when score > threshold), and the decision "
        "is stored as the record's outcome.",
    )

    @field_validator("method")
    @classmethod
    def _offered(cls, v: str | None) -> str | None:
        if v is not None and v not in registry.names(service_safe=True):
            offered = ", ".join(registry.names(service_safe=True))
            raise ValueError(f"{v!r} is not a method this service offers; methods: {offered}")
        return v


class ReasonOut(BaseModel):
    rank: int
    code: str
    text: str
    features: list[str]
    contribution: float
    stderr: float | None
    interval: list[float] | None
    stable: bool | None
    catalogued: bool


class DecisionReasonsOut(BaseModel):
    """The principal reasons of one row (see ``surrogate_xai.DecisionReasons``)."""

    row: int
    reasons: list[ReasonOut]
    output: str
    adverse: str
    n: int
    z: float
    prediction: float
    base_value: float
    catalogue: dict[str, Any] | None
    reference: dict[str, Any]
    excluded: list[str]
    suppressed: list[str]
    flags: list[str]
    source_sha256: str


class RowExplanation(BaseModel):
    """One explained row. Arrays are indexed like ``feature_names`` × ``output_names``."""

    row: int
    prediction: list[float] = Field(description="The model's output, per output.")
    base_values: list[float] = Field(description="The background's mean output, per output.")
    values: list[list[float]] = Field(
        description="Attributions, shape (n_features, n_outputs); they sum to prediction - "
        "base_values up to efficiency_gap."
    )
    stderr: list[list[float | None]] = Field(
        description="Standard errors, same shape (0 where exact)."
    )
    efficiency_gap: list[float]
    model_evaluations: int
    converged: bool
    reasons: DecisionReasonsOut
    decision: Literal["declined", "approved"] | None = Field(
        description="The decision at the request's threshold; null without one."
    )


class ExplainResponse(BaseModel):
    feature_names: list[str]
    output_names: list[str]
    method: str
    seed: int | None
    parameters: dict[str, Any]
    exact: bool
    model: str = Field(description="sha256 of the ONNX bytes.")
    background: str = Field(description="Hash of the background rows and weights.")
    threshold: float | None = Field(description="The request's threshold, if it gave one.")
    explanations: list[RowExplanation]
    record_ids: list[str] | None = Field(
        description="Audit record of each row, in row order; null when the service has no store."
    )


class ReplayResponse(BaseModel):
    record_id: str
    identical: bool
    max_abs_diff: float | None = Field(
        description="Largest absolute difference; null when the shapes differ."
    )
    differences: dict[str, float | None]
    method: str
    notes: list[str]


class ModelInfo(BaseModel):
    identity: str
    feature_names: list[str]
    feature_kinds: dict[str, str]
    known_categories: dict[str, list[str]]
    allow_missing: bool
    output_names: list[str]
    description: dict[str, Any]
    background: dict[str, Any]
    catalogue: dict[str, Any] | None
    store: bool
    methods: list[str]
    defaults: dict[str, Any]
    limits: dict[str, int]


class Health(BaseModel):
    status: Literal["ok"]
    in_flight: int = Field(description="Explanation jobs running or queued.")


class ErrorOut(BaseModel):
    """Errors other than validation: 401, 404, 409, 413, 503."""

    detail: str


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: every problem, each located (``["body", "rows", 3, "age"]``)."""

    detail: list[FieldErrorOut]
