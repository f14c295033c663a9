"""The demo folder the repo ships: Bluepoint as in the agency's note, and the rest of the
story the demo tells (a client over its allocation, an unknown user, re-exports, mess, a
6sense contract pool, an Apollo plan and a Lusha plan beside ZoomInfo, a reason for every
difference)."""

from __future__ import annotations

import datetime as dt
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generators.demo_data import write_demo
from tests.conftest import REPO, rows, run_pipeline

DEMO = REPO / "data" / "demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    con = run_pipeline(DEMO, tmp_path_factory.mktemp("demo") / "w.duckdb", dt.date(2025, 11, 10))
    yield con
    con.close()


def month(con, client: str, when: str, vendor: str = "zoominfo") -> dict[str, object]:  # type: ignore[no-untyped-def]
    (row,) = rows(
        con,
        f"SELECT * FROM monthly_balances WHERE vendor = '{vendor}' AND client_id = '{client}' "
        f"AND month = '{when}'",
    )
    return row


def test_bluepoint_as_in_the_note(demo) -> None:  # type: ignore[no-untyped-def]
    october = month(demo, "bluepoint", "2025-10-01")
    # 1,400 in October: the standard 1,000 plus a one-time gift of 400, shown apart
    assert (october["baseline_credits"], october["gift_credits"], october["available_credits"]) == (
        1000,
        400,
        1400,
    )
    november = month(demo, "bluepoint", "2025-11-01")
    # November resets to 1,000: the gift is not the new baseline, nothing rolled over
    assert (
        november["baseline_credits"],
        november["gift_credits"],
        november["opening_balance"],
    ) == (1000, 0, 0)
    assert (november["charged_credits"], november["closing_balance"]) == (278, 722)
    assert november["free_reexports"] == 45
    assert [
        m["forfeited_credits"]
        for m in rows(
            demo,
            "SELECT forfeited_credits FROM monthly_balances WHERE client_id = 'bluepoint' "
            "ORDER BY month",
        )
    ] == [150, 80, 90, 0]


def test_the_rest_of_the_story(demo) -> None:  # type: ignore[no-untyped-def]
    sep = month(demo, "northwind", "2025-09-01")
    assert (sep["available_credits"], sep["charged_credits"], sep["overage_credits"]) == (
        500,
        620,
        120,
    )
    assert month(demo, "unassigned", "2025-10-01")["overage_credits"] == 35
    # dan.kim moved to Crestline on 1 October; Harbor View re-exported 20 of Bluepoint's contacts
    assert month(demo, "crestline", "2025-10-01")["charged_credits"] == 180
    assert month(demo, "harborview", "2025-10-01")["free_reexports"] == 20
    reasons = rows(demo, "SELECT source, count(*) AS n FROM quarantine GROUP BY ALL ORDER BY ALL")
    assert reasons == [
        {"source": "users", "n": 1},
        {"source": "zoominfo_downloads", "n": 1},
        {"source": "zoominfo_exports", "n": 13},
        {"source": "zoominfo_usage", "n": 1},
    ]
    assert rows(demo, "SELECT count(*) AS n FROM ingest_manifest WHERE status = 'duplicate'") == [
        {"n": 1}
    ]


def test_bluepoint_uses_zoominfo_only(demo) -> None:  # type: ignore[no-untyped-def]
    assert rows(
        demo, "SELECT DISTINCT vendor FROM monthly_balances WHERE client_id = 'bluepoint'"
    ) == [{"vendor": "zoominfo"}]


