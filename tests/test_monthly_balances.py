"""Hand-computed scenario: every column of monthly_balances, by client and month.

Two clients over January-March 2025, as of 2025-03-10. The expected figures are worked out
in the comments next to each export, from DOMAIN.md rules 1-4 and 9.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import rows, run_pipeline, write_folder

LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)
CONTACTS = "ZoomInfo Contact ID,Email Address\n"
COMPANIES = "ZoomInfo Company ID,Company Name\n"


def contacts(*ids: int) -> str:
    return CONTACTS + "".join(f"{i},p{i}@example.com\n" for i in ids)


SCENARIO = {
    "config/clients.csv": """
        client_id,client_name
        acme,Acme
        beta,Beta
    """,
    # bob works for beta until 2025-02-15 (exclusive), then for acme.
    "config/users.csv": """
        vendor,user,client_id,valid_from,valid_to
        zoominfo,alice@agency.test,acme,2025-01-01,
        zoominfo,bob@agency.test,beta,2025-01-01,2025-02-15
        zoominfo,bob@agency.test,acme,2025-02-15,
    """,
    "config/contracts.csv": """
        vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,price_per_credit
        zoominfo,ZI-1,2025-01-01,2026-01-01,20,monthly,true,25,0.5
    """,
    # acme: 5 a month, 4 from March. beta: 3 a month.
    "config/allocations.csv": """
        vendor,client_id,effective_month,monthly_credits
        zoominfo,acme,2025-01,5
        zoominfo,beta,2025-01,3
        zoominfo,acme,2025-03,4
    """,
    # G1: acme's one-time gift, for February only (default expiry: 2025-03-01).
    # G2: beta's gift with its own expiry, spanning two months.
    "config/grants.csv": """
        vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note
        zoominfo,acme,G1,gift,2,2025-02-10,,February courtesy
        zoominfo,beta,G2,gift,3,2025-01-20,2025-02-20,launch bonus
    """,
    "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n",
    "inbox/zoominfo/downloads/listing.csv": LISTING
    # acme January: 3 new contacts -> 3 from the January baseline (5); 2 forfeited.
    + "E1,jan,e1.csv,alice@agency.test,2025-01-05 10:00:00,Contacts,3,3\n"
    # beta January: 101 was charged to acme in E1 -> free (cross-client); 4 new. Lots open:
    # baseline Jan (3, expires 02-01) and G2 (3, expires 02-20): baseline first -> 3, G2 -> 1.
    + "E2,jan,e2.csv,bob@agency.test,2025-01-25 09:00:00,Contacts,5,4\n"
    # acme February: 2 companies. Baseline Feb (5) and G1 (2) both expire 03-01: gift first.
    + "E3,feb,e3.csv,alice@agency.test,2025-02-12 08:00:00,Companies,2,2\n"
    # beta February (bob still beta): 3 new. G2 (2 left, expires 02-20) before baseline Feb
    # (3, expires 03-01) -> G2 2, baseline 1; baseline's other 2 are forfeited on 03-01.
    + "E4,feb,e4.csv,bob@agency.test,2025-02-14 12:00:00,Contacts,3,3\n"
    # bob now works for acme: 102 free (acme charged it in January), 6 new: acme's February
    # baseline has 5 left -> 5 consumed, 1 overage.
    + "E5,feb,e5.csv,bob@agency.test,2025-02-20 09:00:00,Contacts,7,6\n"
    # eve is in no users.csv row: client unassigned, no lots -> 2 overage.
    + "E6,mar,e6.csv,eve@agency.test,2025-03-02 16:30:00,Contacts,2,2\n"
    # acme March: 103 free, 501 new -> 1 from the March baseline (4); 3 left at the as-of date.
    + "E7,mar,e7.csv,alice@agency.test,03/05/2025 11:00 AM,Contacts,2,1\n"
    # A row with a day-first date: quarantined, never guessed.
    + "E8,bad,e8.csv,alice@agency.test,31/01/2025 10:00,Contacts,1,1\n",
    "inbox/zoominfo/exports/e1.csv": contacts(101, 102, 103),
    "inbox/zoominfo/exports/e2.csv": contacts(101, 201, 202, 203, 204),
    "inbox/zoominfo/exports/e3.csv": COMPANIES + "9001,Nine Inc\n9002,Ninety Two LLC\n",
    "inbox/zoominfo/exports/e4.csv": contacts(205, 206, 207),
    "inbox/zoominfo/exports/e5.csv": contacts(102, 301, 302, 303, 304, 305, 306),
    "inbox/zoominfo/exports/e6.csv": contacts(401, 402),
    "inbox/zoominfo/exports/e7.csv": contacts(103, 501),
    "inbox/zoominfo/exports/e8.csv": contacts(601),
}

COLUMNS = [
    "baseline_credits",
    "gift_credits",
    "purchased_credits",
    "earned_credits",
    "adjustment_credits",
    "opening_balance",
    "available_credits",
    "charged_credits",
    "consumed_credits",
    "overage_credits",
    "reversed_credits",
    "forfeited_credits",
    "closing_balance",
    "free_reexports",
]

# (client, month): baseline, gift, purchased, earned, adjustment, opening, available,
# charged, consumed, overage, reversed, forfeited, closing, free re-exports
EXPECTED = {
    ("acme", "2025-01-01"): (5, 0, 0, 0, 0, 0, 5, 3, 3, 0, 0, 2, 0, 0),
    ("acme", "2025-02-01"): (5, 2, 0, 0, 0, 0, 7, 8, 7, 1, 0, 0, 0, 1),
    ("acme", "2025-03-01"): (4, 0, 0, 0, 0, 0, 4, 1, 1, 0, 0, 0, 3, 1),
    ("beta", "2025-01-01"): (3, 3, 0, 0, 0, 0, 6, 4, 4, 0, 0, 0, 2, 1),
    ("beta", "2025-02-01"): (3, 0, 0, 0, 0, 2, 5, 3, 3, 0, 0, 2, 0, 0),
    ("beta", "2025-03-01"): (3, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 3, 0),
    ("unassigned", "2025-03-01"): (0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("scenario")
    data = write_folder(root / "data", SCENARIO)
    con = run_pipeline(data, root / "wh" / "w.duckdb", dt.date(2025, 3, 10))
    yield con
    con.close()


def test_every_column_of_monthly_balances(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = {
        (r["client_id"], str(r["month"])): tuple(r[c] for c in COLUMNS)
        for r in rows(warehouse, "SELECT * FROM monthly_balances WHERE vendor = 'zoominfo'")
    }
    assert got == EXPECTED


def test_only_the_as_of_month_is_open(warehouse) -> None:  # type: ignore[no-untyped-def]
    open_months = rows(warehouse, "SELECT DISTINCT month FROM monthly_balances WHERE is_open_month")
    assert open_months == [{"month": dt.date(2025, 3, 1)}]


def test_burn_order_lineage(warehouse) -> None:  # type: ignore[no-untyped-def]
    """Which lot each charge drew on: the expiring-first, gift-before-baseline order."""
    drawn = {
        (r["export_id"], r["lot_id"]): r["n"]
        for r in rows(
            warehouse,
            "SELECT export_id, coalesce(lot_id, 'overage') AS lot_id, sum(credits)::INT AS n "
            "FROM ledger_entries WHERE entry_type IN ('consume', 'overage') GROUP BY ALL",
        )
    }
    assert drawn == {
        ("E1", "zoominfo:acme:baseline:2025-01"): 3,
        ("E2", "zoominfo:beta:baseline:2025-01"): 3,
        ("E2", "zoominfo:beta:gift:G2"): 1,
        ("E3", "zoominfo:acme:gift:G1"): 2,
        ("E4", "zoominfo:beta:gift:G2"): 2,
        ("E4", "zoominfo:beta:baseline:2025-02"): 1,
        ("E5", "zoominfo:acme:baseline:2025-02"): 5,
        ("E5", "overage"): 1,
        ("E6", "overage"): 2,
        ("E7", "zoominfo:acme:baseline:2025-03"): 1,
    }


def test_forfeitures(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT client_id, lot_id, lot_credits, used_credits, forfeited_credits, "
        "forfeited_at::DATE::VARCHAR AS at, month::VARCHAR AS month FROM forfeitures",
    )
    assert got == [
        {
            "client_id": "acme",
            "lot_id": "zoominfo:acme:baseline:2025-01",
            "lot_credits": 5,
            "used_credits": 3,
            "forfeited_credits": 2,
            "at": "2025-02-01",
            "month": "2025-01-01",
        },
        {
            "client_id": "beta",
            "lot_id": "zoominfo:beta:baseline:2025-02",
            "lot_credits": 3,
            "used_credits": 1,
            "forfeited_credits": 2,
            "at": "2025-03-01",
            "month": "2025-02-01",
        },
    ]


def test_free_reexports_name_the_original_window(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT client_id, export_id, record_key FROM ledger_entries "
        "WHERE entry_type = 'reexport' ORDER BY effective_at",
    )
    assert got == [
        {"client_id": "beta", "export_id": "E2", "record_key": "101"},
        {"client_id": "acme", "export_id": "E5", "record_key": "102"},
        {"client_id": "acme", "export_id": "E7", "record_key": "103"},
    ]


def test_bad_rows_are_quarantined_with_reasons(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse, "SELECT file, row_number, reason FROM quarantine ORDER BY file, row_number"
    )
    assert [(r["file"], r["row_number"]) for r in got] == [
        ("inbox/zoominfo/downloads/listing.csv", 9),
        ("inbox/zoominfo/exports/e8.csv", 2),
    ]
    assert '"31/01/2025 10:00" is not a date' in str(got[0]["reason"])
    assert "no loaded downloads listing row names this file" in str(got[1]["reason"])


def test_every_input_row_is_loaded_or_quarantined(warehouse) -> None:  # type: ignore[no-untyped-def]
    manifest = rows(
        warehouse, "SELECT path, rows_read, rows_loaded, rows_quarantined FROM ingest_manifest"
    )
    assert len(manifest) == len(SCENARIO)
    for m in manifest:
        assert m["rows_read"] == m["rows_loaded"] + m["rows_quarantined"], m
    by_path = {m["path"]: m for m in manifest}
    assert by_path["inbox/zoominfo/downloads/listing.csv"]["rows_loaded"] == 7
    assert by_path["inbox/zoominfo/exports/e5.csv"]["rows_read"] == 7


def test_tables_and_columns_are_described(warehouse) -> None:  # type: ignore[no-untyped-def]
    undocumented = rows(
        warehouse,
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND (comment IS NULL OR comment = '')",
    )
    assert undocumented == []
    tables = {
        r["table_name"]
        for r in rows(warehouse, "SELECT table_name FROM duckdb_tables() WHERE comment <> ''")
    }
    assert {
        "ledger_entries",
        "monthly_balances",
        "forfeitures",
        "quarantine",
        "ingest_manifest",
    } <= tables


def test_reexport_window_is_twelve_months_from_the_last_charge(tmp_path: Path) -> None:
    """Charged 2024-01-10; free 11 months on; charged again at exactly 12 months (a new
    window starts); free a month later; charged again 13 months after that."""
    files = {k: v for k, v in SCENARIO.items() if k.startswith("config/")}
    files["config/contracts.csv"] = (
        "vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,price_per_credit\n"
        "zoominfo,ZI-0,2024-01-01,2027-01-01,20,monthly,true,25,0.5\n"
    )
    dates = [
        "2024-01-10 09:00:00",
        "2024-12-10 09:00:00",
        "2025-01-10 09:00:00",
        "2025-02-10 09:00:00",
        "2026-02-10 09:00:00",
    ]
    listing = LISTING + "".join(
        f"W{i},w,w{i}.csv,alice@agency.test,{d},Contacts,1,1\n" for i, d in enumerate(dates)
    )
    files["inbox/zoominfo/downloads/l.csv"] = listing
    for i in range(len(dates)):
        files[f"inbox/zoominfo/exports/w{i}.csv"] = contacts(777)
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2026, 3, 1)
    )
    got = rows(
        con,
        "SELECT export_id, entry_type FROM ledger_entries WHERE record_key = '777' ORDER BY effective_at",
    )
    assert [(r["export_id"], r["entry_type"]) for r in got] == [
        ("W0", "overage"),  # no allocation before 2025-01 for acme: charged, beyond all lots
        ("W1", "reexport"),
        ("W2", "consume"),
        ("W3", "reexport"),
        ("W4", "consume"),
    ]


def test_data_dictionary_in_docs_is_current(warehouse) -> None:  # type: ignore[no-untyped-def]
    """docs/data-dictionary.md is what `creditrecon dictionary` prints: regenerate it with
    `creditrecon dictionary > docs/data-dictionary.md` after changing a model's declaration
    (transforms/models/<area>/<name>.toml)."""
    from tests.conftest import REPO
    from transforms.dictionary import data_dictionary

    assert (REPO / "docs" / "data-dictionary.md").read_text() == data_dictionary(warehouse) + "\n"


def test_parquet_exports_partitioned_by_month(warehouse, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    import duckdb as ddb

    path = Path(
        warehouse.sql(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()[0][0]
    )
    parquet = path.with_name(path.stem + "-parquet")
    months = sorted(p.name for p in (parquet / "monthly_balances").iterdir())
    assert months == ["month=2025-01-01", "month=2025-02-01", "month=2025-03-01"]
    con = ddb.connect()
    for table in (
        "monthly_balances",
        "ledger_entries",
        "forfeitures",
        "credit_lots",
        "quarantine",
        "ingest_manifest",
    ):
        n = con.sql(
            f"SELECT count(*) FROM read_parquet('{parquet / table}/**/*.parquet')"
        ).fetchall()[0][0]
        assert n == warehouse.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0], table


def test_client_overconsumption(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = {
        (r["client_id"], str(r["month"])): (
            r["allocation"],
            r["used"],
            r["over"],
            r["share_of_pool_use"],
            r["over_value"],
        )
        for r in rows(warehouse, "SELECT * FROM client_overconsumption")
    }
    # February: acme used 8 of its 7 (1 over, at 0.50), beta 3; acme's share 8 / 11
    assert got[("acme", "2025-02-01")] == (7, 8, 1, 0.7273, 0.5)
    assert got[("beta", "2025-02-01")] == (5, 3, 0, 0.2727, 0.0)
    assert got[("unassigned", "2025-03-01")] == (0, 2, 2, 0.6667, 1.0)
    pool = rows(
        warehouse,
        "SELECT month::VARCHAR AS m, used, true_up_credits, allocated_to_clients, allocations_exceed_pool FROM pool_overconsumption",
    )
    assert pool == [
        {
            "m": "2025-01-01",
            "used": 7,
            "true_up_credits": 0,
            "allocated_to_clients": 8,
            "allocations_exceed_pool": False,
        },
        {
            "m": "2025-02-01",
            "used": 11,
            "true_up_credits": 0,
            "allocated_to_clients": 8,
            "allocations_exceed_pool": False,
        },
        {
            "m": "2025-03-01",
            "used": 3,
            "true_up_credits": 0,
            "allocated_to_clients": 7,
            "allocations_exceed_pool": False,
        },
    ]


def test_pace_forecast_for_the_open_month(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = {
        r["client_id"]: (
            r["used_so_far"],
            r["projected_use"],
            r["projected_forfeit"],
            r["projected_overage"],
            r["daily_pace_needed"],
        )
        for r in rows(warehouse, "SELECT * FROM pace_forecast")
    }
    # 10 days of 31 gone. acme: 1 used -> 3 projected; 3 credits expire on Apr 1, the pace
    # uses 2 more: 1 forfeited; 3 / 21 days = 0.1 a day. unassigned: 2 -> 6, all overage.
    assert got == {
        "acme": (1, 3, 1, 0, 0.1),
        "beta": (0, 0, 3, 0, 0.1),
        "unassigned": (2, 6, 0, 6, 0.0),
    }
