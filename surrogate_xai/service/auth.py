"""API keys: ``Authorization: Bearer <key>``, compared in constant time, never logged.

The key is checked twice over: :class:`BearerAuthMiddleware` answers 401 before anything of the
request body is read (so an unauthenticated client never learns the body limit, and never gets
the service to parse its JSON), and the :func:`bearer_auth` dependency declares the scheme in the
OpenAPI schema (and would refuse too, were the middleware ever left out).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Sequence

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Scope, Send

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
MISSING_KEY = "missing API key: send the header 'Authorization: Bearer <key>'"
INVALID_KEY = "invalid API key"


def key_matches(given: str, keys: Sequence[str]) -> bool:
    """Whether ``given`` is one of ``keys``.

    Every key is compared (no early exit) with :func:`hmac.compare_digest`, so the time taken
    says nothing about how much of a key matched or which key it was.
    """
    supplied = given.encode("utf-8", "surrogatepass")
    found = False
    for key in keys:
        found |= hmac.compare_digest(supplied, key.encode("utf-8"))
    return found


def key_problem(authorization: str | None, keys: Sequence[str]) -> str | None:
    """Why an ``Authorization`` header value does not authenticate, or None when it does.

    The message never contains the key that was sent.
    """
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not authorization or scheme.lower() != "bearer" or not credentials:
        return MISSING_KEY
    if not key_matches(credentials, keys):
        return INVALID_KEY
    return None


def bearer_auth(keys: Sequence[str]) -> Callable[..., None]:
    """A FastAPI dependency that answers 401 unless a configured key is presented.

    The messages never contain the key that was sent.
    """
    scheme = HTTPBearer(
        auto_error=False,
        description="An API key from $SXAI_API_KEYS or --api-key-file.",
    )
    configured = tuple(keys)

    def require_key(
        credentials: HTTPAuthorizationCredentials | None = Depends(scheme),  # noqa: B008
    ) -> None:
        if credentials is None:
            raise HTTPException(status_code=401, detail=MISSING_KEY, headers=_CHALLENGE)
        if not key_matches(credentials.credentials, configured):
            raise HTTPException(status_code=401, detail=INVALID_KEY, headers=_CHALLENGE)

    return require_key


class BearerAuthMiddleware:
    """Pure ASGI middleware: 401 for requests under ``prefix`` without a configured key.

    It runs outside the body limit and before routing, so the answer is sent without reading
    (or parsing) a byte of the body: an unauthenticated request over the size limit gets 401,
    not 413, and invalid JSON from it gets 401, not 422.
    """

    def __init__(self, app: ASGIApp, keys: Sequence[str], prefix: str = "/v1/") -> None:
        self.app = app
        self.keys = tuple(keys)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path.startswith(self.prefix) or path == self.prefix.rstrip("/")):
            await self.app(scope, receive, send)
            return
        authorization = None
        has_body = False
        for name, value in scope.get("headers", []):
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() not in (b"", b"0")
            ):
                has_body = True
        problem = key_problem(authorization, self.keys)
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": problem}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ]
        if has_body:
            # The unread body is still on the wire: do not reuse the connection.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
