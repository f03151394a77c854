"""API keys: ``Authorization: Bearer <key>``, compared in constant time, never logged."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


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
            raise HTTPException(
                status_code=401,
                detail="missing API key: send the header 'Authorization: Bearer <key>'",
                headers=_CHALLENGE,
            )
        if not key_matches(credentials.credentials, configured):
            raise HTTPException(status_code=401, detail="invalid API key", headers=_CHALLENGE)

    return require_key
