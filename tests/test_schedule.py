"""The schedules as ops run them: a real `prefect server start`, `creditrecon serve` on a copy
of the demo folder, and the server's own scheduler creating the nightly run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO
from tests.prefect_server import PREFECT, PrefectServer, prefect_server

CREDITRECON = str(Path(sys.executable).parent / "creditrecon")
FINISHED = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Served:
    server: PrefectServer
    data: Path
    warehouse: Path
    log: Path

    def deployment(self, name: str) -> dict[str, object]:
        """The served deployment called ``name``, once `serve` has registered it."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            found = self.server.post("/deployments/filter", {"limit": 10}).json()
            named = [d for d in found if d["name"] == name]
            if named:
                return dict(named[0])
            time.sleep(1)
        raise AssertionError(f"no deployment {name!r}: {self.log.read_text()[-3000:]}")

    def runs(self, deployment_id: object) -> list[dict[str, object]]:
        return list(
            self.server.post(
                "/flow_runs/filter",
                {"limit": 50, "flow_runs": {"deployment_id": {"any_": [deployment_id]}}},
            ).json()
        )

    def run_log(self, run_id: object) -> list[str]:
        """Every line of a flow run's log, page by page (the server returns at most 200)."""
        messages: list[str] = []
        while True:
            page = self.server.post(
                "/logs/filter",
                {
                    "limit": 200,
                    "offset": len(messages),
                    "logs": {"flow_run_id": {"any_": [run_id]}},
                },
            ).json()
            messages += [str(log["message"]) for log in page]
            if len(page) < 200:
                return messages

    def wait_finished(self, run_id: object, timeout: float = 300) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = dict(self.server.get(f"/flow_runs/{run_id}").json())
            if run["state_type"] in FINISHED:
                return run
            time.sleep(1)
        raise AssertionError(f"flow run {run_id} not finished: {self.log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("schedule")
    with prefect_server(
        root / "prefect",
        # Look for deployments to schedule every second, and keep at most two runs ahead
        # (the interval below would otherwise queue a hundred).
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="1",
        PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="2",
        PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS="1",
    ) as server:
        data = shutil.copytree(
            REPO / "data" / "demo", root / "agency", ignore=shutil.ignore_patterns("warehouse")
        )
        warehouse = root / "out" / "credits.duckdb"
        log = root / "serve.log"
        # As ops start it, but the nightly deployment every 20 s instead of at 02:00.
        server.spawn(
            [
                CREDITRECON,
                "serve",
                "--data",
                str(data),
                "--warehouse",
                str(warehouse),
                "--nightly-schedule",
                "20",
            ],
            log,
            env=server.env(PREFECT_RUNNER_POLL_FREQUENCY="1"),
        )
        yield Served(server, data, warehouse, log)


def test_the_servers_scheduler_starts_the_nightly_run_and_it_publishes(served: Served) -> None:
    nightly = served.deployment("nightly")
    close = served.deployment("month-end-close")
    # The real schedules are untouched: the close still at 04:00 on the 1st.
    assert close["schedules"][0]["schedule"]["cron"] == "0 4 1 * *"  # type: ignore[index]
    assert nightly["schedules"][0]["schedule"]["interval"] == 20  # type: ignore[index]

    deadline = time.monotonic() + 120
    scheduled: list[dict[str, object]] = []
    while not scheduled and time.monotonic() < deadline:
        scheduled = [r for r in served.runs(nightly["id"]) if r["auto_scheduled"]]
        time.sleep(1)
    assert scheduled, "the server's scheduler created no run"

    first = min(scheduled, key=lambda r: str(r["expected_start_time"]))
    run = served.wait_finished(first["id"])
    assert run["state_type"] == "COMPLETED", served.log.read_text()[-5000:]

    con = duckdb.connect(str(served.warehouse), read_only=True)
    try:
        october, november = con.execute(
            "SELECT available_credits, charged_credits FROM monthly_balances "
            "WHERE client_id = 'bluepoint' AND month IN ('2025-10-01', '2025-11-01') "
            "ORDER BY month"
        ).fetchall()
    finally:
        con.close()
    assert october[0] == 1400  # the standard 1,000 plus the one-time gift of 400
    assert november[1] == 278

    # The run's log gives each file the warehouse's counts: the users.csv row naming an
    # unknown client is quarantined by the rules, after it parsed (10 rows, Lusha's among them).
    # The worker ships log lines in batches, some after the run's final state: read every
    # page of the run's log (at most 200 lines a call) until the line arrives.
    wanted = "loaded config/users.csv: read 10, loaded 9, quarantined 1"
    messages: list[str] = []
    deadline = time.monotonic() + 60
    while not any(m.startswith(wanted) for m in messages) and time.monotonic() < deadline:
        messages = served.run_log(first["id"])
        time.sleep(1)
    assert any(m.startswith(wanted) for m in messages), [m for m in messages if "users" in m]
    # Its summary is kept with it: the run's as-of is today, after the demo's contract.
    artifacts = served.server.post(
        "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [first["id"]]}}}
    ).json()
    (summary,) = [a for a in artifacts if a["key"] == "creditrecon-summary"]
    assert "every contract has ended" in summary["data"]


def test_a_nightly_run_with_parameters_completes(served: Served, tmp_path: Path) -> None:
    served.deployment("nightly")
    other = tmp_path / "trial.duckdb"
    created = subprocess.run(
        [
            PREFECT,
            "deployment",
            "run",
            "creditrecon-nightly/nightly",
            "--param",
            "as_of=2025-11-10",
            "--param",
            f"warehouse={other}",
        ],
        env=served.server.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    match = re.search(r"UUID: ([0-9a-f-]{36})", created.stdout)
    assert match, created.stdout
    run = served.wait_finished(match.group(1))
    assert run["state_type"] == "COMPLETED", served.log.read_text()[-5000:]
    assert run["parameters"]["as_of"] == "2025-11-10"  # type: ignore[index]

    con = duckdb.connect(str(other), read_only=True)
    try:
        (as_of,) = con.execute("SELECT as_of FROM run_info").fetchone() or (None,)
        (closing,) = con.execute(
            "SELECT closing_balance FROM monthly_balances "
            "WHERE client_id = 'bluepoint' AND month = '2025-11-01'"
        ).fetchone() or (None,)
    finally:
        con.close()
    assert str(as_of) == "2025-11-10"
    assert closing == 722  # 1,000 less the 278 charged by 10 November
    artifacts = served.server.post(
        "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
    ).json()
    (summary,) = [a for a in artifacts if a["key"] == "creditrecon-summary"]
    assert "| zoominfo | bluepoint | 1000 | 278 | 0 | 722 |" in summary["data"]
