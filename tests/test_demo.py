"""The demo folder the repo ships: Bluepoint as in the agency's note, and the rest of the
story the demo tells (a client over its allocation, an unknown user, re-exports, mess)."""

from __future__ import annotations

import datetime as dt
import filecmp
from pathlib import Path

import pytest

from flows.demo_data import write_demo
from tests.conftest import REPO, rows, run_pipeline

DEMO = REPO / "data" / "demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    con = run_pipeline(DEMO, tmp_path_factory.mktemp("demo") / "w.duckdb", dt.date(2025, 11, 10))
    yield con
    con.close()


def month(con, client: str, when: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    (row,) = rows(
        con, f"SELECT * FROM monthly_balances WHERE client_id = '{client}' AND month = '{when}'"
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
            "SELECT forfeited_credits FROM monthly_balances WHERE client_id = 'bluepoint' ORDER BY month",
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


def test_the_shipped_demo_is_what_the_writer_writes(tmp_path: Path) -> None:
    write_demo(tmp_path)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    shipped = sorted(
        p.relative_to(DEMO) for p in DEMO.rglob("*") if p.is_file() and "warehouse" not in p.parts
    )
    assert written == shipped
    assert all(filecmp.cmp(tmp_path / p, DEMO / p, shallow=False) for p in written)
