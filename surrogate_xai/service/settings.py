"""What the service is started with: its inputs, its limits and its keys."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import ConfigurationError
from ..explainers import registry
from ..validation import check_int

#: Environment variable holding comma-separated API keys.
API_KEYS_ENV = "SXAI_API_KEYS"


@dataclass(frozen=True)
class ServiceSettings:
    """Everything ``create_app`` needs; built by ``sxai serve`` or by hand.

    Parameters
    ----------
    model : path
        The ONNX file, loaded once and shared by every request.
    background : path
        CSV of reference rows (checked against the model's columns).
    catalogue : path, optional
        Reason-code catalogue (YAML).
    store : str, optional
        Audit store URL (e.g. ``sqlite:///audit.db``); one record per explained row.
    api_keys : tuple of str
        Accepted bearer keys. Empty only together with ``auth=False``.
    auth : bool
        Whether ``/v1/*`` needs a key.
    max_rows : int
        Rows per request, at most (more: 413).
    max_body_bytes : int
        Request body size, at most (more: 413, checked before parsing).
    max_evals : int
        Model rows per explained row, at most (a larger ``max_evals`` in a request: 422);
        also the default budget of a request.
    method : str
        Default method.
    seed : int
        Default seed, so that a request without one is reproducible.
    workers : int
        Threads that run explanations; more concurrent requests wait for a free one.
    """

    model: Path
    background: Path
    catalogue: Path | None = None
    store: str | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    auth: bool = True
    max_rows: int = 100
    max_body_bytes: int = 1_000_000
    max_evals: int = 20_000
    method: str = "kernelshap"
    seed: int = 0
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_body_bytes", "workers"):
            check_int(name, getattr(self, name))
        check_int("max_evals", self.max_evals, minimum=3)
        # The service offers the registry's service-safe methods (see explainers.registry).
        registry.get(self.method, service_safe=True)
        check_int("seed", self.seed, minimum=0)
        if self.auth and not self.api_keys:
            raise ConfigurationError(
                f"no API keys: set {API_KEYS_ENV} (comma-separated), pass --api-key-file, "
                "or run without authentication with --no-auth"
            )
        if any(not k or k != k.strip() for k in self.api_keys):
            # Never echo the key itself.
            raise ConfigurationError("an API key is empty or has surrounding whitespace")


def parse_keys(text: str) -> tuple[str, ...]:
    """Keys from comma- or newline-separated text; blanks and ``#`` comment lines skipped."""
    keys: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        keys.extend(part.strip() for part in line.split(","))
    return tuple(k for k in keys if k)


def keys_from(key_file: Path | None, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """Keys from ``key_file`` (if given) plus those in ``$SXAI_API_KEYS``.

    Raises
    ------
    OSError
        If the key file cannot be read.
    ConfigurationError
        If the key file is not UTF-8 text.
    """
    env = os.environ if environ is None else environ
    keys = parse_keys(env.get(API_KEYS_ENV, ""))
    if key_file is not None:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            # A user's file, like a missing one: a one-line error, not a traceback. The bytes
            # themselves are not shown (they may be a key).
            raise ConfigurationError(
                f"{key_file} is not a key file (not UTF-8 text at byte {exc.start})"
            ) from None
        keys += parse_keys(text)
    # Keep the first occurrence of each key; order does not matter for checking.
    return tuple(dict.fromkeys(keys))
