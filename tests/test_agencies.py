"""Many agencies on one work pool, as an operator runs them: a real `prefect server start`,
`creditrecon deploy-agencies` from one agencies file, a process work pool served by two
`prefect worker start` processes, and three agencies of different data. Every night
completes, and each warehouse equals that agency's own `creditrecon nightly`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from generators.synthetic import generate
from tests.conftest import REPO
from tests.prefect_server import PREFECT, PrefectServer, prefect_server, quiet_prefect_env

CREDITRECON = str(Path(sys.executable).parent / "creditrecon")
FINISHED = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# When the inputs were ingested: wall-clock times of each run, not results.
# What differs between two runs of the same data: when the files were ingested, and which
# flow run published the warehouse.
WALL_CLOCK = {
    "ingest_manifest": ["ingested_at"],
    "ledger_entries": ["recorded_at"],
    "run_info": ["published_by"],
    "alerts": ["first_raised_at"],  # when the nightly run that raised it started
}


def creditrecon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CREDITRECON, *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=600,
        check=False,
    )


def demo_copy(root: Path) -> Path:
    return shutil.copytree(REPO / "data" / "demo", root, ignore=shutil.ignore_patterns("warehouse"))


def agencies_file(root: Path, text: str) -> Path:
    path = root / "agencies.toml"
    path.write_text(text)
    return path


# --- mistakes: one line naming the problem, exit 1, nothing registered -----------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[[agency]]\nname = "north"\ndata = "missing"\n', "data folder"),
        (
            '[[agency]]\nname = "north"\ndata = "a"\n[[agency]]\nname = "north"\ndata = "b"\n',
            "agency name 'north' is listed twice",
        ),
        (
            '[[agency]]\nname = "north"\ndata = "a"\nwarehouse = "w/x.duckdb"\n'
            '[[agency]]\nname = "south"\ndata = "b"\nwarehouse = "./w/../w/x.duckdb"\n',
            "agencies 'north' and 'south' share the warehouse",
        ),
        (
            '[[agency]]\nname = "north"\ndata = "a"\n[[agency]]\nname = "south"\ndata = "a"\n',
            "agencies 'north' and 'south' share the warehouse",  # both default to a/warehouse/
        ),
        ('[[agency]]\nname = "north"\ndata = "a"\ntimezone = "Mars/Olympus"\n', "time zone"),
        ('[[agency]]\nname = "north"\ndata = "a"\nas_of = "10/11/2025"\n', "not a date"),
        ('[[agency]]\nname = "north"\ndata = "a"\nwarehose = "x"\n', "unknown key 'warehose'"),
        ('[[agency]]\nname = "north east"\ndata = "a"\n', "name must be"),
        ('[[agency]]\nname = "north"\n', "no data folder"),
        ("[[agency]\n", "not valid TOML"),
        ("", "no [[agency]] tables"),
    ],
)
def test_a_mistake_in_the_agencies_file_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "config").mkdir(parents=True)
    path = agencies_file(tmp_path, text)
    # An API URL nobody answers: a mistake must be caught before the server is needed.
    env = {**quiet_prefect_env(tmp_path / "home"), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    run = creditrecon("deploy-agencies", str(path), "--pool", "agencies", env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], run.stdout + run.stderr
    assert "Traceback" not in run.stderr and str(path) in lines[0]


def test_an_agency_with_broken_settings_is_caught_before_anything_is_registered(
    tmp_path: Path,
) -> None:
    demo_copy(tmp_path / "a")
    (tmp_path / "a" / "config" / "settings.toml").write_text(
        'reporting_timezone = "Mars/Olympus"\n'
    )
    path = agencies_file(
        tmp_path, '[[agency]]\nname = "north"\ndata = "a"\ntimezone = "Europe/Paris"\n'
    )
    env = {**quiet_prefect_env(tmp_path / "home"), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    run = creditrecon("deploy-agencies", str(path), "--pool", "agencies", env=env)
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stdout + run.stderr
    assert (
        "agency 'north'" in lines[0] and "settings.toml" in lines[0] and "Mars/Olympus" in lines[0]
    )


def test_a_missing_file_or_server_is_one_line(tmp_path: Path) -> None:
    env = quiet_prefect_env(tmp_path / "home")
    run = creditrecon("deploy-agencies", str(tmp_path / "nope.toml"), "--pool", "p", env=env)
    assert (run.returncode, run.stdout.strip()) == (
        1,
        f"creditrecon deploy-agencies failed: {tmp_path / 'nope.toml'}: no such file",
    )
    demo_copy(tmp_path / "a")
    path = agencies_file(tmp_path, '[[agency]]\nname = "north"\ndata = "a"\n')
    run = creditrecon("deploy-agencies", str(path), "--pool", "p", env=env)
    assert run.returncode == 1 and "PREFECT_API_URL is not set" in run.stdout, run.stdout
    run = creditrecon(
        "deploy-agencies",
        str(path),
        "--pool",
        "p",
        env={**env, "PREFECT_API_URL": "http://127.0.0.1:9/api"},
    )
    lines = run.stdout.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1 and "cannot be reached" in lines[0], run.stdout
    assert "Traceback" not in run.stderr


# --- three agencies, one pool, two workers ----------------------------------------------


def table_rows(warehouse: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table of a warehouse, its rows sorted, without the columns of WALL_CLOCK."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [
            t
            for (t,) in con.sql(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1"
            ).fetchall()
        ]
        out = {}
        for t in tables:
            skip = ", ".join(f'"{c}"' for c in WALL_CLOCK.get(t, []))
            exclude = f"EXCLUDE ({skip})" if skip else ""
            out[t] = con.sql(f'SELECT * {exclude} FROM "{t}" ORDER BY ALL').fetchall()
        return out
    finally:
        con.close()


def wait_finished(server: PrefectServer, run_ids: list[str], timeout: float = 900) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [dict(server.get(f"/flow_runs/{run_id}").json()) for run_id in run_ids]
        if all(r["state_type"] in FINISHED for r in runs):
            return runs
        time.sleep(2)
    raise AssertionError(f"runs not finished: {[r['state_type'] for r in runs]}")


def ran_by(logs: dict[str, Path], run_name: str) -> list[str]:
    """The workers whose log says they started the flow run (several may try to take it;
    the server lets one)."""
    line = f"Flow run '{run_name}' submitted to infrastructure"
    return sorted(worker for worker, log in logs.items() if line in log.read_text())


def test_three_agencies_on_one_pool_with_two_workers(tmp_path: Path) -> None:
    # Three agencies with different data: the demo, and two synthetic histories.
    demo_copy(tmp_path / "agencies" / "harbor")
    generate(tmp_path / "agencies" / "meadow", records=3_000, clients=4, months=3, seed=1)
    generate(tmp_path / "agencies" / "summit", records=6_000, clients=6, months=4, seed=2)
    config = agencies_file(
        tmp_path,
        """
