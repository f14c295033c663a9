"""The nightly flow run end to end, through the `creditrecon` command, under a real
(temporary) Prefect API server."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx

from tests.conftest import write_folder
from tests.test_monthly_balances import EXPECTED, LISTING, SCENARIO, contacts
from transforms.runner import models

CREDITRECON = str(Path(sys.executable).parent / "creditrecon")


def nightly(
    api_url: str, data: Path, warehouse: Path, *more: str
) -> subprocess.CompletedProcess[str]:
    """`creditrecon nightly` on a folder and warehouse, as of the scenario's date."""
    return creditrecon(
        api_url,
        "nightly",
        "--data",
        str(data),
        "--warehouse",
        str(warehouse),
        "--as-of",
        "2025-03-10",
        *more,
    )


def creditrecon(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [CREDITRECON, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_nightly_command_runs_the_flow_and_publishes(prefect_api: str, tmp_path: Path) -> None:
    data = write_folder(tmp_path / "agency", SCENARIO)
    warehouse = tmp_path / "out" / "warehouse.duckdb"
    run = nightly(prefect_api, data, warehouse)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "15 files, 44 rows read: 42 loaded, 2 quarantined" in out
    # Quiet: only the files with a problem are listed, the rest counted.
    assert "Input files with a problem" in out
    assert "e8.csv" in out and "listing.csv" in out and "e1.csv" not in out
    assert "13 other files loaded with every row (--verbose lists them)" in out
    assert "Clients, March 2025 as of 2025-03-10" in out
    # the summary row for acme: available 4, charged 1, overage 0, remaining 3, forfeited 0,
    # free re-exports 1; at this pace 3 by month end, 1 to forfeit, 0.1 a day needed
    acme = next(line for line in out.splitlines() if " acme " in line)
    assert [c.strip() for c in acme.split("│")[1:-1]] == [
        "zoominfo",
        "acme",
        "4",
        "1",
        "0",
        "3",
        "0",
        "1",
        "3",
        "1",
        "0",
        "0.1",
    ]

    con = duckdb.connect(str(warehouse), read_only=True)
    got = {
        (c, str(m)): (b, a, ch, cl)
        for c, m, b, a, ch, cl in con.sql(
            "SELECT client_id, month, baseline_credits, available_credits, charged_credits, "
            "closing_balance FROM monthly_balances"
        ).fetchall()
    }
    con.close()
    assert got == {k: (v[0], v[6], v[7], v[12]) for k, v in EXPECTED.items()}

    # The run is recorded in Prefect as a completed flow run with its two tasks.
    # (Plain HTTP: this prefect client's filter calls send nulls its own server rejects.)
    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={"limit": 50}).json()
    flows = {
        f["id"]: f["name"]
        for f in httpx.post(f"{prefect_api}/flows/filter", json={"limit": 50}).json()
    }
    assert ("creditrecon-nightly", "COMPLETED") in [
        (flows[r["flow_id"]], r["state_type"]) for r in runs
    ]
    tasks = httpx.post(f"{prefect_api}/task_runs/filter", json={"limit": 50}).json()
    assert {t["task_key"].split("-")[0] for t in tasks if t["state_type"] == "COMPLETED"} >= {
        "ingest_inbox",
        "build_warehouse",
    }
    # Each build step's time is in the run's log, in the order the steps ran.
    latest = httpx.post(
        f"{prefect_api}/flow_runs/filter", json={"limit": 50, "sort": "START_TIME_DESC"}
    ).json()
    nightly_run = next(r for r in latest if flows[r["flow_id"]] == "creditrecon-nightly")
    logs = httpx.post(
        f"{prefect_api}/logs/filter",
        json={"limit": 200, "logs": {"flow_run_id": {"any_": [nightly_run["id"]]}}},
    ).json()
    timed = [
        m.split(":")[0].removeprefix("build ")
        for m in (log["message"] for log in logs)
        if m.startswith("build ") and m.endswith(" s")
    ]
    assert timed == [
        "setup",
        *(m.name for m in models().order),
        "audits",
        "write warehouse file",
        "write disputes and parquet",
    ]
    assert "Warehouse: full rebuild: nothing is published yet." in out
    # The summary is kept with the flow run, as a Markdown artifact.
    artifacts = httpx.post(
        f"{prefect_api}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [nightly_run["id"]]}}},
    ).json()
    (summary,) = [a for a in artifacts if a["key"] == "creditrecon-summary"]
    assert summary["type"] == "markdown"
    assert "15 files, 44 rows read: 42 loaded, 2 quarantined" in summary["data"]
    assert "| zoominfo | acme | 4 | 1 | 0 | 3 | 0 | 1 | 3 | 1 | 0 | 0.1 |" in summary["data"]

    # The next night brings one later export: it is added to the published warehouse.
    write_folder(
        data,
        {
            "inbox/zoominfo/downloads/listing-0309.csv": LISTING
            + "E9,mar,e9.csv,alice@agency.test,2025-03-09 10:00:00,Contacts,2,1\n",
            "inbox/zoominfo/exports/e9.csv": contacts(501, 502),  # 501: re-export (E7)
        },
    )
    again = nightly(prefect_api, data, warehouse)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Warehouse: incremental: 2 new files added to the published warehouse." in again.stdout
    acme = next(line for line in again.stdout.splitlines() if " acme " in line)
    # charged 2 (was 1), remaining 2 (was 3), free re-exports 2 (was 1)
    assert [c.strip() for c in acme.split("│")[1:-1]][3:8] == ["2", "0", "2", "0", "2"]
    # Ops can ask for a full rebuild; it gives the same figures.
    rebuilt = nightly(prefect_api, data, warehouse, "--full-rebuild", "--verbose")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "Warehouse: full rebuild: asked for." in rebuilt.stdout
    assert "e1.csv" in rebuilt.stdout  # --verbose lists every file
    # A night that brings nothing says so, and nothing else.
    same = nightly(prefect_api, data, warehouse)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.strip() == (
        "Nothing new since the last run: the warehouse as of 2025-03-10 is unchanged."
    )
    status = creditrecon(prefect_api, "status", "--warehouse", str(warehouse))
    assert status.returncode == 0, status.stdout + status.stderr
    assert "As of: 2025-03-10 (UTC)" in status.stdout
    assert "Built: full rebuild: asked for" in status.stdout
    assert "By: creditrecon-nightly/" in status.stdout
    # After the second night Acme's pace is an overage; its first night's forfeit no longer holds.
    assert "Alerts: 3 standing (the alerts table):" in status.stdout
    assert "  - Acme is on pace to use 6 ZoomInfo credits in March 2025, 2 more" in status.stdout
    assert "Acme is on pace to forfeit" not in status.stdout
    assert "Quarantine: 2 rows wait" in status.stdout
    assert "inbox/zoominfo/exports/e8.csv: loaded, 1 rows quarantined" in status.stdout
    assert next(line for line in rebuilt.stdout.splitlines() if " acme " in line) == acme


def test_second_concurrent_run_is_refused_clearly(prefect_api: str, tmp_path: Path) -> None:
    data = write_folder(tmp_path / "agency", SCENARIO)
    warehouse = tmp_path / "warehouse.duckdb"
    with open(warehouse.with_name(warehouse.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("pid 4242")
        lock.flush()
        before = httpx.post(f"{prefect_api}/flow_runs/count", json={}).json()
        run = nightly(prefect_api, data, warehouse)
        # Told before Prefect starts: no flow run was created for it.
        assert httpx.post(f"{prefect_api}/flow_runs/count", json={}).json() == before
    assert run.returncode == 1
    assert "is being built by pid 4242; try again later" in run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stdout + run.stderr
    assert not warehouse.exists()
    # A holder that died (killed, say) leaves its lock file naming it, but not the lock.
    assert warehouse.with_name(warehouse.name + ".lock").read_text() == "pid 4242"
    after = nightly(prefect_api, data, warehouse)
    assert after.returncode == 0, after.stdout + after.stderr
    assert warehouse.exists()


def test_bad_arguments_are_explained(tmp_path: Path) -> None:
    run = creditrecon("", "nightly", "--data", str(tmp_path / "nope"))
    assert run.returncode == 2
    assert "is not a folder" in run.stderr
    run = creditrecon("", "nightly", "--as-of", "10/11/2025", "--data", str(tmp_path))
    assert run.returncode == 2
    assert "is not a date like 2025-11-10" in run.stderr


def test_nightly_deployment_is_scheduled_at_two_in_the_reporting_time_zone(
    prefect_api: str, tmp_path: Path
) -> None:
    from flows.deployments import nightly_deployment

    data = write_folder(
        tmp_path / "agency",
        {**SCENARIO, "config/settings.toml": 'reporting_timezone = "America/New_York"\n'},
    )
    nightly_deployment(data, tmp_path / "w.duckdb").apply()
    deployments = httpx.post(f"{prefect_api}/deployments/filter", json={"limit": 10}).json()
    (deployment,) = [d for d in deployments if d["name"] == "nightly"]
    assert deployment["name"] == "nightly"
    (schedule,) = deployment["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"] == "America/New_York"
    assert deployment["parameters"] == {
        "data": str(data.resolve()),
        "warehouse": str((tmp_path / "w.duckdb").resolve()),
    }
    assert deployment["concurrency_limit"] == 1 or deployment.get("global_concurrency_limit")


def test_only_io_errors_are_retried() -> None:
    from prefect.states import Failed

    from flows.nightly import _transient

    assert _transient(None, None, Failed(data=OSError("file still being copied")))
    assert not _transient(None, None, Failed(data=ValueError("a bug")))


def test_close_command_freezes_a_month(prefect_api: str, tmp_path: Path) -> None:
    data = write_folder(tmp_path / "agency", SCENARIO)
    warehouse = tmp_path / "w.duckdb"
    run = creditrecon(
        prefect_api,
        "close",
        "2025-01",
        "--data",
        str(data),
        "--warehouse",
        str(warehouse),
        "--as-of",
        "2025-03-10",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Closed January 2025." in run.stdout
    con = duckdb.connect(str(warehouse), read_only=True)
    closed = con.sql(
        "SELECT DISTINCT month::VARCHAR FROM monthly_balances WHERE is_closed"
    ).fetchall()
    con.close()
    assert closed == [("2025-01-01",)]
    again = creditrecon(
        prefect_api,
        "close",
        "2025-01",
        "--data",
        str(data),
        "--warehouse",
        str(warehouse),
        "--as-of",
        "2025-03-10",
    )
    assert again.returncode == 1
    assert "2025-01 is already closed" in again.stderr


def test_month_end_close_is_scheduled_on_the_first(prefect_api: str, tmp_path: Path) -> None:
    from flows.deployments import close_deployment

    data = write_folder(tmp_path / "agency", SCENARIO)
    close_deployment(data, tmp_path / "w.duckdb").apply()
    deployments = httpx.post(f"{prefect_api}/deployments/filter", json={"limit": 20}).json()
    (close,) = [d for d in deployments if d["name"] == "month-end-close"]
    assert close["schedules"][0]["schedule"]["cron"] == "0 4 1 * *"


def test_a_temporary_server_run_is_quiet_and_a_slow_one_says_what_to_do(tmp_path: Path) -> None:
    """Without PREFECT_API_URL the command starts a temporary Prefect server: nothing from
    Prefect on the terminal (no telemetry errors, no `database is locked`), and a server
    that does not start in time ends in one line saying what to do."""
    data = write_folder(tmp_path / "agency", SCENARIO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")

    def run(warehouse: str, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CREDITRECON, "nightly", "--data", str(data), "--warehouse", str(tmp_path / warehouse)]
            + ["--as-of", "2025-03-10"],
            capture_output=True,
            text=True,
            env={**env, **more},
            timeout=300,
            check=False,
        )

    ok = run("w.duckdb")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stderr == ""
    # The command started the server itself, before importing Prefect (docs/startup.md).
    assert (tmp_path / "prefect" / "temporary-server.log").exists()
    assert "15 files, 44 rows read: 42 loaded, 2 quarantined" in ok.stdout

    slow = run("slow.duckdb", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0")
    assert slow.returncode == 1
    assert slow.stderr.strip() == (
        "creditrecon nightly: the temporary Prefect server did not start within 0 s; raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with `prefect server "
        "start` and set PREFECT_API_URL"
    )
    assert not (tmp_path / "slow.duckdb").exists()


def test_a_night_on_a_busy_machine_completes_with_a_temporary_server(tmp_path: Path) -> None:
    """The demo's night without PREFECT_API_URL while three CPU-bound processes keep this
    2-core machine busy: the temporary server still answers in time, the night publishes,
    and nothing from Prefect (no ERROR line, no traceback) reaches the terminal."""
    import shutil

    demo = Path(__file__).resolve().parent.parent / "data" / "demo"
    data = tmp_path / "demo"
    shutil.copytree(demo / "config", data / "config")
    shutil.copytree(demo / "inbox", data / "inbox")
    warehouse = tmp_path / "w.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    burn = [sys.executable, "-c", "while True: pass"]
    burners = [subprocess.Popen(burn) for _ in range(3)]
    try:
        run = subprocess.run(
            [CREDITRECON, "nightly", "--data", str(data), "--warehouse", str(warehouse)]
            + ["--as-of", "2025-11-10"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
    finally:
        for b in burners:
            b.kill()
            b.wait()
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Traceback" not in out and "ERROR" not in out, out
    assert run.stderr == ""
    assert "Warehouse: full rebuild: nothing is published yet." in run.stdout
    with duckdb.connect(str(warehouse), read_only=True) as con:
        clients = con.execute(
            "SELECT DISTINCT client_id FROM monthly_balances WHERE client_id <> 'unassigned'"
        ).fetchall()
    assert sorted(c for (c,) in clients) == ["bluepoint", "crestline", "harborview", "northwind"]


def test_as_of_after_today_runs_only_when_asked(prefect_api: str, tmp_path: Path) -> None:
    import datetime as dt

    data = write_folder(tmp_path / "agency", SCENARIO)
    later = str(dt.date.today() + dt.timedelta(days=3))
    args = ["nightly", "--data", str(data), "--warehouse", str(tmp_path / "w.duckdb")]
    refused = creditrecon(prefect_api, *args, "--as-of", later)
    assert refused.returncode == 1
    assert f"--as-of {later} is after today" in refused.stderr
    anyway = creditrecon(prefect_api, *args, "--as-of", later, "--as-of-anyway")
    assert anyway.returncode == 0, anyway.stdout + anyway.stderr
    assert f"as of {later}" in anyway.stdout
