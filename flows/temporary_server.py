"""A temporary Prefect server for a command run without PREFECT_API_URL, started before
Prefect is imported.

Prefect starts the same server itself when its client first needs one, but only after
the command has imported Prefect, and it imports the whole server into the command's own
process first. Started here, the server boots in its own process while this one imports
Prefect and the pipeline, and the command waits only for what is left. It is the server
Prefect would start (the same uvicorn app and settings, no UI), on a free loopback port,
stopped when the command ends, and killed with it if the command is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# Prefect's own wording, which flows.preflight.server_hint turns into one line.
TIMED_OUT = "Timed out while attempting to connect to ephemeral Prefect API server."


class TemporaryServer:
    def __init__(self, process: subprocess.Popen[bytes], api_url: str, log: Path) -> None:
        self.process = process
        self.log = log
        self.api_url = api_url

    def wait(self) -> None:
        """Until the server answers, within PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS."""
        limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
        deadline = time.monotonic() + limit
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{TIMED_OUT} The server process exited with code "
                        f"{self.process.returncode} (its log: {self.log})."
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(TIMED_OUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """A loopback port no one listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the server's process: end when the command's process ends, however it ends."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


# The server this process started, if any (so a failure can say which server it was).
started: TemporaryServer | None = None


def start_temporary_server() -> TemporaryServer | None:
    """A temporary server when PREFECT_API_URL is not set (None when it is, or when the user
    turned temporary servers off); PREFECT_API_URL names it for the rest of the command. It
    is stopped when the process exits, after Prefect has sent the run's last logs (exit
    handlers run last first, and this one is registered before Prefect is imported)."""
    global started
    allowed = os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true").lower()
    if os.environ.get("PREFECT_API_URL") or allowed in ("0", "false", "no", "off"):
        return None
    if "prefect" in sys.modules:  # its settings are read: too late to name a server
        return None
    port = free_port()
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "temporary-server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
            + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error"]
            + ["--lifespan", "on"],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            },
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
    started = TemporaryServer(process, f"http://127.0.0.1:{port}/api", log)
    atexit.register(started.stop)
    os.environ["PREFECT_API_URL"] = started.api_url
    return started