[[agency]]
name = "harbor"
data = "agencies/harbor"
warehouse = "warehouses/harbor.duckdb"
as_of = 2025-11-10

[[agency]]
name = "meadow"
data = "agencies/meadow"
warehouse = "warehouses/meadow.duckdb"
as_of = "2025-04-02"

[[agency]]
name = "summit"
data = "agencies/summit"
as_of = "2025-05-02"
timezone = "America/New_York"
""",
    )
    warehouses = {
        "harbor": (tmp_path / "warehouses" / "harbor.duckdb", "2025-11-10"),
        "meadow": (tmp_path / "warehouses" / "meadow.duckdb", "2025-04-02"),
        "summit": (
            tmp_path / "agencies" / "summit" / "warehouse" / "creditrecon.duckdb",
            "2025-05-02",
        ),
    }
    with prefect_server(tmp_path / "prefect") as server:
        deployed = creditrecon(
            "deploy-agencies", str(config), "--pool", "agencies", env=server.env()
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "3 agencies on pool agencies" in deployed.stdout

        # Registering again (an agency's settings changed) updates, never duplicates.
        again = creditrecon("deploy-agencies", str(config), "--pool", "agencies", env=server.env())
        assert again.returncode == 0, again.stdout + again.stderr

        pool = server.get("/work_pools/agencies").json()
        assert pool["type"] == "process"
        deployments = {
            f"{d['name']}:{d['entrypoint']}": d
            for d in server.post("/deployments/filter", {"limit": 50}).json()
        }
        assert sorted(deployments) == sorted(
            f"{agency}:{entrypoint}"
            for agency in warehouses
            for entrypoint in ("flows.nightly.month_end_close", "flows.nightly.nightly")
        )
        nightly = {
            name.split(":")[0]: d
            for name, d in deployments.items()
            if name.endswith(":flows.nightly.nightly")
        }
        for agency, (warehouse, as_of) in warehouses.items():
            d = nightly[agency]
            assert d["work_pool_name"] == "agencies"
            assert d["global_concurrency_limit"]["limit"] == 1
            assert d["parameters"] == {
                "data": str(tmp_path / "agencies" / agency),
                "warehouse": str(warehouse),
                "as_of": as_of,
            }
            (schedule,) = d["schedules"]
            assert schedule["schedule"]["cron"] == "0 2 * * *"
            # summit's night starts at 02:00 New York time; the others in their reporting
            # zone (none set: UTC)
            assert schedule["schedule"]["timezone"] == (
                "America/New_York" if agency == "summit" else "UTC"
            )

        # Two workers, one night at a time each, polling every second.
        worker_env = server.env(PREFECT_WORKER_QUERY_SECONDS="1")
        worker_logs = {name: tmp_path / f"{name}.log" for name in ("worker-a", "worker-b")}
        for name, log in worker_logs.items():
            server.spawn(
                [PREFECT, "worker", "start", "--pool", "agencies", "--limit", "1", "--name", name],
                log,
                env=worker_env,
            )
        # Tonight, for all three at once (what the 02:00 schedule does).
        run_ids = [
            server.post(f"/deployments/{nightly[agency]['id']}/create_flow_run", {}).json()["id"]
            for agency in warehouses
        ]
        runs = wait_finished(server, run_ids)
        logs = "".join(log.read_text()[-3000:] for log in worker_logs.values())
        assert [r["state_type"] for r in runs] == ["COMPLETED"] * 3, logs
        # Each night was run by exactly one worker, and with one night each at a time
        # three nights needed both.
        workers = [ran_by(worker_logs, r["name"]) for r in runs]
        assert all(len(w) == 1 for w in workers), workers
        assert {w[0] for w in workers} == {"worker-a", "worker-b"}

        # Each agency alone, through the single-agency command, gives the same warehouse.
        for agency, (warehouse, as_of) in warehouses.items():
            alone = tmp_path / "alone" / f"{agency}.duckdb"
            run = creditrecon(
                "nightly",
                "--data",
                str(tmp_path / "agencies" / agency),
                "--warehouse",
                str(alone),
                "--as-of",
                as_of,
                env=server.env(),
            )
            assert run.returncode == 0, run.stdout + run.stderr
            pooled, single = table_rows(warehouse), table_rows(alone)
            assert len(pooled) >= 16 and len(pooled["ledger_entries"]) > 20
            for table in single:
                assert pooled[table] == single[table], f"{agency}: {table} differs"
            assert pooled.keys() == single.keys()
        # Different data: no two agencies published the same ledger.
        ledgers = [len(table_rows(w)["ledger_entries"]) for w, _ in warehouses.values()]
        assert len(set(ledgers)) == 3, ledgers
    # Everything started through the server (the workers, the server) is stopped.
    assert all(p.poll() is not None for p in server.processes)


def test_an_agency_dropped_from_the_file_is_removed_from_the_pool(tmp_path: Path) -> None:
    for name in ("harbor", "meadow"):
        demo_copy(tmp_path / "agencies" / name)
    both = '[[agency]]\nname = "harbor"\ndata = "agencies/harbor"\n\n'
    both += '[[agency]]\nname = "meadow"\ndata = "agencies/meadow"\n'
    with prefect_server(tmp_path / "prefect") as server:
        config = agencies_file(tmp_path, both)
        first = creditrecon("deploy-agencies", str(config), "--pool", "agencies", env=server.env())
        assert first.returncode == 0, first.stdout + first.stderr
        # A deployment on the same pool that deploy-agencies did not make.
        flow = server.post("/flows/", {"name": "someone-elses-flow"}).json()
        server.post(
            "/deployments/",
            {"name": "keep-me", "flow_id": flow["id"], "work_pool_name": "agencies"},
        ).raise_for_status()

        config = agencies_file(tmp_path, '[[agency]]\nname = "harbor"\ndata = "agencies/harbor"\n')
        second = creditrecon("deploy-agencies", str(config), "--pool", "agencies", env=server.env())
        assert second.returncode == 0, second.stdout + second.stderr
        assert "removed creditrecon-nightly/meadow from pool agencies" in second.stdout
        assert "removed creditrecon-month-end-close/meadow from pool agencies" in second.stdout
        left = sorted(d["name"] for d in server.post("/deployments/filter", {"limit": 50}).json())
        assert left == ["harbor", "harbor", "keep-me"]
        # Its data folder is the operator's: nothing there is touched.
        assert (tmp_path / "agencies" / "meadow" / "config" / "clients.csv").is_file()

        # Deploying the same file again removes nothing more.
        third = creditrecon("deploy-agencies", str(config), "--pool", "agencies", env=server.env())
        assert third.returncode == 0 and "removed" not in third.stdout, third.stdout
    assert all(p.poll() is not None for p in server.processes)