def test_6sense_pool_allocations_repeat_and_reversal(demo) -> None:  # type: ignore[no-untyped-def]
    figures = {
        (r["client_id"], str(r["month"])): (
            r["available_credits"],
            r["charged_credits"],
            r["consumed_credits"],
            r["overage_credits"],
            r["reversed_credits"],
            r["closing_balance"],
        )
        for r in rows(demo, "SELECT * FROM monthly_balances WHERE vendor = '6sense'")
    }
    # One lot per client for the contract (reset none): Harbor View 250 - 60 - 90 - 20.
    # Northwind 150 - 40 = 110; October buys 117 + 3 repeats = 120: 110 from the lot, 9
    # beyond it, and the credit 6S-CASE-1042 gave back on 20 October spent again (111).
    assert figures == {
        ("harborview", "2025-09-01"): (250, 60, 60, 0, 0, 190),
        ("harborview", "2025-10-01"): (190, 90, 90, 0, 0, 100),
        ("harborview", "2025-11-01"): (100, 20, 20, 0, 0, 80),
        ("northwind", "2025-09-01"): (150, 40, 40, 0, 0, 110),
        ("northwind", "2025-10-01"): (110, 120, 111, 9, 1, 0),
        ("northwind", "2025-11-01"): (0, 30, 0, 30, 0, 0),
    }
    pool = rows(
        demo,
        "SELECT month::VARCHAR AS m, used, true_up_credits, true_up_value, beyond_cap_credits, "
        "allocated_to_clients, allocations_exceed_pool FROM pool_overconsumption "
        "WHERE vendor = '6sense' ORDER BY m",
    )
    # To date: 100; 100 + 210 - 1 given back = 309 (9 past the pool of 300, at 0.90);
    # 309 + 50 = 359 (59 to true up, 19 past the cap of 340). 250 + 150 allotted > 300.
    assert [tuple(r.values()) for r in pool] == [
        ("2025-09-01", 100, 0, 0.0, 0, 400, True),
        ("2025-10-01", 309, 9, 8.1, 0, 400, True),
        ("2025-11-01", 359, 59, 53.1, 19, 400, True),
    ]
    repeats = rows(
        demo,
        "SELECT first_client_id, repeat_client_id, cross_client, credits_reversed, "
        "credits_disputable FROM duplicate_reexports WHERE vendor = '6sense' "
        "ORDER BY repeat_exported_at",
    )
    # Northwind bought 3 of Harbor View's contacts again; the vendor reversed the last.
    assert [tuple(r.values()) for r in repeats] == [
        ("harborview", "northwind", True, 0, 1),
        ("harborview", "northwind", True, 0, 1),
        ("harborview", "northwind", True, 1, 0),
    ]
    disputes = rows(
        demo, "SELECT vendor, month::VARCHAR AS m, credits_to_reverse FROM disputes ORDER BY 1"
    )
    assert disputes == [
        {"vendor": "6sense", "m": "2025-10-01", "credits_to_reverse": 2},
        {"vendor": "zoominfo", "m": "2025-10-01", "credits_to_reverse": 12},
    ]
    grades = rows(
        demo,
        "SELECT email_confidence AS g, sum(contacts) AS n FROM purchase_quality "
        "GROUP BY ALL ORDER BY g",
    )
    assert {r["g"] for r in grades} == {"A+", "A", "B", "C", "unknown"}
    assert sum(r["n"] for r in grades) == 60 + 40 + 90 + 120 + 20 + 30


def test_apollo_beside_zoominfo(demo) -> None:  # type: ignore[no-untyped-def]
    got = [
        (str(r["month"]), r["available_credits"], r["charged_credits"], r["forfeited_credits"])
        for r in rows(demo, "SELECT * FROM monthly_balances WHERE vendor = 'apollo' ORDER BY month")
    ]
    # 28 August, before the plan: 1 overage. Then 60 a month: 2 emails + 4 mobiles = 22,
    # 5 + 25 + a free re-reveal = 30, 3 emails so far in November.
    assert got == [
        ("2025-08-01", 0, 1, 0),
        ("2025-09-01", 60, 22, 38),
        ("2025-10-01", 60, 30, 30),
        ("2025-11-01", 60, 3, 0),
    ]


