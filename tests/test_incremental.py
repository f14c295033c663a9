"""An incremental night (transforms/incremental.py) publishes exactly what a full rebuild of
the same ingest store would, and falls back to a full rebuild whenever it cannot be sure.

The property test delivers a random model's exports over a few nights, as a real inbox
fills: each night a listing of its exports and their files, with the as-of date moving on
(across month ends, so lots expire and new ones open). After every night the incremental
warehouse is compared, table by table and row by row, with a full rebuild of the same store.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.conftest import write_folder
from tests.reference_model import Model
from tests.test_duplicates import FILES
from tests.test_properties import examples, files, models
from tests.test_reconciliation import MIXED
from transforms import pipeline, runner
from transforms.build import RunParams, build
from transforms.close import close_month
from transforms.ingest import ingest, ingest_store_path
from transforms.parquet import PARQUET_STATE, parquet_dir

LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)


def night(
    data: Path, warehouse: Path, as_of: dt.date, window: int, incremental: bool = True
) -> str:
    """Ingest and build as the nightly flow does; returns how it was built."""
    store = ingest_store_path(warehouse)
    result = ingest(data, store)
    notes: list[str] = []
    build(
        store,
        warehouse,
        RunParams(as_of, reexport_window_months=window),
        result.current_config,
        incremental=incremental,
        on_note=notes.append,
    )
    return notes[0]


def differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Per published table, (rows only in a, rows only in b), for the tables that differ.
    run_info.build says how each was built, so it is left out."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    out = {}
    for table in [m.name for m in runner.models().published]:
        columns = ", ".join(
            f'"{c}"'
            for (c,) in con.sql(f"SELECT column_name FROM (DESCRIBE b.{table})").fetchall()
            if not (table == "run_info" and c == "build")
        )
        only = [
            con.sql(
                f"SELECT count(*) FROM (SELECT {columns} FROM {x}.{table} "
                f"EXCEPT ALL SELECT {columns} FROM {y}.{table})"
            ).fetchall()[0][0]
            for x, y in [("a", "b"), ("b", "a")]
        ]
        if any(only):
            out[table] = (only[0], only[1])
    con.close()
    return out


def rebuilt_in_full(
    data: Path, warehouse: Path, reference: Path, as_of: dt.date, window: int = 12
) -> Path:
    """``reference``: every mart rebuilt in full from the nightly warehouse's ingest store."""
    build(
        ingest_store_path(warehouse),
        reference,
        RunParams(as_of, reexport_window_months=window),
        ingest(data, ingest_store_path(warehouse)).current_config,
        incremental=False,
    )
    return reference


