"""A model reachable only as an HTTP prediction endpoint, as a :class:`~surrogate_xai.Model`.

Rows go out as JSON, in batches bounded by rows and bytes, a few requests at a time, spaced by
a rate limit, retried with exponential backoff on 5xx answers, timeouts and lost connections
(never on 4xx), against a hard budget of requests and rows checked *before* each request is
sent. Identical rows are answered from a bounded cache. Header values (credentials) are used
for the requests only: they are never logged, never put in provenance and never shown in an
error message.

Needs the ``http`` extra: ``pip install 'surrogate-xai[http]'``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..exceptions import (
    BudgetExceededError,
    ConfigurationError,
    InputError,
    ModelEvaluationError,
    RemoteModelError,
)
from ..model import DEFAULT_MEMORY_LIMIT, BaseModel

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("HTTPModel needs httpx: pip install 'surrogate-xai[http]'") from exc

logger = logging.getLogger(__name__)

InstanceFormat = Literal["list", "object"]

#: Alias of :class:`~surrogate_xai.exceptions.BudgetExceededError`.
BudgetExceeded = BudgetExceededError

__all__ = [
    "BudgetExceeded",
    "BudgetExceededError",
    "HTTPModel",
    "HTTPStatusError",
    "HTTPTransportError",
    "ResponseFormatError",
]


class HTTPStatusError(RemoteModelError):
    """The endpoint answered an error status: 4xx at once (never retried), 5xx after retries."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HTTPTransportError(RemoteModelError):
    """The endpoint timed out or the connection failed, on every attempt."""


class ResponseFormatError(RemoteModelError):
    """The endpoint answered 2xx with something that is not the expected predictions."""


class _Aborted(Exception):
    """Another request of the same call failed; this one stops without sending."""


def _key_path(key: str, what: str) -> tuple[str, ...]:
    if not isinstance(key, str):
        raise ConfigurationError(f"{what} must be a string like 'predictions' or 'data.scores'")
    parts = tuple(key.split(".")) if key else ()
    if any(not p for p in parts):
        raise ConfigurationError(f"{what}={key!r} has an empty component")
    return parts


def _check_number(
    name: str, value: Any, *, minimum: float, integer: bool, optional: bool = False
) -> None:
    if value is None and optional:
        return
    kinds: tuple[type, ...] = (
        (int, np.integer) if integer else (int, float, np.integer, np.floating)
    )
    is_number = isinstance(value, kinds) and not isinstance(value, bool)
    if not is_number or not value >= minimum:
        kind = "an integer" if integer else "a number"
        none = " or None" if optional else ""
        raise ConfigurationError(f"{name} must be {kind} >= {minimum}{none}, got {value!r}")


