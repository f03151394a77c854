"""What the HTTP client may say about a server: secrets redacted, applicants' rows removed.

Two things must never leave :class:`~surrogate_xai.adapters.http.HTTPModel` through an error
message or a log line: credentials (header values, URL user info, query values) and the rows
it sent (applicants' data). Servers echo both: a 401 that quotes the token it refused, or
MLflow's 400 whose first 300 characters are the request's DataFrame and whose cause ("Model is
missing inputs [...]") is at the end of ~830 characters. So a server's message is cut to its
start and its end, and every value of the batch is taken out of it first: numbers, including
the rounded forms a DataFrame repr prints (``0.123457`` for ``0.123456789``), and text values.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
import weakref
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

#: A server message is cut to at most this many characters: its start and its end.
MESSAGE_LIMIT = 480
#: What stands where a value of the request was.
REMOVED = "…"

# A number standing alone: not part of a word (x5), a dotted version (3.17.2) or a longer number.
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w]|\.\d)")
# Runs of removed values with the punctuation between them, collapsed to one mark.
_RUN = re.compile("\x00(?:[\\s,;:|'\"\\[\\](){}]*\x00)*")


class Secrets:
    """The secret strings of one model, and the redaction of them from any text."""

    # Scheme words are not secrets, even when a header value contains them.
    _SCHEMES = frozenset({"basic", "bearer", "digest", "token", "apikey"})

    def __init__(self, values: Iterable[str]) -> None:
        values = [v for v in values if v]
        words = {
            w for s in values for w in s.split() if len(w) >= 4 and w.lower() not in self._SCHEMES
        }
        # Whole values and their words (a server may echo only the token of "Bearer <token>"),
        # longest first so a value is replaced before its parts.
        self._values = sorted({v for v in values if len(v) >= 4} | words, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._values:
            text = text.replace(secret, "***")
        return text


class _HttpxLogRedactor(logging.Filter):
    """httpx logs ``HTTP Request: POST <full URL> ...`` at INFO, query string included: the
    secrets of every live model are taken out of httpx's records before any handler sees them."""

    def __init__(self) -> None:
        super().__init__("httpx")
        self._live: weakref.WeakSet[Secrets] = weakref.WeakSet()
        self._lock = threading.Lock()

    def register(self, secrets: Secrets) -> None:
        with self._lock:
            self._live.add(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            live = list(self._live)
        if not live:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        clean = message
        for secrets in live:
            clean = secrets.redact(clean)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


HTTPX_LOG_REDACTOR = _HttpxLogRedactor()
logging.getLogger("httpx").addFilter(HTTPX_LOG_REDACTOR)


# -- a server's message --------------------------------------------------------------------------
def _detail_text(detail: Any) -> str:
    """FastAPI/pydantic validation details without their ``input`` (an echo of the body)."""
    if isinstance(detail, list) and all(isinstance(d, dict) for d in detail):
        parts = []
        for d in detail:
            loc = ".".join(str(p) for p in d.get("loc", []))
            parts.append(f"{loc}: {d.get('msg', '')}" if loc else str(d.get("msg", "")))
        return "; ".join(parts)
    return detail if isinstance(detail, str) else json.dumps(detail, default=str)


def message_text(content: bytes) -> str:
    """The message a server put in an error answer: its ``error`` / ``detail`` / ``message``
    field (with MLflow's ``error_code``), or the whole body as text."""
    text = content.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict):
        for key in ("error", "detail", "message"):
            if key in doc:
                found = _detail_text(doc[key]) if key == "detail" else doc[key]
                found = found if isinstance(found, str) else json.dumps(found, default=str)
                code = doc.get("error_code")
                return f"{code}: {found}" if isinstance(code, str) else found
    return text


class RowValues:
    """The values of the rows a request carried, to find them again in a server's message."""

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        numbers: set[float] = set()
        texts: set[str] = set()
        for row in rows:
            for v in row:
                if isinstance(v, bool) or v is None:
                    continue
                if isinstance(v, int | float):
                    numbers.add(float(v))
                elif isinstance(v, str) and len(v.strip()) >= 2:
                    texts.add(v.strip())
        self._numbers = sorted(numbers)
        # Longest first, so "paris nord" goes before "paris"; bounded, for very wide batches.
        shown = sorted(texts, key=len, reverse=True)[:2000]
        self._texts = (
            re.compile("(?<!\\w)(?:" + "|".join(re.escape(t) for t in shown) + ")(?!\\w)")
            if shown
            else None
        )

    def _sent(self, token: str, integers: bool) -> bool:
        is_float = any(c in token for c in ".eE")
        if not is_float and not integers:
            return False
        try:
            value = Decimal(token)
        except InvalidOperation:
            return False
        exponent = value.as_tuple().exponent
        # A printed float may be a rounding of what was sent (pandas prints six significant
        # digits): any sent value within half a unit of its last digit counts. An integer
        # must match exactly, so counts like "expected 6 features" survive.
        tol = (
            float(Decimal(5).scaleb(exponent - 1))
            if is_float and isinstance(exponent, int)
            else 0.0
        )
        x = float(value)
        lo = bisect.bisect_left(self._numbers, x - tol * (1 + 1e-9))
        return lo < len(self._numbers) and self._numbers[lo] <= x + tol * (1 + 1e-9)

    def remove(self, text: str, *, integers: bool = True) -> str:
        """``text`` with every value of the rows replaced by :data:`REMOVED`.

        With ``integers=False`` integer tokens stay (for the client's own messages, whose
        integers are counts and positions; what they quote of an answer is never an integer
        alone).
        """
        if self._texts is not None:
            text = self._texts.sub("\x00", text)
        if self._numbers:
            text = _NUMBER.sub(
                lambda m: "\x00" if self._sent(m.group(), integers) else m.group(), text
            )
        return _RUN.sub(REMOVED, text)


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line, cut to its start and its end when longer than ``limit``."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head - 5
    return f"{text[:head].rstrip()} [...] {text[-tail:].lstrip()}"


def server_message(content: bytes, rows: RowValues | None, secrets: Secrets) -> str:
    """What to show of a server's error answer: its message, without the rows sent or any
    secret, cut to its start and end."""
    text = message_text(content)
    if rows is not None:
        text = rows.remove(text)
    return shorten(secrets.redact(text)) or "(empty body)"
