"""An endpoint URL and its headers, split into what is sent and what may be shown.

Credentials in the URL (``user:password@``) move into a Basic ``Authorization`` header; the
URL that is logged, recorded and shown has no user info and ``***`` for every query value.
Every header value, the user info and the query values are secrets: they are redacted from
every message, httpx's own log line included.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from ..exceptions import ConfigurationError
from ._http_messages import HTTPX_LOG_REDACTOR, Secrets
from ._http_transport import httpx


@dataclass(frozen=True)
class Endpoint:
    """Where requests go (``url``, ``headers``) and how the endpoint may be named."""

    url: httpx.URL
    headers: dict[str, str]
    bare_url: str
    public_url: str
    secrets: Secrets


def bare_url(url: httpx.URL) -> str:
    """``url`` without user info, query or fragment."""
    return f"{url.scheme}://{url.netloc.decode('ascii').rpartition('@')[2]}{url.path}"


def public_url(url: httpx.URL) -> str:
    """``url`` as it may be shown: no user info, query values replaced by ``***``."""
    query = [k for k, _ in url.params.multi_items()]
    return bare_url(url) + ("?" + "&".join(f"{k}=***" for k in query) if query else "")


def endpoint(
    url: str, headers: Mapping[str, str] | None, content_type: str, accept: str
) -> Endpoint:
    """The checked endpoint; its secrets are registered with httpx's log redactor."""
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
    secrets += [v for _, v in parsed.params.multi_items()]
    found = Secrets(secrets)
    HTTPX_LOG_REDACTOR.register(found)
    return Endpoint(
        url=parsed.copy_with(username=None, password=None, fragment=None),
        headers={"Content-Type": content_type, "Accept": accept, **merged},
        bare_url=bare_url(parsed),
        public_url=public_url(parsed),
        secrets=found,
    )
