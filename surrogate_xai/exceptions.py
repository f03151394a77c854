"""One exception hierarchy for everything surrogate-xai raises on purpose.

Every error a user can cause derives from :class:`SurrogateXAIError`, so a caller (the CLI,
the service) can turn it into a one-line message without a traceback. Input errors also derive
from ``ValueError`` and lookups from ``KeyError`` where that is what Python code expects.
"""

from __future__ import annotations


class SurrogateXAIError(Exception):
    """Base class of every error raised deliberately by surrogate-xai."""


class InputError(SurrogateXAIError, ValueError):
    """The data handed to a model or an explainer cannot be used as it is."""


class OutputWriteError(InputError, OSError):
    """An output file could not be written (a full disk, a folder that is not writable); the
    path is named and nothing half-written is left. Also an ``OSError``, as any failed write."""


class MissingColumnError(InputError):
    """A column the model needs is absent from the input."""

    def __init__(self, missing: list[str], available: list[str]) -> None:
        self.missing = missing
        shown = ", ".join(repr(c) for c in available[:12])
        more = f" and {len(available) - 12} more" if len(available) > 12 else ""
        super().__init__(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"the input has {shown or 'no columns'}{more}"
        )


class NonFiniteInputError(InputError):
    """NaN or infinity where the model cannot take it."""


class InvalidValueError(InputError):
    """A value of the wrong kind, e.g. text in a numeric column."""


class UnknownCategoryError(InputError):
    """A categorical value the model was not built with."""


class ModelError(SurrogateXAIError):
    """The model could not be loaded or evaluated."""


class ModelLoadError(ModelError):
    """The model file or bytes are not a usable model (e.g. not ONNX)."""


class ModelEvaluationError(ModelError):
    """The model raised while predicting."""


class RemoteModelError(ModelEvaluationError):
    """A remote model could not be queried: an error status, a timeout or a lost connection
    (after retries), or an answer that is not a prediction."""


class NonFiniteOutputError(ModelError):
    """The model returned NaN or infinity."""


class OutputShapeError(ModelError):
    """The model returned an array of an unexpected shape."""


class ResourceLimitError(ModelError):
    """A model needs more memory or time than its limits allow (``memory_limit``, ``timeout``).

    Raised before the work where the need is known (declared shapes), else as soon as it
    shows (an output larger than declared, a call running past its deadline).
    """


class ExplainerError(SurrogateXAIError):
    """An explainer was misused or configured inconsistently."""


class NotFittedError(ExplainerError, AttributeError):
    """``explain`` was called before ``fit``."""


class ConfigurationError(ExplainerError, ValueError):
    """A parameter value is invalid or inconsistent with the data."""


class TooManyFeaturesError(ConfigurationError):
    """Exact enumeration over this many features (or groups) was refused."""


class BudgetExceededError(SurrogateXAIError):
    """A model-evaluation or request budget would be exceeded."""


class SerializationError(SurrogateXAIError, ValueError):
    """A serialised explanation is malformed or of an unsupported version."""


class ParityError(SurrogateXAIError):
    """An exported model disagrees with the original beyond tolerance.

    ``report`` holds the :class:`~surrogate_xai.parity.ParityReport` when the comparison ran.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


# -- reason codes and the audit store ---------------------------------------------------------
class CatalogueError(ConfigurationError):
    """A reason-code catalogue is malformed or does not fit the explanation."""


class ReferenceMismatchError(ConfigurationError):
    """The reference population asked for is not the background the explanation used."""


class AuditError(SurrogateXAIError):
    """The audit store could not do what was asked; nothing was written."""


class RecordNotFoundError(AuditError, LookupError):
    """No record with that id is in the store."""


class TamperedRecordError(AuditError):
    """A stored record no longer matches its hash."""


class StoreDamagedError(TamperedRecordError):
    """The store's database cannot be read as it was written (a corrupted page, a truncated
    file): like a tampered record, the evidence fails verification."""


class ReplayRefusedError(AuditError):
    """The model or background given for a replay is not the one the record names."""


class TreeGraphError(ModelLoadError):
    """An ONNX graph whose tree ensemble (or what surrounds it) cannot be followed exactly:
    an unknown split mode or aggregate, a preprocessing node that mixes columns, an output
    that the parsed trees do not reproduce. The message names the node and the reason."""