def test_lusha_from_november(demo) -> None:  # type: ignore[no-untyped-def]
    got = [
        tuple(r.values())
        for r in rows(
            demo,
            "SELECT client_id, month::VARCHAR, available_credits, charged_credits, "
            "closing_balance, free_reexports FROM monthly_balances WHERE vendor = 'lusha'",
        )
    ]
    # 30 a month from November: 12 contacts revealed (1 each), 3 of them again for free;
    # 30 - 12 = 18 left on the 10th
    assert got == [("crestline", "2025-11-01", 30, 12, 18, 3)]
    (recon,) = rows(
        demo,
        "SELECT reported_credits, reported_from, computed_credits, reason "
        "FROM vendor_reconciliation WHERE vendor = 'lusha'",
    )
    # Lusha's export: 12 x 1 + 3 x 0 = 12, as the rules charge
    assert tuple(recon.values()) == (12, "usage export", 12, "reconciled: reported equals computed")


def test_every_reconciliation_reason_has_a_row(demo) -> None:  # type: ignore[no-untyped-def]
    reasons = [
        (r["vendor"], r["user"], r["variance"], r["reason"])
        for r in rows(
            demo,
            "SELECT vendor, split_part(user, '@', 1) AS user, variance, reason "
            "FROM vendor_reconciliation WHERE reason NOT LIKE 'reconciled%' ORDER BY ALL",
        )
    ]
    assert reasons == [
        ("6sense", "priya.shah", 2, "unexplained: 2"),
        ("apollo", "rita.gomez", 0, "outside any contract: 1"),
        ("zoominfo", "intern.temp", 0, "unknown user (counted against client unassigned)"),
        (
            "zoominfo",
            "lena.park",
            12,
            "usage summary with no exports: 12; unknown user (counted against client unassigned)",
        ),
        ("zoominfo", "priya.shah", 5, "usage summary differs from listings by 5"),
        ("zoominfo", "tom.reyes", 12, "charged re-export: 12"),
        ("zoominfo", "tom.reyes", 15, "listing without export file: 15"),
        (
            "zoominfo",
            None,
            0,
            "export file with no listing: "
            "inbox/zoominfo/exports/northwind_contacts_2025-10-31.csv (10 rows)",
        ),
    ]
    reconciled = rows(
        demo,
        "SELECT DISTINCT vendor FROM vendor_reconciliation WHERE reason LIKE 'reconciled%' "
        "ORDER BY 1",
    )
    assert reconciled == [
        {"vendor": "6sense"},
        {"vendor": "apollo"},
        {"vendor": "lusha"},
        {"vendor": "zoominfo"},
    ]


def test_the_open_month_ahead(demo) -> None:  # type: ignore[no-untyped-def]
    pace = {
        r["client_id"]: (r["projected_forfeit"], r["projected_overage"])
        for r in rows(demo, "SELECT * FROM pace_forecast WHERE vendor = 'zoominfo'")
    }
    # Northwind's pace runs past its 500, Harbor View's leaves credits to lose.
    assert pace["northwind"][1] > 0 and pace["harborview"][0] > 0


def test_the_shipped_demo_is_what_the_writer_writes(tmp_path: Path) -> None:
    write_demo(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    shipped = sorted(
        p.relative_to(DEMO) for p in DEMO.rglob("*") if p.is_file() and "warehouse" not in p.parts
    )
    assert written == shipped
    assert all(filecmp.cmp(tmp_path / p, DEMO / p, shallow=False) for p in written)


def test_the_writer_asked_for_help_writes_nothing(tmp_path: Path) -> None:
    # An option is not a folder name: "--help" once wrote a demo folder called "--help".
    def writer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "generators.demo_data", *args],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=False,
        )

    done = writer("--help")
    assert done.returncode == 0 and "folder" in done.stdout
    assert list(tmp_path.iterdir()) == []
    done = writer("--silly")
    assert done.returncode == 2 and "unrecognized arguments: --silly" in done.stderr
    assert list(tmp_path.iterdir()) == []