def parquet_rows(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect()
    folder = parquet_dir(warehouse)
    counts = {
        t.name: con.sql(
            f"SELECT count(*) FROM read_parquet('{t}/**/*.parquet', hive_partitioning = true)"
        ).fetchall()[0][0]
        for t in sorted(folder.iterdir())
        if t.is_dir()
    }
    con.close()
    return counts


def listing_line(model: Model, export_id: str) -> str:
    e = next(e for e in model.exports if e.export_id == export_id)
    return (
        f"{e.export_id},x,{e.export_id}.csv,{e.user},{e.at:%Y-%m-%d %H:%M:%S},Contacts,"
        f"{len(e.keys)},{len(e.keys)}\n"
    )


@examples(20)
@given(models(), st.lists(st.integers(1, 60), min_size=1, max_size=4), st.booleans())
def test_incremental_nights_publish_what_a_full_rebuild_does(
    model: Model, gaps: list[int], close_january: bool
) -> None:
    root = Path(tempfile.mkdtemp(prefix="incr-"))
    try:
        everything = files(model)
        data = write_folder(
            root / "d", {k: v for k, v in everything.items() if not k.startswith("inbox/")}
        )
        warehouse = root / "nightly" / "w.duckdb"
        reference = root / "full" / "w.duckdb"
        warehouse.parent.mkdir()
        reference.parent.mkdir()
        as_of = dt.date(2025, 1, 1)
        delivered: set[str] = set()
        for n, gap in enumerate(gaps):
            as_of += dt.timedelta(days=gap)
            due = sorted(
                e.export_id
                for e in model.exports
                if e.at.date() < as_of and e.export_id not in delivered
            )
            if due:  # the night's listing and the files it names
                write_folder(
                    data,
                    {
                        f"inbox/zoominfo/downloads/night-{n}.csv": LISTING
                        + "".join(listing_line(model, x) for x in due),
                        **{
                            f"inbox/zoominfo/exports/{x}.csv": everything[
                                f"inbox/zoominfo/exports/{x}.csv"
                            ]
                            for x in due
                        },
                    },
                )
                delivered.update(due)
            how = night(data, warehouse, as_of, model.window_months)
            event(how if n else "first night")
            # The reference: every mart rebuilt from the same ingest store.
            rebuilt_in_full(data, warehouse, reference, as_of, model.window_months)
            assert differences(warehouse, reference) == {}, f"night {n}, as of {as_of}"
            assert parquet_rows(warehouse) == parquet_rows(reference)
            if close_january and as_of >= dt.date(2025, 2, 1):  # closed once, mid-way
                close_month(ingest_store_path(warehouse), warehouse, dt.date(2025, 1, 1), as_of)
                close_january = False
    finally:
        shutil.rmtree(root)


CONFIG = {
    "config/clients.csv": "client_id,client_name\nc1,One\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\nzoominfo,u1@a.test,c1,,\n",
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
    "overage_allowed,cap_credits,price_per_credit\n"
    "zoominfo,C,2025-01-01,2026-01-01,100,monthly,true,,\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    "zoominfo,c1,2025-01-01,3\n",
}


def exports(listing: str, *rows: tuple[str, str, list[int], int]) -> dict[str, str]:
    """A listing file and the export files it names: (Export ID, date, contact IDs, credits
    the vendor charged)."""
    out = {
        f"inbox/zoominfo/downloads/{listing}.csv": LISTING
        + "".join(
            f"{x},x,{x}.csv,u1@a.test,{at},Contacts,{len(keys)},{credits}\n"
            for x, at, keys, credits in rows
        )
    }
    for x, _, keys, _ in rows:
        out[f"inbox/zoominfo/exports/{x}.csv"] = "ZoomInfo Contact ID\n" + "".join(
            f"{k}\n" for k in keys
        )
    return out


def one(warehouse: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_a_night_of_later_exports_is_added_and_agrees_with_a_full_rebuild(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    write_folder(data, exports("L1", ("E1", "2025-01-05 10:00:00", [1, 2], 2)))
    assert night(data, warehouse, dt.date(2025, 1, 10), 12) == (
        "full rebuild: nothing is published yet"
    )
    # Night 2, after January ended: contact 2 again (free), 3 (the lot's last credit),
    # 4 (beyond the lot: overage).
    write_folder(data, exports("L2", ("E2", "2025-01-20 09:00:00", [2, 3, 4], 2)))
    assert night(data, warehouse, dt.date(2025, 2, 2), 12) == (
        "incremental: 2 new files added to the published warehouse"
    )
    assert one(
        warehouse,
        "SELECT record_key, first_export_id, repeat_export_id, kind FROM duplicate_reexports",
    ) == [("2", "E1", "E2", "free_reexport")]
    assert one(
        warehouse,
        "SELECT entry_type, record_key, credits FROM ledger_entries "
        "WHERE export_id = 'E2' ORDER BY record_key",
    ) == [("reexport", "2", 0), ("consume", "3", 1), ("overage", "4", 1)]
    assert one(
        warehouse,
        "SELECT month, opening_balance, baseline_credits, consumed_credits, overage_credits, "
        "forfeited_credits, closing_balance FROM monthly_balances ORDER BY month",
    ) == [
        (dt.date(2025, 1, 1), 0, 3, 3, 1, 0, 0),
        (dt.date(2025, 2, 1), 0, 3, 0, 0, 0, 3),  # February's lot: new tonight, untouched
    ]
    assert one(warehouse, "SELECT build FROM run_info") == [("incremental",)]
    reference = tmp_path / "full.duckdb"
    rebuilt_in_full(data, warehouse, reference, dt.date(2025, 2, 2))
    assert differences(warehouse, reference) == {}
    assert parquet_rows(warehouse) == parquet_rows(reference)


def test_a_night_that_could_change_the_past_is_rebuilt_in_full(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    as_of = dt.date(2025, 1, 25)
    write_folder(data, exports("L1", ("E1", "2025-01-10 10:00:00", [1, 2], 2)))
    night(data, warehouse, as_of, 12)
    # An export older than the last charge (a late file) could take credits an earlier
    # charge drew: rebuilt in full. The contact it shares with E1 is now E1's re-export.
    write_folder(data, exports("L0", ("E0", "2025-01-03 10:00:00", [2], 1)))
    assert night(data, warehouse, as_of, 12).startswith(
        "full rebuild: a zoominfo record of 2025-01-03 10:00:00 is not after the last charged"
    )
    assert one(warehouse, "SELECT first_export_id, repeat_export_id FROM duplicate_reexports") == [
        ("E0", "E1")
    ]
    # A configuration change can change any month.
    write_folder(
        data,
        {
            "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
            "zoominfo,c1,2025-01-01,5\n"
        },
    )
    assert night(data, warehouse, as_of, 12) == "full rebuild: the configuration changed"
    assert one(warehouse, "SELECT closing_balance FROM monthly_balances") == [(3,)]  # 5 - 2
    # So can another re-export window.
    assert night(data, warehouse, as_of, 6) == (
        "full rebuild: the time zone or the re-export window changed"
    )


def test_a_night_with_nothing_new_publishes_nothing(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    write_folder(data, exports("L1", ("E1", "2025-01-10 10:00:00", [1, 2], 2)))
    warehouse = tmp_path / "w.duckdb"
    night(data, warehouse, dt.date(2025, 1, 25), 12)
    published = warehouse.stat()
    assert night(data, warehouse, dt.date(2025, 1, 25), 12) == (
        "nothing new since the last publish: the warehouse is as it was"
    )
    assert (warehouse.stat().st_ino, warehouse.stat().st_mtime_ns) == (
        published.st_ino,
        published.st_mtime_ns,
    )


def test_a_warehouse_an_analyst_changed_is_rebuilt_not_built_on(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    write_folder(data, exports("L1", ("E1", "2025-01-10 10:00:00", [1, 2], 2)))
    warehouse = tmp_path / "w.duckdb"
    night(data, warehouse, dt.date(2025, 1, 25), 12)
    analyst = duckdb.connect(str(warehouse))  # read-write, as the duckdb CLI opens it
    analyst.execute("DELETE FROM ledger_entries WHERE entry_type = 'consume'")
    analyst.close()
    write_folder(data, exports("L2", ("E2", "2025-01-20 09:00:00", [3], 1)))
    assert night(data, warehouse, dt.date(2025, 1, 25), 12) == (
        "full rebuild: the published file was changed after it was published"
    )
    assert one(warehouse, "SELECT count(*) FROM ledger_entries WHERE entry_type = 'consume'") == [
        (3,)
    ]


def test_nights_after_a_month_is_closed_are_added_and_leave_it_as_closed(
    tmp_path: Path,
) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    write_folder(data, exports("L1", ("E1", "2025-01-05 10:00:00", [1, 2], 2)))
    night(data, warehouse, dt.date(2025, 2, 1), 12)
    close_month(ingest_store_path(warehouse), warehouse, dt.date(2025, 1, 1), dt.date(2025, 2, 1))
    # The first build after closing rebuilds (the set of closed months changed) ...
    assert night(data, warehouse, dt.date(2025, 2, 1), 12) == (
        "full rebuild: a month was closed since"
    )
    frozen = one(warehouse, "SELECT * FROM monthly_balances WHERE month = '2025-01-01'")
    # ... and later nights are added: February's exports, one re-exporting January's.
    write_folder(data, exports("L2", ("E2", "2025-02-03 10:00:00", [2, 3], 1)))
    assert night(data, warehouse, dt.date(2025, 2, 5), 12).startswith("incremental")
    assert one(warehouse, "SELECT * FROM monthly_balances WHERE month = '2025-01-01'") == frozen
    assert one(
        warehouse,
        "SELECT consumed_credits, closing_balance, is_closed FROM monthly_balances "
        "WHERE month = '2025-02-01'",
    ) == [(1, 2, False)]
    reference = tmp_path / "full.duckdb"
    rebuilt_in_full(data, warehouse, reference, dt.date(2025, 2, 5))
    assert differences(warehouse, reference) == {}
    # A file for the closed month is late: rebuilt in full, booked in the first open month.
    write_folder(data, exports("L3", ("E3", "2025-02-04 10:00:00", [4], 1)))
    write_folder(data, exports("L4", ("E4", "2025-01-20 10:00:00", [5], 1)))
    assert night(data, warehouse, dt.date(2025, 2, 6), 12).startswith("full rebuild: a zoominfo")


def test_an_incremental_result_failing_an_audit_is_rebuilt_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    write_folder(data, exports("L1", ("E1", "2025-01-05 10:00:00", [1, 2], 2)))
    night(data, warehouse, dt.date(2025, 1, 10), 12)
    real_audits = pipeline._audits

    def audits_failing_incremental_nights(con: duckdb.DuckDBPyConnection) -> list[str]:
        tables = {t for (t,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        return ["injected: breaks a rule"] if "night_entry_ids" in tables else real_audits(con)

    monkeypatch.setattr(pipeline, "_audits", audits_failing_incremental_nights)
    write_folder(data, exports("L2", ("E2", "2025-01-20 09:00:00", [3], 1)))
    assert night(data, warehouse, dt.date(2025, 1, 25), 12) == (
        "full rebuild: the incremental result failed an audit (injected: breaks a rule)"
    )
    assert one(warehouse, "SELECT build FROM run_info") == [
        ("full rebuild: the incremental result failed an audit (injected: breaks a rule)",)
    ]
    assert one(warehouse, "SELECT count(*) FROM ledger_entries WHERE export_id = 'E2'") == [(1,)]


def test_a_night_of_usage_reports_only_updates_the_reconciliation(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    write_folder(data, exports("L1", ("E1", "2025-01-05 10:00:00", [1, 2, 3], 3)))
    night(data, warehouse, dt.date(2025, 1, 25), 12)
    assert one(warehouse, "SELECT reported_from, variance FROM vendor_reconciliation") == [
        ("listings", 0)
    ]
    write_folder(
        data,
        {
            "inbox/zoominfo/usage/usage_2025-01.csv": "User,Period,Monthly Credits Used,"
            "Bulk Credits Used,Company Views,Contact Views\nu1@a.test,Jan 2025,4,0,1,1\n"
        },
    )
    assert night(data, warehouse, dt.date(2025, 1, 25), 12).startswith("incremental")
    assert one(
        warehouse, "SELECT reported_credits, computed_credits, variance FROM vendor_reconciliation"
    ) == [(4, 3, 1)]
    reference = tmp_path / "full.duckdb"
    rebuilt_in_full(data, warehouse, reference, dt.date(2025, 1, 25))
    assert differences(warehouse, reference) == {}


def test_an_ingest_store_started_afresh_means_a_full_rebuild(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    write_folder(data, exports("L1", ("E1", "2025-01-05 10:00:00", [1], 1)))
    night(data, warehouse, dt.date(2025, 1, 25), 12)
    ingest_store_path(warehouse).unlink()  # every file is ingested again, at a new time
    assert night(data, warehouse, dt.date(2025, 1, 25), 12).startswith("full rebuild: ")


def test_6sense_purchases_over_nights_repeat_the_first_purchase_of_an_earlier_night(
    tmp_path: Path,
) -> None:
    """tests/test_duplicates.py's folder, its purchase log delivered over three nights."""
    header, *purchases = FILES["inbox/6sense/purchases/p.csv"].splitlines(keepends=True)
    data = write_folder(
        tmp_path / "d",
        {k: v for k, v in FILES.items() if not k.startswith("inbox/6sense/purchases/")},
    )
    warehouse = tmp_path / "w.duckdb"
    hows = []
    for n, (lines, as_of) in enumerate(
        [
            (purchases[:2], dt.date(2025, 3, 1)),  # C1 and C2, by acme
            (purchases[2:5], dt.date(2025, 3, 1)),  # C1 (beta), C2 (acme) again; C3
            (purchases[5:], dt.date(2025, 3, 10)),  # C4
        ]
    ):
        write_folder(data, {f"inbox/6sense/purchases/night-{n}.csv": header + "".join(lines)})
        hows.append(night(data, warehouse, as_of, 12))
    assert [h.split(":")[0] for h in hows] == ["full rebuild", "incremental", "incremental"]
    assert one(
        warehouse,
        "SELECT record_key, first_client_id, repeat_client_id, first_source_file "
        "FROM duplicate_reexports WHERE vendor = '6sense' ORDER BY ALL",
    ) == [
        ("C1", "acme", "beta", "inbox/6sense/purchases/night-0.csv"),
        ("C2", "acme", "acme", "inbox/6sense/purchases/night-0.csv"),
    ]
    reference = tmp_path / "full.duckdb"
    rebuilt_in_full(data, warehouse, reference, dt.date(2025, 3, 10))
    assert differences(warehouse, reference) == {}
    assert one(warehouse, "SELECT count(*) FROM purchase_quality") == one(
        reference, "SELECT count(*) FROM purchase_quality"
    )
    # A contact first bought for 0 credits has no ledger entry to find it by.
    write_folder(
        data,
        {
            "inbox/6sense/purchases/night-3.csv": header
            + "2025-03-11 09:00:00,ann@agency.test,Acquire New Contacts,C9,c9@x.test,A,,X,x.test,0\n"
        },
    )
    assert night(data, warehouse, dt.date(2025, 3, 11), 12).startswith("incremental")
    write_folder(
        data,
        {
            "inbox/6sense/purchases/night-4.csv": header
            + "2025-03-12 09:00:00,bo@agency.test,Acquire New Contacts,C9,c9@x.test,A,,X,x.test,1\n"
        },
    )
    assert night(data, warehouse, dt.date(2025, 3, 12), 12) == (
        "full rebuild: a 6sense contact of the night was bought before for 0 credits"
    )
    assert one(
        warehouse,
        "SELECT first_client_id, repeat_client_id FROM duplicate_reexports WHERE record_key = 'C9'",
    ) == [("acme", "beta")]


@st.composite
def purchase_logs(draw: st.DrawFn) -> list[tuple[dt.datetime, str, str, int]]:
    """Purchases (time, user, contact, credits): few contacts, so most are bought again."""
    return sorted(
        draw(
            st.lists(
                st.tuples(
                    st.integers(0, 24 * 80).map(
                        lambda h: dt.datetime(2025, 1, 1) + dt.timedelta(hours=h)
                    ),
                    st.sampled_from(["ann@agency.test", "bo@agency.test", "ghost@agency.test"]),
                    st.sampled_from(["C1", "C2", "C3", "C4"]),
                    st.sampled_from([0, 1, 1, 2]),
                ),
                max_size=12,
            )
        )
    )


@examples(15)
@given(purchase_logs(), st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_6sense_nights_publish_what_a_full_rebuild_does(
    purchases: list[tuple[dt.datetime, str, str, int]], gaps: list[int]
) -> None:
    header = FILES["inbox/6sense/purchases/p.csv"].splitlines(keepends=True)[0]
    root = Path(tempfile.mkdtemp(prefix="incr6-"))
    try:
        data = write_folder(
            root / "d",
            {k: v for k, v in FILES.items() if not k.startswith("inbox/")},
        )
        warehouse = root / "nightly" / "w.duckdb"
        reference = root / "full" / "w.duckdb"
        warehouse.parent.mkdir()
        reference.parent.mkdir()
        as_of = dt.date(2025, 1, 1)
        for n, gap in enumerate(gaps):
            before = as_of
            as_of += dt.timedelta(days=gap)
            due = [p for p in purchases if before <= p[0].date() < as_of]
            if due:
                write_folder(
                    data,
                    {
                        f"inbox/6sense/purchases/night-{n}.csv": header
                        + "".join(
                            f"{at:%Y-%m-%d %H:%M:%S},{user},Acquire New Contacts,{c},"
                            f"{c.lower()}@x.test,A,,X,x.test,{credits}\n"
                            for at, user, c, credits in due
                        )
                    },
                )
            how = night(data, warehouse, as_of, 12)
            event(how if n else "first night")
            rebuilt_in_full(data, warehouse, reference, as_of)
            assert differences(warehouse, reference) == {}, f"night {n}, as of {as_of}"
    finally:
        shutil.rmtree(root)


def test_a_mixed_night_of_three_vendors_agrees_with_a_full_rebuild(tmp_path: Path) -> None:
    """tests/test_reconciliation.py's folder over two nights: the second brings a ZoomInfo
    listing (one file missing, one user unknown), an export file no listing names, an
    Apollo usage row, and both vendors' usage reports."""
    apollo = MIXED["inbox/apollo/usage/apollo.csv"].splitlines(keepends=True)
    later = [
        "inbox/zoominfo/downloads/l2.csv",
        "inbox/zoominfo/exports/z5.csv",
        "inbox/zoominfo/exports/zz.csv",
        "inbox/6sense/usage/u.csv",
        "inbox/zoominfo/usage/feb.csv",
    ]
    first = {k: v for k, v in MIXED.items() if k not in later}
    first["inbox/apollo/usage/apollo.csv"] = "".join(apollo[:3])
    data = write_folder(tmp_path / "d", first)
    warehouse = tmp_path / "w.duckdb"
    as_of = dt.date(2025, 3, 10)
    night(data, warehouse, as_of, 12)
    write_folder(
        data,
        {
            **{k: MIXED[k] for k in later},
            "inbox/apollo/usage/apollo-2.csv": apollo[0] + "".join(apollo[3:]),
        },
    )
    assert night(data, warehouse, as_of, 12) == (
        "incremental: 6 new files added to the published warehouse"
    )
    reference = rebuilt_in_full(data, warehouse, tmp_path / "full.duckdb", as_of)
    assert differences(warehouse, reference) == {}
    assert one(
        warehouse, "SELECT count(*) FROM vendor_reconciliation WHERE reason LIKE 'export file%'"
    ) == [(1,)]


def test_a_night_without_the_parquet_fingerprints_writes_every_month(tmp_path: Path) -> None:
    """The Parquet folder's _partitions.json lost: the night cannot tell which partitions it
    may keep, so it writes them all rather than only the month it touched."""
    data = write_folder(tmp_path / "d", CONFIG)
    warehouse = tmp_path / "w.duckdb"
    write_folder(data, exports("L1", ("E1", "2025-01-05 10:00:00", [1, 2], 2)))
    night(data, warehouse, dt.date(2025, 1, 10), 12)
    write_folder(data, exports("L2", ("E2", "2025-02-03 09:00:00", [3], 1)))
    assert night(data, warehouse, dt.date(2025, 2, 5), 12).startswith("incremental")
    (parquet_dir(warehouse) / PARQUET_STATE).unlink()
    # Night 3 touches February only.
    write_folder(data, exports("L3", ("E3", "2025-02-10 09:00:00", [4], 1)))
    assert night(data, warehouse, dt.date(2025, 2, 12), 12).startswith("incremental")
    reference = tmp_path / "full.duckdb"
    rebuilt_in_full(data, warehouse, reference, dt.date(2025, 2, 12))
    assert differences(warehouse, reference) == {}
    rows = parquet_rows(warehouse)
    assert rows == parquet_rows(reference)
    assert rows["ledger_entries"] == one(warehouse, "SELECT count(*) FROM ledger_entries")[0][0]
    # ... and fingerprints every one again, so that later nights keep the ones they can.
    state = json.loads((parquet_dir(warehouse) / PARQUET_STATE).read_text())
    assert sorted(state["ledger_entries"]) == [
        "booking_month=2025-01-01",
        "booking_month=2025-02-01",
    ]
