"""6sense purchases, duplicate re-exports, disputes and purchase quality, computed by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import rows, run_pipeline, write_folder

FILES = {
    "config/clients.csv": "client_id,client_name\nacme,Acme\nbeta,Beta\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
    "6sense,ann@agency.test,acme,,\n6sense,bo@agency.test,beta,,\n"
    "zoominfo,zed@agency.test,acme,,\nzoominfo,yu@agency.test,beta,,\n",
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,price_per_credit\n"
    "6sense,POOL,2025-01-01,2026-01-01,100,none,true,,1.20\n"
    "zoominfo,ZI,2025-01-01,2026-01-01,100,monthly,true,,0.45\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    "6sense,acme,2025-01,10\n6sense,beta,2025-01,5\nzoominfo,acme,2025-01,5\nzoominfo,beta,2025-01,5\n",
    "inbox/6sense/purchases/p.csv": "Purchase Date,Purchased By,Source,Contact ID,Email,Email Confidence,Phone,Company Name,Company Domain,Credits Used\n"
    "2025-02-03 10:00:00,ann@agency.test,Acquire New Contacts,C1,c1@x.test,A+,,X,x.test,1\n"
    "2025-02-03 10:05:00,ann@agency.test,Acquire New Contacts,C2,c2@x.test,A,,X,x.test,1\n"
    # C1 again, by beta: a cross-client repeat purchase
    "2025-02-10 09:00:00,bo@agency.test,Acquire New Contacts,C1,c1@x.test,B,,X,x.test,1\n"
    # C2 again, by acme itself
    "2025-02-11 09:00:00,ann@agency.test,Acquire New Contacts,C2,c2@x.test,A,,X,x.test,1\n"
    "2025-02-12 09:00:00,bo@agency.test,Legacy SI iFrame,C3,c3@x.test,c,,Y,y.test,2\n"
    "2025-03-01 09:00:00,ann@agency.test,Acquire New Contacts,C4,c4@x.test,,,Z,z.test,1\n",
    "inbox/zoominfo/downloads/l.csv": "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
    "Z1,a,z1.csv,zed@agency.test,2025-02-05 10:00:00,Contacts,3,3\n"
    # 1 and 2 were charged in Z1: only 4 is new, yet the vendor charged 3
    "Z2,b,z2.csv,zed@agency.test,2025-02-20 10:00:00,Contacts,3,3\n"
    # 3 was charged to acme in Z1: free for beta; 5 is new
    "Z3,c,z3.csv,yu@agency.test,2025-02-25 10:00:00,Contacts,2,1\n",
    "inbox/zoominfo/exports/z1.csv": "ZoomInfo Contact ID\n1\n2\n3\n",
    "inbox/zoominfo/exports/z2.csv": "ZoomInfo Contact ID\n1\n2\n4\n",
    "inbox/zoominfo/exports/z3.csv": "ZoomInfo Contact ID\n3\n5\n",
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("dups")
    con = run_pipeline(write_folder(root / "d", FILES), root / "w.duckdb", dt.date(2025, 3, 10))
    yield con
    con.close()


def test_6sense_purchases_draw_on_the_contract_pool(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = {
        (r["client_id"], str(r["month"])): (
            r["baseline_credits"],
            r["opening_balance"],
            r["charged_credits"],
            r["closing_balance"],
        )
        for r in rows(warehouse, "SELECT * FROM monthly_balances WHERE vendor = '6sense'")
    }
    assert got == {
        ("acme", "2025-01-01"): (10, 0, 0, 10),
        ("acme", "2025-02-01"): (0, 10, 3, 7),  # C1, C2, C2 again
        ("acme", "2025-03-01"): (0, 7, 1, 6),
        ("beta", "2025-01-01"): (5, 0, 0, 5),
        ("beta", "2025-02-01"): (0, 5, 3, 2),  # C1 (1), C3 (2)
        ("beta", "2025-03-01"): (0, 2, 0, 2),
    }


def test_duplicate_reexports(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = [
        (
            r["vendor"],
            r["record_key"],
            r["kind"],
            r["first_client_id"],
            r["repeat_client_id"],
            r["cross_client"],
            r["charged_by_vendor"],
            r["credits_disputable"],
        )
        for r in rows(
            warehouse,
            "SELECT * FROM duplicate_reexports ORDER BY vendor, repeat_exported_at, record_key",
        )
    ]
    assert got == [
        ("6sense", "C1", "repeat_purchase", "acme", "beta", True, True, 1),
        ("6sense", "C2", "repeat_purchase", "acme", "acme", False, True, 1),
        ("zoominfo", "1", "charged_reexport", "acme", "acme", False, True, 1),
        ("zoominfo", "2", "charged_reexport", "acme", "acme", False, True, 1),
        ("zoominfo", "3", "free_reexport", "acme", "beta", True, False, 0),
    ]


def test_disputes_list_what_to_put_in_a_ticket(warehouse, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT vendor, month::VARCHAR AS month, export_or_file, record_ids, credits_to_reverse, cross_client_records FROM disputes",
    )
    assert got == [
        {
            "vendor": "6sense",
            "month": "2025-02-01",
            "export_or_file": "inbox/6sense/purchases/p.csv",
            "record_ids": "C1 C2",
            "credits_to_reverse": 2,
            "cross_client_records": 1,
        },
        {
            "vendor": "zoominfo",
            "month": "2025-02-01",
            "export_or_file": "Z2",
            "record_ids": "1 2",
            "credits_to_reverse": 2,
            "cross_client_records": 0,
        },
    ]


def test_purchase_quality(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = [
        (
            r["client_id"],
            str(r["month"]),
            r["email_confidence"],
            r["contacts"],
            r["credits"],
            r["expected_deliverable_low"],
            r["expected_deliverable_high"],
            r["credits_per_deliverable_worst"],
        )
        for r in rows(
            warehouse, "SELECT * FROM purchase_quality ORDER BY client_id, month, email_confidence"
        )
    ]
    assert got == [
        ("acme", "2025-02-01", "A", 2, 2, 1.6, 1.8, 1.25),
        ("acme", "2025-02-01", "A+", 1, 1, 0.9, 1.0, 1.111),
        ("acme", "2025-03-01", "unknown", 1, 1, None, None, None),
        ("beta", "2025-02-01", "B", 1, 1, 0.6, 0.8, 1.667),
        ("beta", "2025-02-01", "C", 1, 2, 0.3, 0.6, 6.667),
    ]


def test_dispute_files_per_vendor_and_month(warehouse) -> None:  # type: ignore[no-untyped-def]
    path = Path(
        warehouse.sql(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()[0][0]
    )
    folder = path.with_name(path.stem + "-disputes")
    assert sorted(p.name for p in folder.iterdir()) == [
        "6sense_2025-02.csv",
        "zoominfo_2025-02.csv",
    ]
    assert (folder / "zoominfo_2025-02.csv").read_text() == (
        "export_or_file,record_ids,credits_to_reverse,cross_client_records\nZ2,1 2,2,0\n"
    )


def test_cells_that_look_like_formulas_are_written_as_text(tmp_path: Path) -> None:
    files = dict(FILES)
    files["inbox/zoominfo/downloads/l.csv"] = FILES["inbox/zoominfo/downloads/l.csv"].replace(
        "Z2,b,z2", "=Z2,b,z2"
    )
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 3, 10)
    )
    con.close()
    text = (tmp_path / "w-disputes" / "zoominfo_2025-02.csv").read_text()
    assert text.splitlines()[1] == "'=Z2,1 2,2,0"


def test_reexported_11_months_on_is_free_and_13_months_on_is_charged(tmp_path: Path) -> None:
    files = {k: v for k, v in FILES.items() if k.startswith("config/")}
    files["config/contracts.csv"] = files["config/contracts.csv"].replace(
        "zoominfo,ZI,2025-01-01", "zoominfo,ZI,2024-01-01"
    )
    files["inbox/zoominfo/downloads/l.csv"] = (
        "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
        "A,a,a.csv,zed@agency.test,2024-01-10 10:00:00,Contacts,1,1\n"
        "B,b,b.csv,yu@agency.test,2024-12-10 10:00:00,Contacts,1,0\n"  # 11 months on: free
        "C,c,c.csv,zed@agency.test,2025-02-10 10:00:00,Contacts,1,1\n"  # 13 months on: charged
    )
    for name in "abc":
        files[f"inbox/zoominfo/exports/{name}.csv"] = "ZoomInfo Contact ID\n42\n"
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 3, 1)
    )
    charged = rows(
        con,
        "SELECT export_id, entry_type FROM ledger_entries WHERE record_key = '42' ORDER BY effective_at",
    )
    assert [(r["export_id"], r["entry_type"]) for r in charged] == [
        ("A", "overage"),
        ("B", "reexport"),
        ("C", "consume"),
    ]
    repeats = rows(
        con, "SELECT first_export_id, repeat_export_id, kind, cross_client FROM duplicate_reexports"
    )
    assert repeats == [
        {
            "first_export_id": "A",
            "repeat_export_id": "B",
            "kind": "free_reexport",
            "cross_client": True,
        }
    ]
    recon = rows(
        con,
        "SELECT user, month::VARCHAR AS m, variance, reason FROM vendor_reconciliation ORDER BY m",
    )
    assert all(r["variance"] == 0 for r in recon)


def test_exports_whose_files_hold_the_same_bytes_each_trace_to_their_own_file(
    tmp_path: Path,
) -> None:
    # Z1 (February) names b.csv, Z2 (March) names a.csv: the same bytes, so a.csv, the
    # first to arrive, is loaded and b.csv is its duplicate. Each export is still a file of
    # its own: Z1's charges come from b.csv, Z2's free re-exports from a.csv.
    same = "ZoomInfo Contact ID\n7\n8\n"
    files = {k: v for k, v in FILES.items() if k.startswith("config/")} | {
        "inbox/zoominfo/downloads/l.csv": "Export ID,Export Name,File Name,Exported By,"
        "Export Date,Export Type,Records,Credits Used\n"
        "Z1,a,b.csv,zed@agency.test,2025-02-05 10:00:00,Contacts,2,2\n"
        "Z2,b,a.csv,zed@agency.test,2025-03-03 10:00:00,Contacts,2,0\n",
        "inbox/zoominfo/exports/a.csv": same,
        "inbox/zoominfo/exports/b.csv": same,
    }
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 3, 10)
    )
    try:
        manifest = con.sql("SELECT path, status FROM ingest_manifest ORDER BY path").fetchall()
        assert ("inbox/zoominfo/exports/b.csv", "duplicate") in manifest
        entries = con.sql(
            "SELECT export_id, entry_type, record_key, source_file, source_row FROM ledger_entries "
            "WHERE export_id IS NOT NULL ORDER BY ALL"
        ).fetchall()
        assert entries == [
            ("Z1", "consume", "7", "inbox/zoominfo/exports/b.csv", 2),
            ("Z1", "consume", "8", "inbox/zoominfo/exports/b.csv", 3),
            ("Z2", "reexport", "7", "inbox/zoominfo/exports/a.csv", 2),
            ("Z2", "reexport", "8", "inbox/zoominfo/exports/a.csv", 3),
        ]
        repeats = con.sql(
            "SELECT record_key, first_source_file, repeat_source_file FROM duplicate_reexports "
            "ORDER BY ALL"
        ).fetchall()
        assert repeats == [
            ("7", "inbox/zoominfo/exports/b.csv", "inbox/zoominfo/exports/a.csv"),
            ("8", "inbox/zoominfo/exports/b.csv", "inbox/zoominfo/exports/a.csv"),
        ]
    finally:
        con.close()
