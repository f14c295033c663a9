"""Hand-computed scenarios for each lot kind, contracts that do not reset, reversals
(into an open lot, into an expired lot, against overage, refused ones) and balance_at."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from tests.conftest import rows, run_pipeline, write_folder

CONTRACT_HEADER = "vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,price_per_credit\n"
MONTHLY_2025 = CONTRACT_HEADER + "zoominfo,ZI,2025-01-01,2026-01-01,50,monthly,true,,\n"


def agency(
    root: Path,
    *,
    allocations: str,
    exports: list[tuple[str, str, list[int]]],
    grants: str = "",
    reversals: str = "",
    contracts: str = MONTHLY_2025,
) -> Path:
    """exports: (Export ID, Export Date, contact IDs), all by alice (client acme)."""
    files = {
        "config/clients.csv": "client_id,client_name\nacme,Acme\n",
        "config/users.csv": "vendor,user,client_id,valid_from,valid_to\nzoominfo,alice,acme,,\n",
        "config/contracts.csv": contracts,
        "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
        + allocations,
        "config/grants.csv": "vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note\n"
        + grants,
        "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n" + reversals,
        "inbox/zoominfo/downloads/l.csv": "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
        + "".join(
            f"{e},n,{e}.csv,alice,{at},Contacts,{len(ids)},{len(ids)}\n" for e, at, ids in exports
        ),
    }
    for e, _, ids in exports:
        files[f"inbox/zoominfo/exports/{e}.csv"] = "ZoomInfo Contact ID\n" + "".join(
            f"{i}\n" for i in ids
        )
    return write_folder(root, files)


BALANCE = (
    "baseline_credits, gift_credits, purchased_credits, earned_credits, opening_balance, "
    "available_credits, charged_credits, consumed_credits, overage_credits, reversed_credits, "
    "overage_reversed_credits, forfeited_credits, closing_balance"
)


def balances(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, ...]]:
    return {
        str(r[0]): tuple(r[1:])
        for r in con.sql(
            f"SELECT month, {BALANCE} FROM monthly_balances WHERE client_id = 'acme' ORDER BY month"
        ).fetchall()
    }


def test_purchase_earned_gift_and_baseline_in_burn_order(tmp_path: Path) -> None:
    # Lots: baseline 2 a month; earned S1 3 (Jan 1 - Mar 1, explicit); purchase P1 10 from
    # Jan 15 (default 12 months: to 2026-01-15); gift G1 2 on Jan 20 (default: to Feb 1).
    data = agency(
        tmp_path / "d",
        allocations="zoominfo,acme,2025-01,2\n",
        grants="zoominfo,acme,S1,earned,3,2025-01-01,2025-03-01,survey\n"
        "zoominfo,acme,P1,purchase,10,2025-01-15,,block of 10\n"
        "zoominfo,acme,G1,gift,2,2025-01-20,,courtesy\n",
        exports=[
            # Jan 10: open baseline Jan (exp 02-01) and S1 (exp 03-01): baseline 2, S1 1.
            ("E1", "2025-01-10 09:00:00", [1, 2, 3]),
            # Jan 25: G1 and baseline expire 02-01 (gift first): G1 2; then S1 2. P1 untouched.
            ("E2", "2025-01-25 09:00:00", [4, 5, 6, 7]),
            # Feb 5: baseline Feb (exp 03-01) before P1 (exp 2026): baseline 2, P1 3.
            ("E3", "2025-02-05 09:00:00", [8, 9, 10, 11, 12]),
        ],
    )
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 3, 5))
    assert balances(con) == {
        # base gift purch earned open avail charged consumed over rev orev forf close
        "2025-01-01": (2, 2, 10, 3, 0, 17, 7, 7, 0, 0, 0, 0, 10),
        "2025-02-01": (2, 0, 0, 0, 10, 12, 5, 5, 0, 0, 0, 0, 7),
        "2025-03-01": (2, 0, 0, 0, 7, 9, 0, 0, 0, 0, 0, 0, 9),
    }
    drawn = rows(
        con,
        "SELECT export_id, lot_id, sum(credits)::INT AS n FROM ledger_entries "
        "WHERE entry_type = 'consume' GROUP BY ALL ORDER BY export_id, lot_id",
    )
    assert [(r["export_id"], r["lot_id"].split(":", 2)[2], r["n"]) for r in drawn] == [
        ("E1", "baseline:2025-01", 2),
        ("E1", "earned:S1", 1),
        ("E2", "earned:S1", 2),
        ("E2", "gift:G1", 2),
        ("E3", "baseline:2025-02", 2),
        ("E3", "purchase:P1", 3),
    ]
    lots = {r["lot_id"].split(":", 2)[2]: r for r in rows(con, "SELECT * FROM credit_lots")}
    assert lots["purchase:P1"]["expires_on"] == dt.date(2026, 1, 15)
    assert lots["gift:G1"]["expires_on"] == dt.date(2025, 2, 1)
    # A year on, P1's 7 unused credits are lost on 2026-01-15, counted in January 2026.
    con.close()  # (one process keeps one instance per path: close it to see the new file)
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2026, 1, 20))
    lost = rows(
        con, "SELECT lot_id, forfeited_credits, month FROM forfeitures WHERE lot_kind = 'purchase'"
    )
    assert lost == [
        {
            "lot_id": "zoominfo:acme:purchase:P1",
            "forfeited_credits": 7,
            "month": dt.date(2026, 1, 1),
        }
    ]


def test_contract_without_reset_is_one_lot_for_the_period(tmp_path: Path) -> None:
    # 6sense style: 5 credits for 2025-01-10 .. 2025-04-01; nothing rolls over or resets.
    data = agency(
        tmp_path / "d",
        contracts=CONTRACT_HEADER + "zoominfo,POOL,2025-01-10,2025-04-01,5,none,true,6,1.0\n",
        allocations="zoominfo,acme,2025-01,5\n",
        exports=[
            ("E1", "2025-01-12 09:00:00", [1, 2]),
            ("E2", "2025-03-03 09:00:00", [3, 4, 5, 6]),
        ],
    )
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 4, 2))
    assert balances(con) == {
        "2025-01-01": (5, 0, 0, 0, 0, 5, 2, 2, 0, 0, 0, 0, 3),
        "2025-02-01": (0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 3),
        "2025-03-01": (0, 0, 0, 0, 3, 3, 4, 3, 1, 0, 0, 0, 0),
        "2025-04-01": (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    }
    assert rows(con, "SELECT lot_id, effective_on, expires_on FROM credit_lots") == [
        {
            "lot_id": "zoominfo:acme:baseline:POOL",
            "effective_on": dt.date(2025, 1, 10),
            "expires_on": dt.date(2025, 4, 1),
        }
    ]


def test_reversals(tmp_path: Path) -> None:
    data = agency(
        tmp_path / "d",
        allocations="zoominfo,acme,2025-01,3\n",
        exports=[
            ("E0", "2025-01-05 09:00:00", [9]),  # January's lot: 3 -> 2
            # contacts 1 and 2 draw January's last 2 credits; 3, 4 and 5 are overage
            ("E1", "2025-01-10 09:00:00", [1, 2, 3, 4, 5]),
            # drawn from the credit T1 gave back to January's lot
            ("E2", "2025-01-25 09:00:00", [6]),
        ],
        reversals=(
            # Most recent charges first: 5, 4, 3 (overage), then 2 (January's lot, still open).
            "zoominfo,T1,E1,4,2025-01-20\n"
            # Contact 9's charge drew on January's lot, expired by Feb 5: forfeited at once.
            "zoominfo,T2,9,1,2025-02-05\n"
            # E1 charged 5 and 4 are already reversed: 3 more is too many.
            "zoominfo,T3,E1,3,2025-02-06\n"
            "zoominfo,T4,XYZ,1,2025-02-07\n"
            # Contact 1 belongs to E1, which is reversed by Export ID already.
            "zoominfo,T5,1,1,2025-02-08\n"
        ),
    )
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 2, 10))
    assert balances(con) == {
        # base gift purch earned open avail charged consumed over rev orev forf close
        "2025-01-01": (3, 0, 0, 0, 0, 3, 7, 4, 3, 1, 3, 0, 0),
        "2025-02-01": (3, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 1, 3),
    }
    given = rows(
        con,
        "SELECT entry_type, coalesce(lot_id, 'pool') AS lot, credits, effective_at::DATE AS on_ "
        "FROM ledger_entries WHERE source_file = 'config/reversals.csv' ORDER BY effective_at, entry_type, lot",
    )
    assert [(g["entry_type"], g["lot"], g["credits"], str(g["on_"])) for g in given] == [
        ("reverse", "pool", 3, "2025-01-20"),
        ("reverse", "zoominfo:acme:baseline:2025-01", 1, "2025-01-20"),
        ("forfeit", "zoominfo:acme:baseline:2025-01", 1, "2025-02-05"),
        ("reverse", "zoominfo:acme:baseline:2025-01", 1, "2025-02-05"),
    ]
    e2 = rows(
        con, "SELECT lot_id FROM ledger_entries WHERE export_id = 'E2' AND entry_type = 'consume'"
    )
    assert e2 == [{"lot_id": "zoominfo:acme:baseline:2025-01"}]
    refused = {
        r["row_number"]: r["reason"]
        for r in rows(con, "SELECT * FROM quarantine WHERE source = 'reversals'")
    }
    assert refused == {
        4: "reverses 3 credits but E1 charged only 5 (4 already reversed)",
        5: "reference XYZ matches no charged export or record of zoominfo",
        6: "its charge is in export E1, which is already reversed by Export ID; reverse by one reference only",
    }


def test_a_charge_and_its_full_reversal_leave_balances_as_they_were(tmp_path: Path) -> None:
    base = dict(
        allocations="zoominfo,acme,2025-01,4\n", grants="zoominfo,acme,P,purchase,5,2025-01-01,,\n"
    )
    without = run_pipeline(
        agency(tmp_path / "a", exports=[], **base), tmp_path / "a.duckdb", dt.date(2025, 3, 1)
    )
    with_reversed = run_pipeline(
        agency(
            tmp_path / "b",
            exports=[("E1", "2025-01-10 09:00:00", [1, 2, 3, 4, 5, 6])],
            reversals="zoominfo,T,E1,6,2025-01-11\n",
            **base,
        ),
        tmp_path / "b.duckdb",
        dt.date(2025, 3, 1),
    )
    closing = (
        "SELECT month, closing_balance, forfeited_credits FROM monthly_balances ORDER BY month"
    )
    assert with_reversed.sql(closing).fetchall() == without.sql(closing).fetchall()


def test_balance_at_any_instant(tmp_path: Path) -> None:
    data = agency(
        tmp_path / "d",
        allocations="zoominfo,acme,2025-01,5\n",
        grants="zoominfo,acme,G,gift,2,2025-01-10,,\n",
        exports=[("E1", "2025-01-12 08:00:00", [1, 2, 3]), ("E2", "2025-01-20 09:00:00", [4])],
    )
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 2, 10))

    def at(t: str) -> list[tuple[object, ...]]:
        return con.sql(
            f"SELECT client_id, credits_left, open_lots FROM client_balance_at(TIMESTAMP '{t}')"
        ).fetchall()

    assert at("2025-01-05 00:00") == [("acme", 5, 1)]
    assert at("2025-01-10 00:00") == [("acme", 7, 2)]
    assert at("2025-01-12 07:59") == [("acme", 7, 2)]
    assert at("2025-01-12 08:00") == [("acme", 4, 2)]  # gift first: G 0, baseline 4
    assert at("2025-01-20 09:00") == [("acme", 3, 2)]
    assert at("2025-02-01 00:00") == [("acme", 5, 1)]  # January's lots are gone; February's opens
    comment = con.sql(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'client_balance_at'"
    ).fetchall()
    assert comment == [(1,)]


def test_pool_true_up_for_a_contract_without_reset(tmp_path: Path) -> None:
    data = agency(
        tmp_path / "d",
        contracts=CONTRACT_HEADER + "zoominfo,POOL,2025-01-10,2025-04-01,5,none,true,6,1.0\n",
        allocations="zoominfo,acme,2025-01,5\n",
        exports=[
            ("E1", "2025-01-12 09:00:00", [1, 2]),
            ("E2", "2025-03-03 09:00:00", [3, 4, 5, 6, 7]),
        ],
    )
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 3, 20))
    got = con.sql(
        "SELECT month::VARCHAR, used, true_up_credits, true_up_value, beyond_cap_credits "
        "FROM pool_overconsumption ORDER BY month"
    ).fetchall()
    # 7 used of a pool of 5 by March: 2 to true up at 1.0; 1 beyond the cap of 6
    assert got == [
        ("2025-01-01", 2, 0, 0.0, 0),
        ("2025-02-01", 2, 0, 0.0, 0),
        ("2025-03-01", 7, 2, 2.0, 1),
    ]


def test_a_client_id_with_a_colon_keeps_its_lot_kinds(tmp_path: Path) -> None:
    """Lot ids are vendor:client:kind:...; a ':' in a client id must not shift the kind."""
    data = agency(
        tmp_path / "data",
        allocations="zoominfo,acme:eu,2025-01,0\n",
        grants="zoominfo,acme:eu,G1,gift,5,2025-01-01,,\n",
        exports=[("E1", "2025-01-10 10:00", [101, 102])],
    )
    for name, text in {
        "clients.csv": "client_id,client_name\nacme:eu,Acme EU\n",
        "users.csv": "vendor,user,client_id,valid_from,valid_to\nzoominfo,alice,acme:eu,,\n",
    }.items():
        (data / "config" / name).write_text(text)
    con = run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 1, 31))
    consumed = con.sql(
        "SELECT lot_kind, sum(credits) FROM ledger_entries "
        "WHERE entry_type = 'consume' AND client_id = 'acme:eu' GROUP BY ALL"
    ).fetchall()
    assert consumed == [("gift", 2)]
