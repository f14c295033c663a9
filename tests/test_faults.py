"""A run killed at any point (SIGKILL) leaves the published warehouse as it was, and the
next run produces exactly what an uninterrupted run would."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, write_folder
from tests.test_monthly_balances import SCENARIO

FIRST_NIGHT = {k: v for k, v in SCENARIO.items() if not k.endswith(("e6.csv", "e7.csv"))}
MARTS = {
    "monthly_balances": "SELECT * FROM monthly_balances",
    "ledger_entries": "SELECT * EXCLUDE (recorded_at) FROM ledger_entries",
    "credit_lots": "SELECT * FROM credit_lots",
    "forfeitures": "SELECT * FROM forfeitures",
    "quarantine": "SELECT * FROM quarantine",
    "files": "SELECT path, status, rows_read, rows_loaded, rows_quarantined FROM ingest_manifest",
}


def night(data: Path, warehouse: Path, failpoint: str | None = None) -> int:
    """One nightly run in its own process (without Prefect: the flow adds nothing here)."""
    env = {k: v for k, v in os.environ.items() if k != "CREDITRECON_FAILPOINT"}
    if failpoint:
        env["CREDITRECON_FAILPOINT"] = failpoint
    code = (
        "import datetime as dt, sys; from pathlib import Path; "
        "from tests.conftest import run_pipeline; "
        "run_pipeline(Path(sys.argv[1]), Path(sys.argv[2]), dt.date(2025, 3, 10)).close()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(data), str(warehouse)], cwd=REPO, env=env, check=False
    ).returncode


def tables(warehouse: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {name: con.sql(f"{q} ORDER BY ALL").fetchall() for name, q in MARTS.items()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def nights(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, dict[str, list[tuple[object, ...]]]]:
    """A warehouse after night 1, and the tables an uninterrupted night 2 gives."""
    root = tmp_path_factory.mktemp("faults")
    data = write_folder(root / "data", FIRST_NIGHT)
    assert night(data, root / "w1" / "w.duckdb") == 0
    write_folder(data, {k: SCENARIO[k] for k in SCENARIO if k not in FIRST_NIGHT})
    shutil.copytree(root / "w1", root / "w2")
    assert night(data, root / "w2" / "w.duckdb") == 0
    return data, root / "w1", tables(root / "w2" / "w.duckdb")


@pytest.mark.parametrize(
    "point",
    [
        "ingest:batch:1",
        "ingest:in-transaction",
        "build:step:charges",
        "build:step:lot_draws",
        "build:step:quarantine",
        "build:write",
        "build:publish",
    ],
)
def test_killed_run_changes_nothing_and_the_next_run_catches_up(
    nights: tuple[Path, Path, dict[str, list[tuple[object, ...]]]], point: str, tmp_path: Path
) -> None:
    data, after_night_1, uninterrupted = nights
    shutil.copytree(after_night_1, tmp_path / "w")
    warehouse = tmp_path / "w" / "w.duckdb"
    published = tables(warehouse)

    assert night(data, warehouse, failpoint=point) == -signal.SIGKILL
    assert tables(warehouse) == published

    assert night(data, warehouse) == 0
    assert tables(warehouse) == uninterrupted
    leftovers = [
        p.name
        for p in warehouse.parent.iterdir()
        if ".building-" in p.name or ".scratch-" in p.name
    ]
    assert leftovers == []


def test_an_analyst_holding_the_warehouse_open_never_blocks_the_run(tmp_path: Path) -> None:
    """Even a read-write connection (the duckdb CLI's default) in another process: the run
    publishes a new file beside it; the analyst keeps the old one until reconnecting."""
    data = write_folder(tmp_path / "data", FIRST_NIGHT)
    warehouse = tmp_path / "w.duckdb"
    assert night(data, warehouse) == 0
    analyst = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
            "n = con.sql('SELECT count(*) FROM ledger_entries').fetchall()[0][0]; "
            "print(n, flush=True); time.sleep(60)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout is not None
        before = int(analyst.stdout.readline())
        write_folder(data, {k: SCENARIO[k] for k in SCENARIO if k not in FIRST_NIGHT})
        assert night(data, warehouse) == 0
        after = duckdb.connect(str(warehouse), read_only=True)
        assert after.sql("SELECT count(*) FROM ledger_entries").fetchall()[0][0] > before
        after.close()
    finally:
        analyst.kill()
