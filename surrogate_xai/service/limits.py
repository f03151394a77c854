"""Request body size limit, enforced before anything parses the body.

A declared ``Content-Length`` over the limit is refused at once, without reading the body.
A body without one (chunked) is counted as it arrives; the moment it passes the limit the
request fails with 413, so the server never holds more than the limit (plus one chunk).
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _too_large(limit: int) -> str:
    return f"request body larger than this service's limit of {limit:,} bytes"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body; FastAPI re-raises HTTPExceptions from body reading,
    so it becomes an ordinary 413 answer."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large(limit), headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for bodies over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None and declared > self.max_bytes:
            await _answer_413(send, self.max_bytes)
            return
        received = 0
        limit = self.max_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _answer_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The unread body is still on the wire: do not reuse the connection.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
