"""A model reachable only as an HTTP prediction endpoint, as a :class:`~surrogate_xai.Model`.

Rows go out in the endpoint's wire format (``protocol=``: plain JSON by default, or KServe V1,
Open Inference Protocol V2, MLflow, SageMaker, Vertex AI, BentoML, a template; see
:mod:`surrogate_xai.adapters.wire`), in batches bounded by rows and bytes, a few requests at a
time, spaced by a rate limit, retried with exponential backoff on 5xx answers, timeouts and
lost connections (never on 4xx, never following a redirect), against a hard budget of requests
and rows checked *before* each request is sent. Each attempt has a total deadline. Identical
rows are answered from a bounded cache. Credentials (header values, URL user info, query
values) are used for the requests only: they are never logged (httpx's own log line included),
never put in provenance and never shown in an error message; nor are the rows sent, which a
server's error message often echoes.

Needs the ``http`` extra: ``pip install 'surrogate-xai[http]'``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import (
    BudgetExceededError,
    ConfigurationError,
    ModelEvaluationError,
    RemoteModelError,
)
from ..model import DEFAULT_MEMORY_LIMIT, BaseModel
from ._http_budget import Budget
from ._http_endpoint import endpoint, public_url
from ._http_messages import RowValues, server_message, shorten
from ._http_rows import Batch, encode_rows, plan_batches
from ._http_transport import DeadlineExceeded, Reply, RowCache, Spacing, exchange, httpx
from .wire import PROTOCOLS, Answer, ResponseFormatError, WireFormat, resolve_format

logger = logging.getLogger(__name__)

#: Alias of :class:`~surrogate_xai.exceptions.BudgetExceededError`.
BudgetExceeded = BudgetExceededError

__all__ = [
    "PROTOCOLS",
    "BudgetExceeded",
    "BudgetExceededError",
    "HTTPModel",
    "HTTPStatusError",
    "HTTPTransportError",
    "ResponseFormatError",
]


class HTTPStatusError(RemoteModelError):
    """The endpoint answered an error status: 3xx and 4xx at once (never retried), 5xx after
    retries."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HTTPTransportError(RemoteModelError):
    """The endpoint timed out or the connection failed, on every attempt."""


#: The widest answer :meth:`HTTPModel.infer_outputs` recognises.
MAX_INFERRED_OUTPUTS = 256


class _Aborted(Exception):
    """Another request of the same call failed; this one stops without sending."""


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


