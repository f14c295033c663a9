"""A real `prefect server start` for tests: its own PREFECT_HOME and loopback port, stopped
with every process it started.

    with prefect_server(tmp_path / "prefect") as server:
        spawn(["creditrecon", "serve", ...], env=server.env())

or the `prefect_server_api` fixture (one server per test module).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from flows.temporary_server import free_port

PREFECT = str(Path(sys.executable).parent / "prefect")
# A busy 2-core machine can take well over Prefect's own 20 s to start a server.
STARTUP_TIMEOUT = float(os.environ.get("CREDITRECON_TEST_SERVER_TIMEOUT", "180"))


def quiet_prefect_env(home: Path) -> dict[str, str]:
    """The environment of every process in a test: its own Prefect home, no telemetry, and no
    API URL or profile inherited from whoever runs the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


@dataclass
class PrefectServer:
    home: Path
    api_url: str
    log: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **more: str) -> dict[str, str]:
        """Environment for a process that talks to this server."""
        return {**quiet_prefect_env(self.home), "PREFECT_API_URL": self.api_url, **more}

    def spawn(
        self, args: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process in its own process group (stopped with the server)."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(args),
                env=env or self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.api_url}{path}", timeout=30)

    def post(self, path: str, body: object) -> httpx.Response:
        response = httpx.post(f"{self.api_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response


def stop(proc: subprocess.Popen[bytes], grace: float = 5) -> None:
    """Stop the process and everything it started (its process group): Ctrl-C first, as
    from a terminal, then harder."""
    if proc.poll() is not None and not _group_alive(proc.pid):
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            time.sleep(0.2)
    proc.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def prefect_server(home: Path, **settings: str) -> Iterator[PrefectServer]:
    """Start `prefect server start` on a free loopback port, wait until its API answers
    /health, yield it, and stop it and every process spawned through it. ``settings`` are
    extra PREFECT_* variables for the server (e.g. a shorter scheduler loop)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = PrefectServer(home, f"http://127.0.0.1:{port}/api", home / "server.log")
    env = {**quiet_prefect_env(home), **settings}
    proc = server.spawn(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        server.log,
        env=env,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {server.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prefect server not healthy after {STARTUP_TIMEOUT:.0f} s: "
                    f"{server.log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield server
    finally:
        for p in reversed(server.processes):
            stop(p)


@pytest.fixture(scope="module")
def prefect_server_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server for a test module, its scheduler looking every second."""
    with prefect_server(
        tmp_path_factory.mktemp("prefect-server"),
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="1",
    ) as server:
        yield server
