"""``--config file.yaml``: every option of a command, validated by a pydantic model.

A config file holds the same options as the command line (``max_evals`` or ``max-evals``);
options given on the command line win. Unknown keys are rejected by name, and a value of the
wrong type names its field. Relative paths in the file are relative to the file's folder, so
a config and its data can move together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import typer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ..decisions import NEUTRAL, Framing
from ..exceptions import ConfigurationError, InputError

#: The largest seed, the same bound as the service's (a numpy seed is any integer >= 0, but a
#: seed is also written into JSON records and read back by other tools as a 64-bit integer).
MAX_SEED = 2**63 - 1
#: Model rows per explained row, at most: far above any useful budget, low enough that a typo
#: (``max_evals: 1e23``) is refused instead of running without a bound.
MAX_EVALS_LIMIT = 100_000_000
#: Neighbourhood samples per row for lime/local, at most (for the same reason).
MAX_SAMPLES_LIMIT = 10_000_000

# Integers and booleans are strict: in lax mode pydantic takes ``seed: true`` as 1 and
# ``max_evals: 1e3`` as 1000; a config file should say what it means.
Adverse = Literal["increase", "decrease"]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Fields holding file paths (resolved against the config file's folder).
    PATHS: ClassVar[tuple[str, ...]] = ()


#: Words a report shows: a subject noun or an outcome label is short, one line of text.
Words = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[^\n\r\t]*\S[^\n\r\t]*$")]


class _DecisionSettings(_Settings):
    """The options ``sxai explain`` and ``sxai audit`` share: a model, rows, a reference, and
    the decision made on one output (only with a threshold), and the words it is told in."""

    model: Path | None = None
    data: Path | None = None
    background: Path | None = None
    seed: StrictInt = Field(0, ge=0, le=MAX_SEED)
    output: str | None = None
    score: str | None = None
    # No threshold, no decision: a regression or a multiclass model has no natural cut-off,
    # and a decision nobody asked for ("variable <= 0.5 is declined") is worse than none.
    threshold: float | None = None
    adverse: Adverse = "decrease"
    catalogue: Path | None = None
    parity: Path | None = None
    tol: float | None = None
    subject: Words = NEUTRAL.subject
    adverse_label: Words = NEUTRAL.adverse
    favourable_label: Words = NEUTRAL.favourable
    #: Names to show for features and outputs in reports (config file only).
    display_names: dict[Words, Words] = Field(default_factory=dict)
    quiet: StrictBool = False

    PATHS: ClassVar[tuple[str, ...]] = ("model", "data", "background", "catalogue", "parity")

    @field_validator("threshold", "tol", mode="before")
    @classmethod
    def _number(cls, v: object) -> object:
        if isinstance(v, bool):  # lax mode would take true as 1.0
            raise ValueError("must be a number, not a boolean")
        return v

    @field_validator("threshold", "tol")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and (v != v or v in (float("inf"), float("-inf"))):
            raise ValueError("must be a finite number")
        return v

    @field_validator("tol")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError("must be a positive number (the largest standard error allowed)")
        return v

    @model_validator(mode="after")
    def _distinct_labels(self) -> _DecisionSettings:
        if self.adverse_label == self.favourable_label:
            raise ValueError(
                f"adverse_label and favourable_label are both {self.adverse_label!r}; the two "
                "outcomes need different labels"
            )
        return self

    def framing(self) -> Framing:
        """The words of the decision (see :class:`~surrogate_xai.decisions.Framing`)."""
        return Framing(self.subject, self.adverse_label, self.favourable_label)


class _EndpointSettings(_Settings):
    """Options of a model server given with ``--endpoint`` instead of an ONNX file."""

    endpoint: str | None = None
    protocol: str = "json"
    protocol_option: list[str] = Field(default_factory=list)
    output_names: str | None = None
    header_file: Path | None = None
    model_id: str | None = None
    max_requests: StrictInt | None = Field(None, ge=0)
    max_rows: StrictInt | None = Field(None, ge=0)
    batch_rows: StrictInt = Field(256, ge=1)
    timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    rate_limit: float | None = Field(None, gt=0, allow_inf_nan=False)
    max_retries: StrictInt = Field(3, ge=0)

    PATHS: ClassVar[tuple[str, ...]] = ("header_file",)

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, v: str) -> str:
        from ..adapters.wire import PROTOCOLS  # the one list of wire formats

        if v not in PROTOCOLS:
            raise ValueError(f"must be one of {', '.join(PROTOCOLS)}")
        return v

    @field_validator("timeout", "rate_limit", mode="before")
    @classmethod
    def _no_boolean(cls, v: object) -> object:
        if isinstance(v, bool):  # lax mode would take true as 1.0
            raise ValueError("must be a number, not a boolean")
        return v


class ExplainSettings(_EndpointSettings, _DecisionSettings):
    """Every option of ``sxai explain`` (see ``sxai explain --help``)."""

    method: str = "kernelshap"
    max_evals: StrictInt = Field(20_000, ge=3, le=MAX_EVALS_LIMIT)
    n_samples: StrictInt = Field(5_000, ge=10, le=MAX_SAMPLES_LIMIT)
    n_reasons: StrictInt = Field(4, ge=1)
    exclude: list[str] = Field(default_factory=list)
    id_column: str | None = None
    out: Path | None = None
    report_dir: Path | None = None
    store: str | None = None
    dask: str | None = None

    PATHS: ClassVar[tuple[str, ...]] = (
        *_DecisionSettings.PATHS,
        *_EndpointSettings.PATHS,
        "out",
        "report_dir",
        "store",
    )

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        # The estimator registry decides which names exist; explain runs in partitions, so
        # only methods whose rows are independent of each other are offered.
        from ..explainers import registry

        try:
            registry.get(v, row_independent=True)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("dask")
    @classmethod
    def _dask_spec(cls, v: str | None) -> str | None:
        # Checked with the other options, before any model work (batch.dask_client checks
        # it again when it connects).
        # local:0 is refused here, not after the inputs are read and the explainer fitted;
        # an IPv6 scheduler is written in brackets (tcp://[::1]:8786).
        host = r"(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+)"
        if v is not None and not re.fullmatch(rf"local:[1-9]\d*|(tcp|tls)://{host}:\d+", v.strip()):
            raise ValueError(
                "must be 'local:N' (N >= 1) or a scheduler address like 'tcp://host:8786'"
            )
        return v


class AuditSettings(_DecisionSettings):
    """Every option of ``sxai audit`` (see ``sxai audit --help``)."""

    target: str | None = None
    report: Path | None = None
    n_explain: StrictInt = Field(50, ge=1)
    background_rows: StrictInt = Field(100, ge=1)
    #: None: the audit's own default budget (``model_audit.DEFAULT_MAX_EVALS``).
    max_evals: StrictInt | None = Field(None, ge=3, le=MAX_EVALS_LIMIT)
    surrogate: Literal["tree", "linear"] = "tree"
    surrogate_depth: StrictInt = Field(3, ge=1, le=12)

    PATHS: ClassVar[tuple[str, ...]] = (*_DecisionSettings.PATHS, "report")


def validation_message(exc: ValidationError, source: str) -> str:
    """The first problem pydantic found, naming the field (or the unknown key)."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    if not field:  # a check of several options together
        return f"{source}: {str(err['msg']).removeprefix('Value error, ')}"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown option {field!r}"
    return f"{source}: option {field!r}: {err['msg']}"