class HTTPModel(BaseModel):
    """A model behind an HTTP prediction endpoint.

    By default each request is a ``POST`` of ``{"instances": [row, ...]}`` and the answer must
    hold ``{"predictions": [p, ...]}`` with one number, or one list of ``n_outputs`` numbers,
    per row; ``protocol=`` names another wire format.

    Parameters
    ----------
    url : str
        The endpoint (``http`` or ``https``): for ``"oip-v2"`` the model's ``.../infer`` URL,
        for ``"mlflow"`` the ``.../invocations`` URL. Credentials in the URL
        (``user:password@``) are taken out of it and sent as a Basic ``Authorization`` header.
    feature_names : sequence of str
        The input columns, in the order list-format rows use.
    output_names : sequence of str, optional
        Names of the outputs; default ``["output"]``.
    protocol : str or WireFormat
        The wire format: one of :data:`PROTOCOLS` (``"json"``, ``"kserve-v1"``, ``"oip-v2"``,
        ``"mlflow"``, ``"sagemaker"``, ``"vertex"``, ``"bentoml"``, ``"template"``), or a
        format object from :mod:`surrogate_xai.adapters.wire` built with its options.
    output : str or int, optional
        Which output to read: for ``"oip-v2"`` the output tensor's name or index; for the
        JSON formats an index into each row's prediction or a JMESPath expression applied to
        it (``"scores"``); for ``"sagemaker"`` see :class:`~surrogate_xai.adapters.wire.SageMaker`.
    protocol_options : mapping, optional
        The named protocol's own options, e.g. ``{"format": "csv"}`` for MLflow or
        ``{"template": {...}, "response": "result.scores"}`` for a template; an unknown one is
        refused by name.
    identity : str, optional
        A stable identifier for provenance, e.g. the served model's version. The default is
        ``"http:" + url`` (without credentials and query), which is *not* content-based: the
        server may change the model behind the same URL.
    client : httpx.Client, optional
        The client to send with (tests pass one bound to a local server or an
        ``httpx.MockTransport``). Without it the model creates its own on first use; close it
        with :meth:`close` or use the model as a context manager. An injected client is the
        caller's to close; its ``follow_redirects`` setting is overridden per request.
    headers : mapping of str to str, optional
        Sent with every request (e.g. ``{"Authorization": "Bearer ..."}``). Their values are
        never logged, never stored in :meth:`describe` and redacted from error messages.
    auth : httpx.Auth, optional
        Authentication applied to every request, e.g. a signing scheme
        (:class:`~surrogate_xai.adapters.wire.aws.SigV4Auth` through botocore) or a token
        refresher. Its secrets are its own: only the headers above are redacted.
    instance_format : {"list", "object"}, optional
        ``"json"``, ``"kserve-v1"``, ``"vertex"``, ``"bentoml"``: a row as a list of values in
        ``feature_names`` order (the default), or as an object keyed by column. Numbers go out
        as JSON numbers (floats round-trip exactly), strings as strings, NaN as ``null``.
    request_key, response_key : str, optional
        ``"json"`` only: where the rows go in the request and where the predictions are in
        the answer, a key or a dotted path (``"data.scores"``; default ``"instances"`` and
        ``"predictions"``); ``""`` means the body itself is the list.
    batch_rows : int
        Rows per request, at most.
    batch_bytes : int
        Bytes per request body, at most.
    max_concurrency : int
        Requests in flight at once, across all threads using this model.
    timeout : float or None
        Seconds an attempt may take in total, from connecting to the last byte of the answer
        (each network operation is bounded by it too; it overrides the client's own timeout);
        ``None`` waits forever.
    max_retries : int
        Retries of a request after a 5xx answer, a timeout or a connection error. 3xx, 4xx
        and other statuses are never retried.
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
    the same function called in-process. Only JSON numbers are predictions: ``"0.5"``,
    ``true`` or ``null`` are refused (:class:`ResponseFormatError`). Counters:
    :attr:`n_requests` (attempts sent), :attr:`n_rows_sent`, :attr:`n_retries`,
    :attr:`n_cache_hits`; ``n_evaluations`` counts every row predicted, cached or not.
    """

    def __init__(
        self,
        url: str,
        feature_names: Sequence[str],
        output_names: Sequence[str] | None = None,
        *,
        protocol: str | WireFormat = "json",
        output: str | int | None = None,
        protocol_options: Mapping[str, Any] | None = None,
        identity: str | None = None,
        client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        instance_format: str | None = None,
        request_key: str | None = None,
        response_key: str | None = None,
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
        if client is not None and not isinstance(client, httpx.Client):
            raise ConfigurationError(f"client must be an httpx.Client, got {type(client).__name__}")
        if auth is not None and not isinstance(auth, httpx.Auth):
            raise ConfigurationError(f"auth must be an httpx.Auth, got {type(auth).__name__}")
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
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
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
        legacy = {
            "instance_format": instance_format,
            "request_key": request_key,
            "response_key": response_key,
        }
        self.wire = resolve_format(protocol, protocol_options, output, legacy)
        self._endpoint = endpoint(url, headers, self.wire.content_type, self.wire.accept)
        self._url = self._endpoint.url
        self._headers = self._endpoint.headers
        self._public_url = self._endpoint.public_url
        self._secrets = self._endpoint.secrets

        self._identity = identity or f"http:{self._endpoint.bare_url}"
        self._declare_columns(names, output_names, categories, allow_missing, memory_limit)
        self._outputs_given = output_names is not None
        self.outputs_inferred = False

        self.protocol = self.wire.name
        self.auth = auth
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
        self._cache = RowCache(self.cache_size)
        self._spacing = Spacing(self.rate_limit)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._rng = np.random.default_rng(random_state)
        self._rng_lock = threading.Lock()
        self._budget = Budget(self.max_requests, self.max_rows)

    def _redact(self, text: str) -> str:
        return self._secrets.redact(text)

    def __repr__(self) -> str:
        return (
            f"HTTPModel({self._public_url!r}, n_features={len(self._feature_names)}, "
            f"protocol={self.protocol!r})"
        )

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

    def __del__(self) -> None:
        # A model dropped without close() (an error while a command reads its inputs) must
        # not leave its connections to the garbage collector.
        with contextlib.suppress(Exception):
            self.close()

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
        return self._budget.requests

    @property
    def n_rows_sent(self) -> int:
        """Rows sent so far (every attempt, retries included)."""
        return self._budget.rows_sent

    @property
    def n_retries(self) -> int:
        """Attempts that were retries of a failed request."""
        return self._budget.retries

    @property
    def n_cache_hits(self) -> int:
        """Rows answered without sending them (from the cache or a duplicate in the call)."""
        return self._budget.cache_hits

    def clear_cache(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    def describe(self) -> dict[str, Any]:
        """Provenance: the URL without credentials or query values, the wire format and its
        options, the limits. Headers are not included, not even their names."""
        return {
            **super().describe(),
            "format": "http",
            "url": self._public_url,
            "method": "POST",
            **self.wire.describe(),
            # The hook's class only ("auth" is a key the audit store refuses to record).
            "request_hook": None if self.auth is None else type(self.auth).__name__,
            "outputs_inferred": self.outputs_inferred,
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

    # -- sending -----------------------------------------------------------------------------
    def _delay(self, retry: int) -> float:
        with self._rng_lock:
            jitter = 0.5 + 0.5 * float(self._rng.random())
        return min(self.max_backoff, self.backoff * 2.0**retry) * jitter

    def _decode(self, reply: Reply, batch: Batch) -> np.ndarray:
        try:
            return self.wire.decode(
                Answer(reply.content, reply.content_type), len(batch.rows), self._output_names
            )
        except ResponseFormatError as exc:
            # What a format quotes of an answer may hold the rows (an echo) or a secret.
            text = RowValues(batch.rows).remove(self._redact(str(exc)), integers=False)
            raise ResponseFormatError(shorten(text)) from None

    def _refusal(self, reply: Reply, batch: Batch) -> HTTPStatusError:
        """The error for a 3xx or 4xx answer (never retried)."""
        message = server_message(reply.content, RowValues(batch.rows), self._secrets)
        status = f"HTTP {reply.status} ({reply.reason})"
        if 300 <= reply.status < 400:
            where = public_url(httpx.URL(reply.location)) if reply.location else "nowhere"
            return HTTPStatusError(
                f"the endpoint answered {status} to {where}; redirects are not followed (the "
                f"credentials and rows would go there): give the final URL",
                status=reply.status,
            )
        return HTTPStatusError(
            f"the endpoint answered {status}: {message}; not retried", status=reply.status
        )

    def _send(
        self,
        batch: Batch,
        abort: threading.Event,
        decode: Callable[[Reply, Batch], np.ndarray] | None = None,
    ) -> np.ndarray:
        """One batch, with retries; returns predictions of shape ``(len(rows), n_outputs)``."""
        client = self._get_client()
        auth = self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT
        failure: str | None = None
        reply: Reply | None = None
        for attempt in range(self.max_retries + 1):
            if abort.is_set():
                raise _Aborted
            self._budget.reserve(len(batch.rows), failure)
            self._spacing.wait()
            logger.debug(
                "POST %s: %d row(s), %d bytes, attempt %d",
                self._public_url,
                len(batch.rows),
                len(batch.body),
                attempt + 1,
            )
            reply = None
            try:
                reply = exchange(
                    client,
                    self._url,
                    batch.body,
                    self._headers,
                    timeout=self.timeout,
                    auth=auth,
                    slots=self._slots,
                )
            except DeadlineExceeded:
                failure = f"timed out (no complete answer within timeout={self.timeout} s)"
            except httpx.TimeoutException as exc:
                failure = f"timed out ({type(exc).__name__})"
            except httpx.TransportError as exc:
                failure = f"connection failed ({type(exc).__name__}: {self._redact(str(exc))})"
            if reply is not None:
                if 200 <= reply.status < 300:
                    return (decode or self._decode)(reply, batch)
                if reply.status < 500:
                    raise self._refusal(reply, batch)
                message = server_message(reply.content, RowValues(batch.rows), self._secrets)
                failure = f"HTTP {reply.status}: {message}"
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
        if reply is not None:
            raise HTTPStatusError(text, status=reply.status)
        raise HTTPTransportError(text)

    def _send_all(self, batches: list[Batch]) -> list[np.ndarray]:
        abort = threading.Event()

        def run(batch: Batch) -> np.ndarray:
            out = self._send(batch, abort)
            self._cache.put_many(batch.keys, out)
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

    # -- outputs from the first answer -------------------------------------------------------
    def _decode_any_width(self, reply: Reply, batch: Batch) -> np.ndarray:
        first: ResponseFormatError | None = None
        for k in range(1, MAX_INFERRED_OUTPUTS + 1):
            names = ["output"] if k == 1 else [f"output[{i}]" for i in range(k)]
            try:
                return self.wire.decode(
                    Answer(reply.content, reply.content_type), len(batch.rows), names
                )
            except ResponseFormatError as exc:
                first = first or exc
        assert first is not None
        text = RowValues(batch.rows).remove(self._redact(str(first)), integers=False)
        raise ResponseFormatError(
            f"the outputs cannot be inferred from the answer: {shorten(text)}"
        )

    def infer_outputs(self, X: pd.DataFrame | np.ndarray) -> list[str]:
        """Name the outputs after the endpoint's answer for the first row of ``X``.

        For a model built without ``output_names``, before any prediction: one request (it
        counts against the budget, and its answer is cached) tells how many numbers the
        endpoint returns per row. The names become ``["output"]`` for one, else
        ``output[0]``, ``output[1]``, ...; ``describe()`` records that they were inferred.

        Returns
        -------
        list of str
        """
        if self._outputs_given or self.n_requests or self.n_evaluations:
            raise ConfigurationError(
                "infer_outputs() is for a model built without output_names, before it predicts"
            )
        data = self._conform(X)
        first = data.iloc[:1] if isinstance(data, pd.DataFrame) else data[:1]
        if len(first) == 0:
            raise ConfigurationError("infer_outputs() needs at least one row")
        rows, keys = encode_rows(first, self._feature_names)
        (batch,) = plan_batches(
            rows, keys, self.wire, self._feature_names, max_rows=1, max_bytes=self.batch_bytes
        )
        self._budget.check(1, 1)
        out = self._send(batch, threading.Event(), self._decode_any_width)
        k = out.shape[1]
        self._output_names = ["output"] if k == 1 else [f"output[{i}]" for i in range(k)]
        self.outputs_inferred = True
        self._cache.put_many(batch.keys, out)
        return self.output_names

    # -- the model ---------------------------------------------------------------------------
    def _predict_chunk(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        rows, keys = encode_rows(X, self._feature_names)
        out = np.empty((len(keys), len(self._output_names)), dtype=np.float64)
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            cached = self._cache.get(key)
            if cached is not None:
                out[i] = cached
            else:
                todo.setdefault(key, []).append(i)
        hits = len(keys) - len(todo)
        if hits:
            self._budget.count_hits(hits)
        if not todo:
            return out
        unique_keys = list(todo)
        unique_rows = [rows[positions[0]] for positions in todo.values()]
        batches = plan_batches(
            unique_rows,
            unique_keys,
            self.wire,
            self._feature_names,
            max_rows=self.batch_rows,
            max_bytes=self.batch_bytes,
        )
        self._budget.check(len(batches), len(unique_keys))
        for batch, result in zip(batches, self._send_all(batches), strict=True):
            for key, value in zip(batch.keys, result, strict=True):
                out[todo[key]] = value
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
