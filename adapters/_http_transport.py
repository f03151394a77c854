"""The parts of an HTTP call that do not depend on the wire format: a cache of answered rows,
even spacing of requests, and one attempt with a total deadline.

httpx's ``timeout`` bounds each network operation, not the whole exchange: a server that drips
one byte every 0.8 s never trips a 2 s read timeout and can hold a request for as long as it
likes. So an attempt runs in its own thread and the caller waits at most ``timeout`` seconds
for the complete answer; a late attempt is abandoned (it stops at its next chunk, and its
concurrency slot is freed only when it has stopped, so the server never sees more requests in
flight than allowed).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("HTTPModel needs httpx: pip install 'surrogate-xai[http]'") from exc


class RowCache:
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


class Spacing:
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


@dataclass(frozen=True)
class Reply:
    """A complete answer: status, reason, content type (lower case, no parameters), the
    ``Location`` header of a redirect, and the body."""

    status: int
    reason: str
    content_type: str
    location: str | None
    content: bytes


class DeadlineExceeded(Exception):
    """The attempt had no complete answer within its deadline."""


class _Cancelled(Exception):
    """The caller gave up on this attempt."""


def _post(
    client: httpx.Client,
    url: httpx.URL,
    body: bytes,
    headers: dict[str, str],
    timeout: float | None,
    auth: Any,
    cancel: threading.Event | None,
) -> Reply:
    # Redirects are refused per request: an injected client may follow them, and a 307 would
    # carry the credentials (and the applicants' rows) to whatever host it names.
    with client.stream(
        "POST",
        url,
        content=body,
        headers=headers,
        timeout=timeout,
        follow_redirects=False,
        auth=auth,
    ) as response:
        chunks = []
        for chunk in response.iter_bytes():
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            chunks.append(chunk)
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return Reply(
            response.status_code,
            response.reason_phrase,
            kind,
            response.headers.get("location"),
            b"".join(chunks),
        )


def exchange(
    client: httpx.Client,
    url: httpx.URL,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float | None,
    auth: Any,
    slots: threading.BoundedSemaphore,
) -> Reply:
    """One POST and its whole answer within ``timeout`` seconds (``None``: no deadline).

    Takes one of ``slots`` for as long as the request is in flight, even past the deadline.

    Raises
    ------
    DeadlineExceeded
        No complete answer in time.
    httpx.TimeoutException, httpx.TransportError
        As httpx raises them (a network operation timed out, the connection failed).
    """
    slots.acquire()
    if timeout is None:
        try:
            return _post(client, url, body, headers, None, auth, None)
        finally:
            slots.release()
    done: Future[Reply] = Future()
    cancel = threading.Event()

    def attempt() -> None:
        try:
            done.set_result(_post(client, url, body, headers, timeout, auth, cancel))
        except BaseException as exc:  # handed to the caller, who may have left already
            done.set_exception(exc)
        finally:
            slots.release()

    threading.Thread(target=attempt, name="HTTPModel-attempt", daemon=True).start()
    finished, _ = wait_for([done], timeout=timeout)
    if not finished:
        cancel.set()
        raise DeadlineExceeded
    return done.result()
