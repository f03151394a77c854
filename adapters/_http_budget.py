"""The hard budget of an HTTP model: requests and rows sent over its lifetime, retries
included (every attempt reaches the server and may be billed), checked before sending."""

from __future__ import annotations

import threading

from ..exceptions import BudgetExceededError


class Budget:
    """Counters of what was sent, and the limits they must stay within (``None``: none)."""

    def __init__(self, max_requests: int | None, max_rows: int | None) -> None:
        self.max_requests = max_requests
        self.max_rows = max_rows
        self.requests = 0
        self.rows_sent = 0
        self.retries = 0
        self.cache_hits = 0
        self._lock = threading.Lock()

    def check(self, n_requests: int, n_rows: int) -> None:
        """Refuse a call whose first attempts alone would exceed what is left."""
        with self._lock:
            if self.max_requests is not None and self.requests + n_requests > self.max_requests:
                raise BudgetExceededError(
                    f"this call needs {n_requests} request(s) but {self.max_requests - self.requests} "
                    f"of max_requests={self.max_requests} remain; nothing was sent"
                )
            if self.max_rows is not None and self.rows_sent + n_rows > self.max_rows:
                raise BudgetExceededError(
                    f"this call needs to send {n_rows} row(s) but {self.max_rows - self.rows_sent} "
                    f"of max_rows={self.max_rows} remain; nothing was sent"
                )

    def reserve(self, n_rows: int, retry_of: str | None) -> None:
        """Count one request of ``n_rows`` rows, or refuse it unsent; ``retry_of`` says why
        the previous attempt failed when this one is a retry."""
        with self._lock:
            over = None
            if self.max_requests is not None and self.requests + 1 > self.max_requests:
                over = f"max_requests={self.max_requests}"
            elif self.max_rows is not None and self.rows_sent + n_rows > self.max_rows:
                over = f"max_rows={self.max_rows} ({self.rows_sent} sent, {n_rows} more needed)"
            if over is not None:
                why = f"retrying a failed request ({retry_of})" if retry_of else "the next request"
                raise BudgetExceededError(f"{why} would exceed {over}; it was not sent")
            self.requests += 1
            self.rows_sent += n_rows
            if retry_of is not None:
                self.retries += 1

    def count_hits(self, n: int) -> None:
        """Rows answered without sending them."""
        with self._lock:
            self.cache_hits += n
