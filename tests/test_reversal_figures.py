"""A credit a reversal gives back reaches every derived figure (DOMAIN rule 12,
docs/rules.md "Reversals"): pool use, true-up and cap breaches, client overconsumption,
duplicate re-exports and disputes. Worked out by hand in the comments; before the change
the pool counted a restored credit spent again twice and a reversed repeat purchase stayed
disputable."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import rows, run_pipeline, write_folder

PURCHASES = "Purchase Date,Purchased By,Contact ID,Email Confidence,Credits Used\n"
LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)

FILES = {
    "config/clients.csv": "client_id,client_name\nacme,Acme\nbeta,Beta\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
    "6sense,ann@agency.test,acme,,\n6sense,bo@agency.test,beta,,\n"
    "zoominfo,zed@agency.test,acme,,\n",
    # 6sense: one pool of 4 for the year, capped at 5; acme is allotted 3, beta 2.
    # ZoomInfo: 3 a month for the agency; acme is allotted 5 a month.
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
    "overage_allowed,cap_credits,price_per_credit\n"
    "6sense,SX,2025-01-01,2026-01-01,4,none,true,5,1.20\n"
    "zoominfo,ZI,2025-01-01,2026-01-01,3,monthly,true,,0.50\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    "6sense,acme,2025-01,3\n6sense,beta,2025-01,2\nzoominfo,acme,2025-01,5\n",
    "inbox/6sense/purchases/p.csv": PURCHASES
    + "2025-02-03 10:00:00,ann@agency.test,C1,A,1\n"  # acme's lot: 3 -> 2
    "2025-02-03 10:01:00,ann@agency.test,C2,A,1\n"  # -> 1
    "2025-02-03 10:02:00,ann@agency.test,C3,A,1\n"  # -> 0
    "2025-02-10 09:00:00,bo@agency.test,C1,B,1\n"  # beta buys C1 again: lot 2 -> 1
    "2025-02-11 09:00:00,bo@agency.test,C4,A,1\n"  # -> 0
    "2025-02-11 09:01:00,bo@agency.test,C5,A,1\n"  # overage
    # T1 (15 Feb) gives C1's latest charge, beta's repeat, back to beta's lot: 0 -> 1
    "2025-02-20 09:00:00,bo@agency.test,C6,A,1\n",  # spends it again: 1 -> 0
    "inbox/zoominfo/downloads/l.csv": LISTING
    + "Z1,a,z1.csv,zed@agency.test,2025-02-05 10:00:00,Contacts,4,4\n"  # lot 5 -> 1
    # T2 (10 Feb) gives 2 of Z1's credits back: 1 -> 3
    "Z2,b,z2.csv,zed@agency.test,2025-02-12 10:00:00,Contacts,2,2\n",  # 3 -> 1
    "inbox/zoominfo/exports/z1.csv": "ZoomInfo Contact ID\n1\n2\n3\n4\n",
    "inbox/zoominfo/exports/z2.csv": "ZoomInfo Contact ID\n5\n6\n",
    "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n"
    "6sense,T1,C1,1,2025-02-15\nzoominfo,T2,Z1,2,2025-02-10\n",
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("reversed")
    con = run_pipeline(write_folder(root / "d", FILES), root / "w.duckdb", dt.date(2025, 2, 28))
    yield con
    con.close()


def test_balances_the_figures_rest_on(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT vendor, client_id, charged_credits, consumed_credits, overage_credits, "
        "reversed_credits, closing_balance FROM monthly_balances WHERE month = '2025-02-01' "
        "ORDER BY ALL",
    )
    assert [tuple(r.values()) for r in got] == [
        ("6sense", "acme", 3, 3, 0, 0, 0),
        ("6sense", "beta", 4, 3, 1, 1, 0),
        ("zoominfo", "acme", 6, 6, 0, 2, 1),
    ]


def test_pool_use_is_net_of_every_credit_given_back(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT vendor, used, true_up_credits, true_up_value, beyond_cap_credits "
        "FROM pool_overconsumption WHERE month = '2025-02-01' ORDER BY vendor",
    )
    assert got == [
        # 7 purchases less T1's 1 = 6 used; 6 - 4 = 2 to true up (2.40), 6 - 5 = 1 past the
        # cap. Before: 7, 3 (3.60), 2.
        {
            "vendor": "6sense",
            "used": 6,
            "true_up_credits": 2,
            "true_up_value": 2.40,
            "beyond_cap_credits": 1,
        },
        # 6 charged less T2's 2 = 4; 4 - 3 = 1 to true up (0.50). Before: 6, 3 (1.50).
        {
            "vendor": "zoominfo",
            "used": 4,
            "true_up_credits": 1,
            "true_up_value": 0.50,
            "beyond_cap_credits": 0,
        },
    ]


def test_client_overconsumption_is_net_of_reversals(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT vendor, client_id, used, over, share_of_pool_use FROM client_overconsumption "
        "WHERE month = '2025-02-01' ORDER BY ALL",
    )
    # 6sense: acme 3, beta 4 - 1 = 3 (over: C5, 1); each half of the net 6.
    # Before: beta 4, shares 3/7 and 4/7.
    assert got == [
        {"vendor": "6sense", "client_id": "acme", "used": 3, "over": 0, "share_of_pool_use": 0.5},
        {"vendor": "6sense", "client_id": "beta", "used": 3, "over": 1, "share_of_pool_use": 0.5},
        {"vendor": "zoominfo", "client_id": "acme", "used": 4, "over": 0, "share_of_pool_use": 1.0},
    ]


def test_a_reversed_repeat_purchase_is_shown_reversed_not_disputable(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = rows(
        warehouse,
        "SELECT record_key, kind, cross_client, charged_by_vendor, credits_reversed, "
        "reversal_tickets, credits_disputable FROM duplicate_reexports",
    )
    assert got == [
        {
            "record_key": "C1",
            "kind": "repeat_purchase",
            "cross_client": True,
            "charged_by_vendor": True,
            "credits_reversed": 1,
            "reversal_tickets": "T1",
            "credits_disputable": 0,
        }
    ]
    # Nothing is left to ask back (before: C1 for 1 credit).
    assert rows(warehouse, "SELECT * FROM disputes") == []


def test_a_partly_reversed_repeat_keeps_only_the_rest_disputable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = {
        **FILES,
        # C1 bought again for 3 credits; 1 of them reversed: 2 still to ask back
        "inbox/6sense/purchases/p.csv": PURCHASES + "2025-02-03 10:00:00,ann@agency.test,C1,A,1\n"
        "2025-02-10 09:00:00,bo@agency.test,C1,B,3\n",
    }
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 2, 28)
    )
    try:
        got = rows(
            con,
            "SELECT record_key, credits_reversed, credits_disputable FROM duplicate_reexports "
            "WHERE vendor = '6sense'",
        )
        assert got == [{"record_key": "C1", "credits_reversed": 1, "credits_disputable": 2}]
        assert rows(
            con, "SELECT record_ids, credits_to_reverse FROM disputes WHERE vendor = '6sense'"
        ) == [{"record_ids": "C1", "credits_to_reverse": 2}]
    finally:
        con.close()
