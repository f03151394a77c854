"""Real model servers (MLServer, KServe, MLflow) started by the tests on 127.0.0.1.

Each server runs from its own virtualenv under ``.servers/`` (or ``$SXAI_SERVERS_DIR``),
built by ``.ci/servers.sh`` (``make servers``); without it its tests skip, and under
``SXAI_REQUIRE_SYSTEM_TOOLS=1`` they fail. Every server serves ``tests/served_model.py``, binds
to 127.0.0.1 on a free port (checked in ``/proc/net/tcp`` after start), writes its output to
a log file shown when it fails to start, and runs in its own process group, which is
terminated (then killed) when the test module is done.

Under ``pytest -n 2`` each worker that runs a module's tests starts its own server (a
module-scoped fixture, with its own temporary folder and free ports), so workers never share
or race for one. (xdist's ``loadgroup`` would keep them on one worker, but xdist 3.8 with
pytest 9 ignores ``xdist_group``.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.served_model import read_call_log

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SERVERS = Path(os.environ.get("SXAI_SERVERS_DIR", ROOT / ".servers"))
START_TIMEOUT = 120.0  # seconds; MLflow imports a lot before it listens
MODEL_NAME = "score"


def venv(name: str) -> Path:
    return SERVERS / name


def missing_reason(name: str) -> str | None:
    """Why the ``name`` server cannot be started here, or None if it can."""
    if not sys.platform.startswith("linux"):
        return f"the {name} server tests run on Linux only"
    marker = venv(name) / ".installed"
    if not marker.is_file():
        return f"the {name} server virtualenv is missing at {venv(name)} (run `make servers`)"
    return None


def installed_version(name: str, package: str) -> str:
    """The version of ``package`` in the ``name`` server's venv (for messages and docs)."""
    out = subprocess.run(
        [
            str(venv(name) / "bin" / "python"),
            "-c",
            f"import importlib.metadata as m; print(m.version({package!r}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_hosts(port: int) -> set[str]:
    """The local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp*)."""
    hosts: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as fh:
            for line in list(fh)[1:]:
                fields = line.split()
                address, state = fields[1], fields[3]
                host_hex, port_hex = address.split(":")
                if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(host_hex)
                if width == 8:
                    hosts.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    hosts.add(socket.inet_ntop(socket.AF_INET6, words))
    return hosts


@dataclass
class RunningServer:
    """A started server: where it answers, and the files its model writes."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def call_log(self) -> Path:
        return self.workdir / "calls.log"

    @property
    def fail_file(self) -> Path:
        return self.workdir / "fail"

    def calls(self) -> list[int]:
        """Rows of each predict call that reached the model so far."""
        return read_call_log(self.call_log)

    def fail_next(self, times: int) -> None:
        """Make the model raise on the marker row the next ``times`` calls that carry it."""
        self.fail_file.write_text(str(times), encoding="ascii")

    def reset(self) -> None:
        self.call_log.unlink(missing_ok=True)
        self.fail_file.write_text("0", encoding="ascii")


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The server runs in its own session (process group = its pid): MLflow starts uvicorn
    # through bash, so the whole group is ended, and only it.
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@contextlib.contextmanager
def run_server(
    name: str, command: list[str], workdir: Path, port: int, ready_path: str, env: dict[str, str]
) -> Iterator[RunningServer]:
    """Start ``command`` in ``workdir``; yield once ``GET ready_path`` answers 200."""
    log = workdir / "server.log"
    bindir = str(venv(name) / "bin")
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))},
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(TESTS),
        "SXAI_CALL_LOG": str(workdir / "calls.log"),
        "SXAI_FAIL_FILE": str(workdir / "fail"),
        "NO_PROXY": "127.0.0.1,localhost",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = RunningServer(name, port, process, workdir, log)
    server.reset()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the {name} server exited with {process.returncode}:\n{_log_tail(log)}"
                    )
                try:
                    if client.get(f"{server.base}{ready_path}").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the {name} server did not start:\n{_log_tail(log)}")
                time.sleep(0.2)
        yield server
    finally:
        _stop(process)


def _python(name: str) -> str:
    return str(venv(name) / "bin" / "python")


# -- the three servers --------------------------------------------------------------------------
@contextlib.contextmanager
def mlserver(workdir: Path) -> Iterator[RunningServer]:
    """MLServer with its sklearn runtime serving ``served_model.ScoreModel`` (joblib)."""
    model_dir = workdir / MODEL_NAME
    model_dir.mkdir()
    dump = "import joblib, served_model, sys; joblib.dump(served_model.ScoreModel(), sys.argv[1])"
    subprocess.run(
        [_python("mlserver"), "-c", dump, str(model_dir / "model.joblib")],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        check=True,
        timeout=120,
        capture_output=True,
    )
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_endpoint": None,  # no metrics server (another port)
        "parallel_workers": 0,  # inference in the server process: one model instance
        "debug": False,  # as in production: a 500 without a traceback page
    }
    (workdir / "settings.json").write_text(json.dumps(settings))
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "extra": {"predict_fn": "predict_proba"}},
            }
        )
    )
    command = [str(venv("mlserver") / "bin" / "mlserver"), "start", str(workdir)]
    with run_server(
        "mlserver", command, workdir, port, f"/v2/models/{MODEL_NAME}/ready", {}
    ) as server:
        yield server


@contextlib.contextmanager
def kserve(workdir: Path) -> Iterator[RunningServer]:
    """KServe's Python model server with ``tests/servers/kserve_app.py`` (V1 and V2)."""
    port = free_port()
    command = [
        _python("kserve"),
        str(TESTS / "servers" / "kserve_app.py"),
        "--http_port",
        str(port),
    ]
    with run_server(
        "kserve", command, workdir, port, f"/v2/models/{MODEL_NAME}/ready", {}
    ) as server:
        yield server


@contextlib.contextmanager
def mlflow(workdir: Path) -> Iterator[RunningServer]:
    """MLflow's scoring server for a pyfunc model saved by ``tests/servers/mlflow_save.py``."""
    model_dir = workdir / "model"
    subprocess.run(
        [_python("mlflow"), str(TESTS / "servers" / "mlflow_save.py"), str(model_dir)],
        check=True,
        timeout=300,
        capture_output=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}"},
    )
    port = free_port()
    command = [
        str(venv("mlflow") / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    env = {"MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}"}
    with run_server("mlflow", command, workdir, port, "/ping", env) as server:
        yield server
