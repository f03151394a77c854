"""A throwaway PostgreSQL cluster for tests: ``initdb`` into a temporary directory, serve it on
a Unix socket inside that directory only, and remove it afterwards.

Never touches a system cluster. When run as root (initdb refuses to), the server binaries run as
the ``postgres`` system user created by the Debian package, through ``runuser``. Every step has
a timeout, so a stuck server fails the test instead of hanging it.

The cluster trusts local connections (it is reachable only through a socket in a private
directory) and has two roles: ``postgres``, the superuser (plays the administrator who can
disable triggers), and ``sxai``, an ordinary role that owns the test databases (plays the
application: the store must work without superuser rights).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STEP_TIMEOUT = 60.0  # seconds for initdb, start and stop each
APP_ROLE = "sxai"
SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb, pg_ctl and postgres."""
    candidates = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        bindir = Path(path)
        if all((bindir / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            version = bindir.parent.name
            candidates.append((int(version) if version.isdigit() else 0, bindir))
    if candidates:
        return max(candidates)[1]
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    return None


def missing_reason() -> str | None:
    """Why a throwaway cluster cannot be started here, or None if it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]>=3.1')"
    if find_bindir() is None:
        return "the PostgreSQL server binaries are missing (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' system user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway cluster; :meth:`create_database` hands out fresh databases."""

    bindir: Path
    root: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str, user: str = APP_ROLE) -> str:
        return (
            f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}&port={self.port}"
            "&connect_timeout=10"
        )

    def connect(self, database: str = "postgres", user: str = SUPERUSER, **kwargs: object):
        """A raw psycopg connection (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            dbname=database,
            user=user,
            connect_timeout=10,
            **kwargs,  # type: ignore[arg-type]
        )

    def create_database(self, prefix: str = "audit") -> str:
        """A new empty database owned by the application role."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self.connect() as con:
            con.execute(f'CREATE DATABASE "{name}" OWNER {APP_ROLE} TEMPLATE template0')
        return name


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        _as_postgres(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )


def _kill_postmaster(datadir: Path) -> None:
    """Last resort when pg_ctl stop fails: SIGKILL the postmaster named in postmaster.pid."""
    try:
        pid = int((datadir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def _log_tail(root: Path) -> str:
    try:
        return (root / "server.log").read_text()[-4000:]
    except OSError:
        return ""


def start_server() -> Iterator[PostgresServer]:
    """Generator for a pytest fixture: yields a running cluster, then stops and removes it."""
    bindir = find_bindir()
    assert bindir is not None, missing_reason()
    # A short path: the socket path (root/.s.PGSQL.<port>) must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="sxai-pg-"))
    started = False
    try:
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(root, pg.pw_uid, pg.pw_gid)
        server = PostgresServer(bindir=bindir, root=root, port=_free_port())
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(server.datadir),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=root,
        )
        options = " ".join(
            [
                f"-k {root}",
                f"-p {server.port}",
                "-c listen_addresses=''",
                # Throwaway data: skip durability work to keep the tests fast.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=60",
                # Nothing a test runs may hang: a stuck statement fails after a minute.
                "-c statement_timeout=60000",
                "-c idle_in_transaction_session_timeout=60000",
            ]
        )
        started = True  # from here on, the finalizer tries to stop whatever was started
        try:
            _run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(server.datadir),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(STEP_TIMEOUT)),
                    "start",
                ],
                cwd=root,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{exc}\nserver log:\n{_log_tail(root)}") from exc
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:  # pg_ctl -w waited already; this only guards the first connection
            try:
                with server.connect() as con:
                    con.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        if started:
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(root / "data"),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        "30",
                        "stop",
                    ],
                    cwd=root,
                )
            except (RuntimeError, subprocess.TimeoutExpired):
                _kill_postmaster(root / "data")
        shutil.rmtree(root, ignore_errors=True)