class _RowCache:
    """Least-recently-used map from a row's JSON encoding to its predictions."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> np.ndarray | None:
        if self.size == 0:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put_many(self, keys: Sequence[str], values: np.ndarray) -> None:
        if self.size == 0:
            return
        with self._lock:
            for key, value in zip(keys, values, strict=True):
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class _Spacing:
    """At most ``rate`` requests per second: each request waits for its own time slot."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.interval == 0.0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class HTTPModel(BaseModel):
    """A model behind an HTTP JSON endpoint.

    Each request is a ``POST`` of ``{"instances": [row, ...]}`` (by default); the answer must hold
    ``{"predictions": [p, ...]}`` with one number, or one list of ``n_outputs`` numbers, per row.

    Parameters
    ----------
    url : str
        The endpoint (``http`` or ``https``). Credentials in the URL (``user:password@``) are
        taken out of it and sent as a Basic ``Authorization`` header instead.
    feature_names : sequence of str
        The input columns, in the order list-format instances use.
    output_names : sequence of str, optional
        Names of the outputs; default ``["output"]``.
    identity : str, optional
        A stable identifier for provenance, e.g. the served model's version. The default is
        ``"http:" + url`` (without credentials and query), which is *not* content-based: the
        server may change the model behind the same URL.
    client : httpx.Client, optional
        The client to send with (tests pass one bound to a local server or an
        ``httpx.MockTransport``). Without it the model creates its own on first use; close it
        with :meth:`close` or use the model as a context manager. An injected client is the
        caller's to close.
    headers : mapping of str to str, optional
        Sent with every request (e.g. ``{"Authorization": "Bearer ..."}``). Their values are
        never logged, never stored in :meth:`describe` and redacted from error messages.
    instance_format : {"list", "object"}
        A row as a list of values in ``feature_names`` order, or as an object keyed by column.
        Numbers go out as JSON numbers (floats round-trip exactly), strings as strings, NaN as
        ``null``.
    request_key, response_key : str
        Where the rows go in the request and where the predictions are in the answer: a key or
        a dotted path (``"data.scores"``); ``""`` means the body itself is the list.
    batch_rows : int
        Rows per request, at most.
    batch_bytes : int
        Bytes of JSON per request body, at most.
    max_concurrency : int
        Requests in flight at once, across all threads using this model.
    timeout : float or None
        Seconds for each of connect / read / write / pool, per request (overrides the
        client's own timeout); ``None`` waits forever.
    max_retries : int
        Retries of a request after a 5xx answer, a timeout or a connection error. 4xx and
        other statuses are never retried.
    backoff, max_backoff : float
        The wait before retry ``r`` (from 0) is ``min(max_backoff, backoff * 2**r)``, scaled by
        a jitter factor uniform in [0.5, 1).
    rate_limit : float, optional
        Requests per second, at most (retries included); requests are spaced evenly.
    max_requests : int, optional
        Hard budget of requests over the model's lifetime, retries included (each attempt
        reaches the server). A call that needs more than what is left raises
        :class:`~surrogate_xai.exceptions.BudgetExceededError` before sending anything; a retry
        that would exceed it raises the same error instead of being sent.
    max_rows : int, optional
        Hard budget of rows sent over the model's lifetime, retries included. Rows answered
        from the cache are not sent and do not count.
    cache_size : int
        Rows kept in the cache of answers (least recently used dropped first); ``0`` disables
        it. Duplicate rows within one call are always sent once.
    categories : mapping of str to sequence of str, optional
        Categories the model knows for its categorical (string) columns.
    allow_missing : bool
        Whether the endpoint accepts missing numeric values (sent as ``null``).
    random_state : int, numpy Generator or None
        Seed of the backoff jitter (timing only; it never changes a prediction).
    memory_limit : int
        Bytes of input rows handled per internal chunk (see :class:`BaseModel`).

    Notes
    -----
    Predictions come back in row order whatever the batching, concurrency, retries and
    caching, and are the numbers the server sent, so explanations through HTTP equal those of
    the same function called in-process. Counters: :attr:`n_requests` (attempts sent),
    :attr:`n_rows_sent`, :attr:`n_retries`, :attr:`n_cache_hits`; ``n_evaluations`` counts
    every row predicted, cached or not.
    """

    def __init__(
        self,
        url: str,
        feature_names: Sequence[str],
        output_names: Sequence[str] | None = None,
        *,
        identity: str | None = None,
        client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        instance_format: InstanceFormat = "list",
        request_key: str = "instances",
        response_key: str = "predictions",
        batch_rows: int = 256,
        batch_bytes: int = 1_000_000,
        max_concurrency: int = 4,
        timeout: float | None = 10.0,
        max_retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        rate_limit: float | None = None,
        max_requests: int | None = None,
        max_rows: int | None = None,
        cache_size: int = 100_000,
        categories: Mapping[str, Sequence[str]] | None = None,
        allow_missing: bool = False,
        random_state: int | np.random.Generator | None = None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        super().__init__()
        names = [str(c) for c in feature_names]
        if not names:
            raise ConfigurationError("feature_names is empty")
        if len(set(names)) != len(names):
            raise ConfigurationError("feature_names contains duplicates")
        if instance_format not in ("list", "object"):
            raise ConfigurationError(
                f"instance_format must be 'list' or 'object', got {instance_format!r}"
            )
        if client is not None and not isinstance(client, httpx.Client):
            raise ConfigurationError(f"client must be an httpx.Client, got {type(client).__name__}")
        _check_number("batch_rows", batch_rows, minimum=1, integer=True)
        _check_number("batch_bytes", batch_bytes, minimum=16, integer=True)
        _check_number("max_concurrency", max_concurrency, minimum=1, integer=True)
        _check_number("max_retries", max_retries, minimum=0, integer=True)
        _check_number("cache_size", cache_size, minimum=0, integer=True)
        _check_number("backoff", backoff, minimum=0, integer=False)
        _check_number("max_backoff", max_backoff, minimum=0, integer=False)
        _check_number("max_requests", max_requests, minimum=0, integer=True, optional=True)
        _check_number("max_rows", max_rows, minimum=0, integer=True, optional=True)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ConfigurationError(f"timeout must be a positive number or None, got {timeout!r}")
        if rate_limit is not None and (
            isinstance(rate_limit, bool)
            or not isinstance(rate_limit, int | float)
            or not rate_limit > 0
        ):
            raise ConfigurationError(
                f"rate_limit must be a positive number of requests per second or None, "
                f"got {rate_limit!r}"
            )
        self._request_path = _key_path(request_key, "request_key")
        self._response_path = _key_path(response_key, "response_key")
        self._setup_endpoint(url, headers)

        self._identity = identity or f"http:{self._bare_url}"
        self._declare_columns(names, output_names, categories, allow_missing, memory_limit)

        self.instance_format: InstanceFormat = instance_format
        self.request_key = request_key
        self.response_key = response_key
        self.batch_rows = int(batch_rows)
        self.batch_bytes = int(batch_bytes)
        self.max_concurrency = int(max_concurrency)
        self.timeout = None if timeout is None else float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.rate_limit = None if rate_limit is None else float(rate_limit)
        self.max_requests = None if max_requests is None else int(max_requests)
        self.max_rows = None if max_rows is None else int(max_rows)
        self.cache_size = int(cache_size)

        self._client = client
        self._owns_client = client is None
        self._client_lock = threading.Lock()
        self._cache = _RowCache(self.cache_size)
        self._spacing = _Spacing(self.rate_limit)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._rng = np.random.default_rng(random_state)
        self._rng_lock = threading.Lock()
        self._budget_lock = threading.Lock()
        self._requests = 0
        self._rows_sent = 0
        self._retries = 0
        self._cache_hits = 0
        prefix = "".join("{" + json.dumps(k) + ":" for k in self._request_path)
        self._body_prefix = prefix.encode("ascii") + b"["
        self._body_suffix = b"]" + b"}" * len(self._request_path)

    # -- endpoint and secrets ----------------------------------------------------------------
    def _setup_endpoint(self, url: str, headers: Mapping[str, str] | None) -> None:
        try:
            parsed = httpx.URL(url)
        except (TypeError, httpx.InvalidURL):
            raise ConfigurationError("url is not a valid URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigurationError(
                f"url must be an absolute http(s) URL, got scheme {parsed.scheme!r} "
                f"and host {parsed.host!r}"
            )
        merged: dict[str, str] = {}
        for name, value in (headers or {}).items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ConfigurationError("headers must map header names to string values")
            merged[name] = value
        secrets = list(merged.values())
        if parsed.username or parsed.password:
            token = base64.b64encode(f"{parsed.username}:{parsed.password}".encode()).decode()
            if not any(k.lower() == "authorization" for k in merged):
                merged["Authorization"] = f"Basic {token}"
            secrets += [token, parsed.password, parsed.username]
        query = [(k, v) for k, v in parsed.params.multi_items()]
        secrets += [v for _, v in query]
        bare = f"{parsed.scheme}://{parsed.netloc.decode('ascii').rpartition('@')[2]}{parsed.path}"
        self._bare_url = bare
        self._public_url = bare + ("?" + "&".join(f"{k}=***" for k, _ in query) if query else "")
        self._url = parsed.copy_with(username=None, password=None, fragment=None)
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **merged,
        }
        # Whole values and their words (a server may echo only the token of "Bearer <token>"),
        # but not the scheme names themselves.
        schemes = {"basic", "bearer", "digest", "token", "apikey"}
        words = {w for s in secrets for w in s.split() if len(w) >= 4 and w.lower() not in schemes}
        self._secrets = sorted({s for s in secrets if len(s) >= 4} | words, key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"HTTPModel({self._public_url!r}, n_features={len(self._feature_names)})"

    # -- client lifetime ---------------------------------------------------------------------
    def _get_client(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
            return self._client

    def close(self) -> None:
        """Close the client this model created (an injected client is left open)."""
        with self._client_lock:
            if self._owns_client and self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> HTTPModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- counters ----------------------------------------------------------------------------
    @property
    def n_requests(self) -> int:
        """Requests sent so far (every attempt, retries included)."""
        return self._requests

    @property
    def n_rows_sent(self) -> int:
        """Rows sent so far (every attempt, retries included)."""
        return self._rows_sent

    @property
    def n_retries(self) -> int:
        """Attempts that were retries of a failed request."""
        return self._retries

    @property
    def n_cache_hits(self) -> int:
        """Rows answered without sending them (from the cache or a duplicate in the call)."""
        return self._cache_hits

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    def describe(self) -> dict[str, Any]:
        """Provenance: the URL without credentials or query values, the mapping, the limits.

        Headers are not included, not even their names.
        """
        return {
            **super().describe(),
            "format": "http",
            "url": self._public_url,
            "method": "POST",
            "instance_format": self.instance_format,
            "request_key": self.request_key,
            "response_key": self.response_key,
            "batch_rows": self.batch_rows,
            "batch_bytes": self.batch_bytes,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "backoff": self.backoff,
            "max_backoff": self.max_backoff,
            "rate_limit": self.rate_limit,
            "max_requests": self.max_requests,
            "max_rows": self.max_rows,
            "cache_size": self.cache_size,
        }

    # -- encoding ----------------------------------------------------------------------------
    def _column_values(self, values: np.ndarray, name: str) -> list[Any]:
        kind = values.dtype.kind
        if kind == "f":
            inf = np.isinf(values)
            if inf.any():
                row = int(np.flatnonzero(inf)[0])
                raise InputError(
                    f"column {name!r} has {values[row]} at row {row}; JSON cannot carry infinity"
                )
            out = values.tolist()
            nan = np.isnan(values)
            if nan.any():
                for pos in np.flatnonzero(nan).tolist():
                    out[pos] = None
            return out
        if kind in "iub":
            return values.tolist()
        if kind in "OUS":
            out = values.tolist()
            for i, v in enumerate(out):
                if isinstance(v, np.generic):
                    v = out[i] = v.item()
                if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                    out[i] = None
                elif isinstance(v, float) and v in (float("inf"), float("-inf")):
                    raise InputError(
                        f"column {name!r} has {v} at row {i}; JSON cannot carry infinity"
                    )
                elif isinstance(v, bytes):
                    out[i] = v.decode("utf-8", errors="replace")
            return out
        raise InputError(
            f"column {name!r} has dtype {values.dtype}, which has no JSON form; "
            f"convert it to numbers or strings first"
        )

    def _encode_rows(self, X: pd.DataFrame | np.ndarray) -> list[str]:
        """Each row as compact JSON, in the configured instance format."""
        names = self._feature_names
        if isinstance(X, np.ndarray) and X.dtype.kind in "fiub" and not np.isnan(X).any():
            if X.dtype.kind == "f" and np.isinf(X).any():
                row, col = np.argwhere(np.isinf(X))[0]
                raise InputError(
                    f"column {names[col]!r} has {X[row, col]} at row {row}; "
                    f"JSON cannot carry infinity"
                )
            rows: list[Any] = X.tolist()
        else:
            if isinstance(X, pd.DataFrame):
                columns = [self._column_values(X[c].to_numpy(), c) for c in names]
            else:
                columns = [self._column_values(X[:, j], c) for j, c in enumerate(names)]
            rows = list(zip(*columns, strict=True))
        try:
            if self.instance_format == "list":
                return [json.dumps(r, separators=(",", ":"), allow_nan=False) for r in rows]
            return [
                json.dumps(dict(zip(names, r, strict=True)), separators=(",", ":"), allow_nan=False)
                for r in rows
            ]
        except (TypeError, ValueError) as exc:
            raise InputError(f"a row cannot be encoded as JSON: {exc}") from None

    def _plan(self, rows: list[str]) -> list[list[str]]:
        """Consecutive batches within ``batch_rows`` rows and ``batch_bytes`` bytes."""
        overhead = len(self._body_prefix) + len(self._body_suffix)
        batches: list[list[str]] = []
        current: list[str] = []
        size = overhead
        for row in rows:
            cost = len(row) + (1 if current else 0)
            if current and (len(current) >= self.batch_rows or size + cost > self.batch_bytes):
                batches.append(current)
                current, size, cost = [], overhead, len(row)
            if overhead + len(row) > self.batch_bytes:
                raise InputError(
                    f"a row encodes to {overhead + len(row)} bytes of JSON with its envelope, "
                    f"more than batch_bytes={self.batch_bytes}"
                )
            current.append(row)
            size += cost
        if current:
            batches.append(current)
        return batches

    # -- budget ------------------------------------------------------------------------------
    def _check_budget(self, n_requests: int, n_rows: int) -> None:
        """Refuse a call whose first attempts alone would exceed what is left."""
        with self._budget_lock:
            if self.max_requests is not None and self._requests + n_requests > self.max_requests:
                raise BudgetExceededError(
                    f"this call needs {n_requests} request(s) but {self.max_requests - self._requests} "
                    f"of max_requests={self.max_requests} remain; nothing was sent"
                )
            if self.max_rows is not None and self._rows_sent + n_rows > self.max_rows:
                raise BudgetExceededError(
                    f"this call needs to send {n_rows} row(s) but {self.max_rows - self._rows_sent} "
                    f"of max_rows={self.max_rows} remain; nothing was sent"
                )

    def _reserve(self, n_rows: int, retry_of: str | None) -> None:
        """Count one request of ``n_rows`` rows against the budget, or refuse it unsent."""
        with self._budget_lock:
            over = None
            if self.max_requests is not None and self._requests + 1 > self.max_requests:
                over = f"max_requests={self.max_requests}"
            elif self.max_rows is not None and self._rows_sent + n_rows > self.max_rows:
                over = f"max_rows={self.max_rows} ({self._rows_sent} sent, {n_rows} more needed)"
            if over is not None:
                why = f"retrying a failed request ({retry_of})" if retry_of else "the next request"
                raise BudgetExceededError(f"{why} would exceed {over}; it was not sent")
            self._requests += 1
            self._rows_sent += n_rows
            if retry_of is not None:
                self._retries += 1

    # -- sending -----------------------------------------------------------------------------
    def _delay(self, retry: int) -> float:
        with self._rng_lock:
            jitter = 0.5 + 0.5 * float(self._rng.random())
        return min(self.max_backoff, self.backoff * 2.0**retry) * jitter

    def _server_message(self, response: httpx.Response) -> str:
        text = response.text
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            for key in ("error", "detail", "message"):
                if key in doc:
                    text = doc[key] if isinstance(doc[key], str) else json.dumps(doc[key])
                    break
        text = " ".join(text.split())
        if len(text) > 300:
            text = text[:300] + "..."
        return self._redact(text) or "(empty body)"

    def _parse(self, response: httpx.Response, n_rows: int) -> np.ndarray:
        try:
            doc: Any = json.loads(response.content)
        except ValueError:
            snippet = self._redact(" ".join(response.text.split())[:120])
            raise ResponseFormatError(f"the endpoint answered non-JSON: {snippet!r}") from None
        for depth, key in enumerate(self._response_path):
            if not isinstance(doc, dict) or key not in doc:
                where = ".".join(self._response_path[:depth]) or "the top level"
                found = sorted(doc)[:10] if isinstance(doc, dict) else type(doc).__name__
                raise ResponseFormatError(
                    f"the answer has no {key!r} at {where} (response_key="
                    f"{self.response_key!r}); found {found}"
                )
            doc = doc[key]
        if not isinstance(doc, list):
            raise ResponseFormatError(
                f"predictions at response_key={self.response_key!r} must be a list, "
                f"got {type(doc).__name__}"
            )
        if len(doc) != n_rows:
            raise ResponseFormatError(
                f"the endpoint returned {len(doc)} prediction(s) for {n_rows} row(s)"
            )
        k = len(self._output_names)
        try:
            out = np.asarray(doc, dtype=np.float64)
        except (TypeError, ValueError):
            raise ResponseFormatError(
                f"predictions must be numbers or lists of {k} numbers; got e.g. "
                f"{self._redact(json.dumps(doc[0])[:80])}"
            ) from None
        if out.ndim == 1 and k == 1:
            out = out.reshape(-1, 1)
        if out.shape != (n_rows, k):
            raise ResponseFormatError(
                f"predictions have shape {out.shape} for {n_rows} row(s); expected "
                f"({n_rows}, {k}) for outputs {self._output_names}"
            )
        return out

    def _send(self, rows: list[str], abort: threading.Event) -> np.ndarray:
        """One batch, with retries; returns predictions of shape ``(len(rows), n_outputs)``."""
        body = self._body_prefix + ",".join(rows).encode("ascii") + self._body_suffix
        client = self._get_client()
        failure: str | None = None
        for attempt in range(self.max_retries + 1):
            if abort.is_set():
                raise _Aborted
            self._reserve(len(rows), failure)
            self._spacing.wait()
            logger.debug(
                "POST %s: %d row(s), %d bytes, attempt %d",
                self._public_url,
                len(rows),
                len(body),
                attempt + 1,
            )
            response: httpx.Response | None = None
            with self._slots:
                try:
                    response = client.post(
                        self._url,
                        content=body,
                        headers=self._headers,
                        timeout=self.timeout,
                    )
                except httpx.TimeoutException as exc:
                    failure = f"timed out ({type(exc).__name__})"
                except httpx.TransportError as exc:
                    failure = f"connection failed ({type(exc).__name__}: {self._redact(str(exc))})"
            if response is not None:
                status = response.status_code
                if 200 <= status < 300:
                    return self._parse(response, len(rows))
                message = self._server_message(response)
                if status < 500:
                    raise HTTPStatusError(
                        f"the endpoint answered HTTP {status} ({response.reason_phrase}): "
                        f"{message}; not retried",
                        status=status,
                    )
                failure = f"HTTP {status}: {message}"
            if attempt == self.max_retries:
                break
            delay = self._delay(attempt)
            logger.warning(
                "request to %s failed: %s; retry %d of %d in %.2f s",
                self._public_url,
                failure,
                attempt + 1,
                self.max_retries,
                delay,
            )
            if abort.wait(delay):
                raise _Aborted
        tries = self.max_retries + 1
        text = f"the endpoint failed {tries} attempt(s) at {self._public_url}; last: {failure}"
        if response is not None:
            raise HTTPStatusError(text, status=response.status_code)
        raise HTTPTransportError(text)

    def _send_all(self, batches: list[list[str]]) -> list[np.ndarray]:
        abort = threading.Event()

        def run(rows: list[str]) -> np.ndarray:
            out = self._send(rows, abort)
            self._cache.put_many(rows, out)
            return out

        if len(batches) == 1 or self.max_concurrency == 1:
            return [run(b) for b in batches]
        workers = min(self.max_concurrency, len(batches))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="HTTPModel") as pool:
            futures: list[Future[np.ndarray]] = [pool.submit(run, b) for b in batches]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
                errors = [e for f in futures if f.done() and (e := f.exception()) is not None]
                if errors:
                    raise next((e for e in errors if not isinstance(e, _Aborted)), errors[0])
                return [f.result() for f in futures]
            except BaseException:
                # Stop the rest: queued batches are dropped and running ones end at their next
                # attempt or backoff, so nothing more is sent once the call has failed.
                abort.set()
                for f in futures:
                    f.cancel()
                raise

    # -- the model ---------------------------------------------------------------------------
    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        keys = self._encode_rows(X)
        out = np.empty((len(keys), len(self._output_names)), dtype=np.float64)
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            cached = self._cache.get(key)
            if cached is not None:
                out[i] = cached
            else:
                todo.setdefault(key, []).append(i)
        unique = list(todo)
        hits = len(keys) - len(unique)
        if hits:
            with self._budget_lock:
                self._cache_hits += hits
        if not unique:
            return out
        batches = self._plan(unique)
        self._check_budget(len(batches), len(unique))
        for batch, result in zip(batches, self._send_all(batches), strict=True):
            for row, value in zip(batch, result, strict=True):
                out[todo[row]] = value
        return out

    def _checked_chunk(self, part: pd.DataFrame | np.ndarray, offset: int) -> np.ndarray:
        # BaseModel reports any other exception as "the model raised ..."; a refused budget is
        # not a model failure and must reach the caller as itself.
        try:
            return super()._checked_chunk(part, offset)
        except ModelEvaluationError as exc:
            if isinstance(exc.__cause__, BudgetExceededError):
                raise exc.__cause__ from None
            raise
