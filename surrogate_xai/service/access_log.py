"""The service's access log: one line per request, without its query string.

uvicorn's own access log prints the full request target, query string included, so a client
that sends its key as ``?api_key=...`` (refused, since keys travel only in the
``Authorization`` header) would still leave the key in the log. ``sxai serve`` turns uvicorn's
access log off and installs this middleware instead: the same line, with the path alone, on
the logger ``sxai.access`` (:func:`log_to_stderr` gives it uvicorn's format). Headers are
never logged.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("sxai.access")


def log_to_stderr() -> None:
    """Print the access log on stderr in uvicorn's own format (``sxai serve`` calls it)."""
    from uvicorn.logging import AccessFormatter

    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            AccessFormatter('%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s')
        )
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class AccessLogMiddleware:
    """Pure ASGI middleware: logs ``client - "METHOD /path HTTP/x" status`` after each answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [0]
        start = time.perf_counter()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            where = f"{client[0]}:{client[1]}" if client else "-"
            # uvicorn's AccessFormatter reads exactly these five arguments.
            logger.info(
                '%s - "%s %s HTTP/%s" %d',
                where,
                scope.get("method", "-"),
                scope.get("root_path", "") + scope.get("path", ""),
                scope.get("http_version", "1.1"),
                status[0] or 500,
                extra={"duration_ms": round(1000 * (time.perf_counter() - start), 3)},
            )
