"""Vendor reconciliation (DOMAIN rule 7) on a mixed ZoomInfo + 6sense + Apollo folder,
worked out by hand; and Apollo added as an adapter plus configuration."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import rows, run_pipeline, write_folder
from tests.test_duplicates import FILES

MIXED = {
    **FILES,
    "config/users.csv": FILES["config/users.csv"] + "apollo,ann@agency.test,acme,,\n",
    "config/contracts.csv": FILES["config/contracts.csv"]
    + "apollo,AP,2025-01-01,2026-01-01,50,monthly,true,,0.10\n",
    "config/allocations.csv": FILES["config/allocations.csv"] + "apollo,acme,2025-01,10\n",
    # ann bought C9 before the 6sense contract began
    "inbox/6sense/purchases/p0.csv": "Purchase Date,Purchased By,Source,Contact ID,Email,Email Confidence,Phone,Company Name,Company Domain,Credits Used\n"
    "2024-12-20 09:00:00,ann@agency.test,Acquire New Contacts,C9,c9@x.test,A,,X,x.test,1\n",
    "inbox/6sense/usage/u.csv": "User Email,Role,Status,Allocated Credits,Used Credits,Remaining Credits,As Of Date\n"
    "ann@agency.test,User,Active,10,5,5,2025-02-28\n"
    "bo@agency.test,User,Active,5,3,2,2025-02-28\n",
    "inbox/zoominfo/downloads/l2.csv": "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
    "Z4,d,z4.csv,yu@agency.test,2025-02-26 10:00:00,Contacts,2,2\n"  # its file never came
    "Z5,e,z5.csv,temp@agency.test,2025-02-27 10:00:00,Contacts,1,1\n",  # in no users.csv row
    "inbox/zoominfo/exports/z5.csv": "ZoomInfo Contact ID\n9\n",
    "inbox/zoominfo/exports/zz.csv": "ZoomInfo Contact ID\n7\n8\n",  # no listing names it
    "inbox/zoominfo/usage/feb.csv": "User,Period,Monthly Credits Used,Bulk Credits Used,Company Views,Contact Views\n"
    "zed@agency.test,Jan 2025,4,0,1,1\n"
    "zed@agency.test,Feb 2025,6,0,1,1\n"
    "yu@agency.test,Feb 2025,3,0,1,1\n",
    "inbox/apollo/usage/apollo.csv": "Date,Feature,Action,Description,Credits,Data requested,User\n"
    "2025-02-04 10:00:00,People search,Reveal,Email of Jane Roe,1,Email,ann@agency.test\n"
    "2025-02-05 10:00:00,People search,Reveal,Mobile of Jane Roe,5,Phone,ann@agency.test\n"
    "2025-02-06 10:00:00,People search,Reveal,Email of Jane Roe,0,Email,ann@agency.test\n",
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("recon")
    con = run_pipeline(write_folder(root / "d", MIXED), root / "w.duckdb", dt.date(2025, 3, 10))
    yield con
    con.close()


def test_every_difference_has_a_reason(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = [
        (
            r["vendor"],
            r["user"],
            str(r["month"]) if r["month"] else None,
            r["reported_credits"],
            r["reported_from"],
            r["computed_credits"],
            r["variance"],
            r["reason"],
        )
        for r in rows(
            warehouse, "SELECT * FROM vendor_reconciliation ORDER BY vendor, user NULLS LAST, month"
        )
    ]
    ok = "reconciled: reported equals computed"
    assert got == [
        ("6sense", "ann@agency.test", "2024-12-01", 1, None, 1, 0, "outside any contract: 1"),
        # 6sense says 5 used by Feb 28; the log shows C9, C1, C2, C2 = 4
        ("6sense", "ann@agency.test", "2025-02-01", 5, "usage to date", 4, 1, "unexplained: 1"),
        ("6sense", "ann@agency.test", "2025-03-01", 1, None, 1, 0, ok),
        ("6sense", "bo@agency.test", "2025-02-01", 3, "usage to date", 3, 0, ok),
        ("apollo", "ann@agency.test", "2025-02-01", 6, "usage table", 6, 0, ok),
        (
            "zoominfo",
            "temp@agency.test",
            "2025-02-01",
            1,
            "listings",
            1,
            0,
            "unknown user (counted against client unassigned)",
        ),
        (
            "zoominfo",
            "yu@agency.test",
            "2025-02-01",
            3,
            "usage summary",
            1,
            2,
            "listing without export file: 2",
        ),
        (
            "zoominfo",
            "zed@agency.test",
            "2025-01-01",
            4,
            "usage summary",
            0,
            4,
            "usage summary with no exports: 4",
        ),
        (
            "zoominfo",
            "zed@agency.test",
            "2025-02-01",
            6,
            "usage summary",
            4,
            2,
            "charged re-export: 2",
        ),
        (
            "zoominfo",
            None,
            None,
            0,
            None,
            0,
            0,
            "export file with no listing: inbox/zoominfo/exports/zz.csv (2 rows)",
        ),
    ]


def test_apollo_is_an_adapter_plus_configuration(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT client_id, month::VARCHAR AS month, baseline_credits, charged_credits, forfeited_credits, closing_balance "
        "FROM monthly_balances WHERE vendor = 'apollo'",
    )
    # Apollo resets monthly here: 10 a month, 6 used in February, the rest forfeited.
    assert [tuple(r.values())[1:] for r in got] == [
        ("2025-01-01", 10, 0, 10, 0),
        ("2025-02-01", 10, 6, 4, 0),
        ("2025-03-01", 10, 0, 0, 10),
    ]
    vendors = rows(warehouse, "SELECT DISTINCT vendor FROM monthly_balances ORDER BY 1")
    assert [v["vendor"] for v in vendors] == ["6sense", "apollo", "zoominfo"]