def read_config(path: Path, settings: type[_Settings]) -> dict[str, Any]:
    """The options in a YAML file, keys normalised (``max-evals`` → ``max_evals``), paths
    resolved against the file's folder. Values are validated later, with the command line."""
    import yaml

    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigurationError(f"{path} is not valid YAML{where}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path} must hold a mapping of option: value, not a {type(data).__name__}"
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        # A store is a path only when it is not a URL (``sqlite:///...`` stays as written).
        if name in settings.PATHS and isinstance(value, str) and "://" not in value:
            value = str(path.parent / Path(value).expanduser())
        out[name] = value
    return out


def resolve(
    settings: type[_Settings],
    ctx: typer.Context,
    given: dict[str, Any],
    config: Path | None,
) -> Any:
    """The settings for one run: the config file's values, overridden by the options the user
    actually typed (an option left at its default does not override the file)."""
    from_file = read_config(config, settings) if config is not None else {}
    typed = {}
    for name, value in given.items():
        # Compared by name: typer ships its own copy of click's ParameterSource enum.
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            typed[name] = value
    try:
        return settings.model_validate({**from_file, **typed})
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        from_cli = bool(first) and first[0] in typed
        where = str(config) if config is not None and not from_cli else "the options"
        raise ConfigurationError(validation_message(exc, where)) from exc


def default(settings: type[_Settings], name: str) -> Any:
    """The default of one option (shown in ``--help``, from the one place it is defined)."""
    field = settings.model_fields[name]
    return field.get_default(call_default_factory=True)
