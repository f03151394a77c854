"""``sxai serve``: the REST service (FastAPI on uvicorn).

Everything is loaded and checked before the server starts, so a bad model, background,
catalogue, store URL, an unreadable or missing key, a port in use or a host that does not
resolve ends with a one-line error and exit code 2, never with a server that answers 500 to
every request or with uvicorn's log lines.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from ..explainers import registry
from ..service.settings import API_KEYS_ENV

logger = logging.getLogger(__name__)


def check_listen_address(host: str, port: int) -> None:
    """Fail with a one-line :class:`InputError` unless ``host:port`` can be listened on.

    Binds (and closes) a socket on every address ``host`` resolves to, as asyncio's
    ``create_server`` (uvicorn's) does: with ``SO_REUSEADDR`` on POSIX, so a port in
    ``TIME_WAIT`` passes and one with a listener does not, and IPv6 addresses IPv6-only.
    """
    import socket

    from ..exceptions import InputError

    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise InputError(f"--host {host!r} cannot be resolved ({reason})") from None
    for family, kind, proto, _, address in dict.fromkeys(
        (i[0], i[1], i[2], i[3], i[4]) for i in infos
    ):
        with socket.socket(family, kind, proto) as sock:
            try:
                if os.name == "posix":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
            except OSError as exc:
                where = (
                    f"[{address[0]}]:{port}"
                    if family == socket.AF_INET6
                    else f"{address[0]}:{port}"
                )
                raise InputError(
                    f"cannot listen on {where} (--host {host} --port {port}): {exc.strerror or exc}"
                ) from None


def serve(
    model: Annotated[Path, typer.Argument(help="The ONNX model file.", show_default=False)],
    background: Annotated[
        Path, typer.Option("--background", help="CSV of reference rows.", show_default=False)
    ],
    catalogue: Annotated[
        Path | None, typer.Option("--catalogue", help="Reason-code catalogue (YAML).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Audit store URL (sqlite:///audit.db) or a SQLite file path."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="TCP port (0: any free port).", min=0, max=65535)
    ] = 8000,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            "--api-key-file",
            help=f"File of API keys (one per line or comma-separated), added to ${API_KEYS_ENV}.",
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve /v1 without API keys (trusted networks).")
    ] = False,
    max_rows: Annotated[int, typer.Option("--max-rows", help="Rows per request, at most.")] = 100,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", help="Request body size in bytes, at most.")
    ] = 1_000_000,
    max_evals: Annotated[
        int,
        typer.Option(
            "--max-evals", help="Model rows per explained row, at most (and the default)."
        ),
    ] = 20_000,
    method: Annotated[
        str,
        typer.Option(
            "--method", help=f"Default method: {', '.join(registry.names(service_safe=True))}."
        ),
    ] = "kernelshap",
    seed: Annotated[int, typer.Option("--seed", help="Default seed of a request.")] = 0,
    workers: Annotated[
        int, typer.Option("--workers", help="Threads that run explanations concurrently.")
    ] = 2,
) -> None:
    """Serve explanations over HTTP: POST /v1/explanations, GET /v1/model, GET /healthz."""
    # Imported here so that `sxai --help` and the other commands do not pay for FastAPI.
    from ._common import fail, store_url, user_errors

    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        fail(
            f"sxai serve needs the service extra ({exc.name} is missing): pip install 'surrogate-xai[service]'"
        )
    with user_errors():
        from ..service.app import create_app
        from ..service.engine import Engine
        from ..service.settings import ServiceSettings, keys_from

        keys = () if no_auth else keys_from(api_key_file)
        settings = ServiceSettings(
            model=model,
            background=background,
            catalogue=catalogue,
            store=None if store is None else store_url(store),
            api_keys=keys,
            auth=not no_auth,
            max_rows=max_rows,
            max_body_bytes=max_body_bytes,
            max_evals=max_evals,
            method=method,  # checked by ServiceSettings against the registry
            seed=seed,
            workers=workers,
        )
        engine = Engine.load(settings)
        app = create_app(settings, engine=engine)
        # uvicorn reports a port in use or a host that does not resolve with its own log
        # lines and exit code 3; checked here it is one line and exit 2 like every other
        # start-up mistake. (Another process could still take the port in the moment
        # between this check and uvicorn's bind; then uvicorn's own message stands.)
        check_listen_address(host, port)
        if no_auth:
            logger.warning("serving without authentication (--no-auth)")
    # log_level "info" prints the bound address (port 0 picks a free one). uvicorn's own access
    # log would print query strings (a key sent as ?api_key=...): the app logs each request
    # itself, path and status only, never headers (service/access_log.py).
    from ..service.access_log import log_to_stderr

    log_to_stderr()
    uvicorn.run(app, host=host, port=port, log_level="info", workers=1, access_log=False)
