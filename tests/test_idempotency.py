"""Running the same night twice, or dropping the same file under a new name, changes no table."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_pipeline, write_folder
from tests.test_monthly_balances import SCENARIO

MARTS = [
    "ledger_entries",
    "monthly_balances",
    "forfeitures",
    "credit_lots",
    "quarantine",
    "run_info",
]
AS_OF = dt.date(2025, 3, 10)


def dump(warehouse: Path, tables: list[str]) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        # run_info.build says how it was built (in full, or incrementally): not a result.
        return {
            t: con.sql(
                f"SELECT * {'EXCLUDE (build)' if t == 'run_info' else ''} FROM {t} ORDER BY ALL"
            ).fetchall()
            for t in tables
        }
    finally:
        con.close()


def test_running_the_same_night_twice_changes_nothing(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", SCENARIO)
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, AS_OF).close()
    first = dump(warehouse, [*MARTS, "ingest_manifest"])
    run_pipeline(data, warehouse, AS_OF).close()
    assert dump(warehouse, [*MARTS, "ingest_manifest"]) == first
    assert len(first["ledger_entries"]) > 20


def test_a_renamed_copy_is_skipped_and_changes_no_mart(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", SCENARIO)
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, AS_OF).close()
    before = dump(warehouse, MARTS)
    exports = data / "inbox" / "zoominfo" / "exports"
    shutil.copy(exports / "e5.csv", exports / "e5 - Copy.csv")
    listings = data / "inbox" / "zoominfo" / "downloads"
    shutil.copy(listings / "listing.csv", listings / "listing (2).csv")
    run_pipeline(data, warehouse, AS_OF).close()
    assert dump(warehouse, MARTS) == before
    con = duckdb.connect(str(warehouse), read_only=True)
    dupes = con.sql(
        "SELECT path, duplicate_of FROM ingest_manifest WHERE status = 'duplicate' ORDER BY path"
    ).fetchall()
    assert dupes == [
        ("inbox/zoominfo/downloads/listing (2).csv", "inbox/zoominfo/downloads/listing.csv"),
        ("inbox/zoominfo/exports/e5 - Copy.csv", "inbox/zoominfo/exports/e5.csv"),
    ]


def test_files_arriving_night_by_night_give_the_same_result_as_all_at_once(tmp_path: Path) -> None:
    """The export file comes a night before its listing: its rows wait in quarantine, then load."""
    all_at_once = tmp_path / "once.duckdb"
    run_pipeline(write_folder(tmp_path / "once", SCENARIO), all_at_once, AS_OF).close()

    first_night = {k: v for k, v in SCENARIO.items() if "downloads" not in k}
    data = write_folder(tmp_path / "nightly", first_night)
    warehouse = tmp_path / "nightly.duckdb"
    con = run_pipeline(data, warehouse, AS_OF)
    waiting = con.sql("SELECT count(*) FROM quarantine WHERE rejected_by = 'rules'").fetchall()[0][
        0
    ]
    assert waiting == 3 + 5 + 2 + 3 + 7 + 2 + 2 + 1  # every row of e1..e8: no listing yet
    con.close()
    write_folder(data, {k: v for k, v in SCENARIO.items() if "downloads" in k})
    run_pipeline(data, warehouse, AS_OF).close()
    marts = ["monthly_balances", "forfeitures", "credit_lots", "quarantine"]
    assert dump(warehouse, marts) == dump(all_at_once, marts)


def test_a_changed_config_file_replaces_the_old_version(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", SCENARIO)
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, AS_OF).close()
    (data / "config" / "allocations.csv").write_text(
        "vendor,client_id,effective_month,monthly_credits\n"
        "zoominfo,acme,2025-01,5\nzoominfo,beta,2025-01,10\nzoominfo,acme,2025-03,4\n"
    )
    con = run_pipeline(data, warehouse, AS_OF)
    assert con.sql(
        "SELECT baseline_credits FROM monthly_balances WHERE client_id = 'beta' AND month = '2025-03-01'"
    ).fetchall() == [(10,)]
    statuses = con.sql(
        "SELECT status FROM ingest_manifest WHERE path = 'config/allocations.csv' ORDER BY ingested_at"
    ).fetchall()
    assert statuses == [("superseded",), ("loaded",)]


def parquet_inodes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_ino for p in folder.rglob("*.parquet")}


def test_a_night_rewrites_only_the_parquet_partitions_whose_rows_changed(tmp_path: Path) -> None:
    """March's export arrives a night late: only March's partitions (and the unpartitioned
    tables that changed) are written again; January and February are the same files."""
    from transforms.build import parquet_dir
    from transforms.runner import models

    data = write_folder(tmp_path / "d", {k: v for k, v in SCENARIO.items() if "e7.csv" not in k})
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, AS_OF).close()
    before = parquet_inodes(parquet_dir(warehouse))
    write_folder(data, {k: v for k, v in SCENARIO.items() if "e7.csv" in k})
    run_pipeline(data, warehouse, AS_OF).close()
    after = parquet_inodes(parquet_dir(warehouse))

    def same(prefix: str) -> bool:
        files = [f for f in after if f.startswith(prefix)]
        assert files, prefix
        return all(before.get(f) == after[f] for f in files)

    assert same("ledger_entries/booking_month=2025-01-01/")
    assert same("ledger_entries/booking_month=2025-02-01/")
    assert not same("ledger_entries/booking_month=2025-03-01/")  # E7: 103 free, 501 charged
    assert same("monthly_balances/month=2025-01-01/")
    assert not same("monthly_balances/month=2025-03-01/")
    assert same("clients/")  # unpartitioned and unchanged
    assert not same("ingest_manifest/")  # one more file

    # Linked or written, the Parquet copy holds exactly the warehouse's rows.
    con = duckdb.connect(str(warehouse), read_only=True)
    folder = parquet_dir(warehouse)
    for table in models().parquet():
        columns = ", ".join(
            f'"{c}"::VARCHAR'
            for (c,) in con.sql(f"SELECT column_name FROM (DESCRIBE {table})").fetchall()
        )
        published = con.sql(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
        copied = con.sql(
            f"SELECT {columns} FROM read_parquet('{folder / table}/**/*.parquet', "
            "hive_partitioning = true) ORDER BY ALL"
        ).fetchall()
        assert copied == published, table
    con.close()

    # The same night again writes no Parquet file at all.
    run_pipeline(data, warehouse, AS_OF).close()
    assert parquet_inodes(parquet_dir(warehouse)) == after


def test_parquet_written_a_month_at_a_time_or_partitioned_holds_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mart whose rows come month by month is copied with one COPY per month, any other
    with one partitioned COPY: the two give the same folders and rows."""
    from transforms import parquet as parquet_module
    from transforms.build import RunParams, build, parquet_dir
    from transforms.ingest import ingest, ingest_store_path
    from transforms.runner import models

    data = write_folder(tmp_path / "d", SCENARIO)
    store = ingest_store_path(tmp_path / "w.duckdb")
    config = ingest(data, store).current_config
    copies = {}
    for clustered in (True, False):
        monkeypatch.setattr(parquet_module, "_clustered", lambda *_, c=clustered: c)
        warehouse = tmp_path / f"w-{clustered}.duckdb"
        build(store, warehouse, RunParams(AS_OF), config, incremental=False)
        folder = parquet_dir(warehouse)
        copies[clustered] = {
            table: (
                sorted(
                    str(p.parent.relative_to(folder)) for p in (folder / table).rglob("*.parquet")
                ),
                duckdb.sql(
                    f"SELECT * FROM read_parquet('{folder / table}/**/*.parquet', "
                    "hive_partitioning = true, union_by_name = true) ORDER BY ALL"
                ).fetchall(),
            )
            for table in models().parquet()
        }
    assert copies[True] == copies[False]
    assert copies[True]["ledger_entries"][0] == [
        "ledger_entries/booking_month=2025-01-01",
        "ledger_entries/booking_month=2025-02-01",
        "ledger_entries/booking_month=2025-03-01",
    ]


def test_a_mart_counts_as_clustered_only_when_its_months_come_in_runs() -> None:
    from transforms.parquet import _clustered

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ordered AS SELECT DATE '2025-01-01' + INTERVAL (i // 100000) MONTH AS month "
        "FROM range(600000) t(i)"
    )
    con.execute("CREATE TABLE mixed AS SELECT * FROM ordered ORDER BY hash(rowid)")
    assert _clustered(con, "ordered", "month", 6)
    assert not _clustered(con, "mixed", "month", 6)
