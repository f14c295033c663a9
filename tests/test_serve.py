"""`creditrecon serve` stops as ops stop it (systemd's SIGTERM, Ctrl-C's SIGINT), on a real
`prefect server start`, while a nightly run it started is in progress: promptly, with one
line saying so, exit 0, no traceback and none of its processes left."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.prefect_server import PREFECT, PrefectServer
from tests.test_schedule import CREDITRECON, FINISHED

STOPPED = (
    "creditrecon serve: stopped; any run it had started is cancelled, leaving the published "
    "warehouse as it was, and the schedules wait until `creditrecon serve` runs again"
)


def group(pgid: int) -> list[str]:
    """The processes still in the process group (serve and the runs it started)."""
    ps = subprocess.run(
        ["ps", "-o", "pid=,args=", "-g", str(pgid)], capture_output=True, text=True, check=False
    )
    return [line.strip() for line in ps.stdout.splitlines() if line.strip()]


def wait_for(what: str, check: object, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.5)


@pytest.mark.parametrize(
    ("sig", "whole_group"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)],
    # `kill PID`; SIGINT to serve alone; Ctrl-C in its terminal (every process of the group).
    ids=["SIGTERM", "SIGINT", "Ctrl-C"],
)
def test_serve_stops_on_a_signal_with_a_run_in_progress(
    prefect_server_api: PrefectServer, tmp_path: Path, sig: signal.Signals, whole_group: bool
) -> None:
    server = prefect_server_api
    data = shutil.copytree(
        REPO / "data" / "demo", tmp_path / "agency", ignore=shutil.ignore_patterns("warehouse")
    )
    warehouse = tmp_path / "out" / "credits.duckdb"
    log = tmp_path / "serve.log"
    env = server.env(PREFECT_RUNNER_POLL_FREQUENCY="1")
    serve = server.spawn(
        [CREDITRECON, "serve", "--data", str(data), "--warehouse", str(warehouse)], log, env=env
    )
    wait_for("the deployments to be served", lambda: "being served" in log.read_text())

    created = subprocess.run(
        [PREFECT, "deployment", "run", "creditrecon-nightly/nightly"]
        + ["--param", "as_of=2025-11-10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    match = re.search(r"UUID: ([0-9a-f-]{36})", created.stdout)
    assert match, created.stdout
    run_id = match.group(1)

    def state() -> str:
        return str(server.get(f"/flow_runs/{run_id}").json()["state_type"])

    # The run is under way in a process of its own, started by serve.
    wait_for("the nightly run to start", lambda: state() == "RUNNING" and len(group(serve.pid)) > 1)

    started = time.monotonic()
    (os.killpg if whole_group else os.kill)(serve.pid, sig)
    code = serve.wait(timeout=60)
    took = time.monotonic() - started

    out = log.read_text()
    assert code == 0, out[-3000:]
    assert took < 30, f"{took:.1f} s to stop"
    assert "Traceback" not in out and "ERROR" not in out, out[-3000:]
    assert out.strip().splitlines()[-1] == STOPPED
    wait_for("every process of serve to end", lambda: not group(serve.pid), timeout=10)
    # The run it had started is ended on the server, not left running.
    wait_for("the run to be finished", lambda: state() in FINISHED, timeout=30)
    assert state() == "CANCELLED"
    # Nothing half-written is published: the run stopped before it published.
    assert not warehouse.exists()
