"""The choices the rules leave open, each pinned (docs/rules.md "Decisions"): an export
exactly 12 months after the charge is charged; a 29 February charge's window ends on
28 February at the same time of day; 007123 and 7123 are one record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.conftest import rows, run_pipeline, write_folder

LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)
CONFIG = {
    "config/clients.csv": "client_id,client_name\nacme,Acme\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\nzoominfo,zed@agency.test,acme,,\n"
    "6sense,ann@agency.test,acme,,\n",
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
    "overage_allowed,cap_credits,price_per_credit\n"
    "zoominfo,ZI,2024-01-01,2026-01-01,100,monthly,true,,\n"
    "6sense,SX,2024-01-01,2026-01-01,100,none,true,,\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    "zoominfo,acme,2024-01,10\n6sense,acme,2024-01,10\n",
}


def exports(tmp_path: Path, listing: list[tuple[str, str, str]], **extra: str):  # type: ignore[no-untyped-def]
    """listing: (export, Export Date, the file's one Contact ID)."""
    files = dict(CONFIG) | extra
    files["inbox/zoominfo/downloads/l.csv"] = LISTING + "".join(
        f"{e},x,{e}.csv,zed@agency.test,{at},Contacts,1,1\n" for e, at, _ in listing
    )
    for e, _, key in listing:
        files[f"inbox/zoominfo/exports/{e}.csv"] = f"ZoomInfo Contact ID\n{key}\n"
    return run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 6, 30)
    )


def entry_types(con) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [
        (r["export_id"], r["entry_type"])
        for r in rows(
            con,
            "SELECT export_id, entry_type FROM ledger_entries WHERE export_id IS NOT NULL "
            "ORDER BY effective_at, export_id",
        )
    ]


def test_an_export_exactly_12_months_after_the_charge_is_charged(tmp_path: Path) -> None:
    # The window is half-open like a lot: [10 Mar 2024 10:00, 10 Mar 2025 10:00).
    con = exports(
        tmp_path,
        [
            ("A", "2024-03-10 10:00:00", "42"),
            ("B", "2025-03-10 09:59:59", "42"),  # one second inside: free
            ("C", "2025-03-10 10:00:00", "42"),  # at the window's end: charged
        ],
    )
    try:
        assert entry_types(con) == [("A", "consume"), ("B", "reexport"), ("C", "consume")]
    finally:
        con.close()


def test_a_29_february_charge_is_free_to_re_export_until_28_february_same_time(
    tmp_path: Path,
) -> None:
    # 12 calendar months from 29 Feb 2024 10:00 is 28 Feb 2025 10:00 (February 2025 has no
    # 29th); 1 March would have made D free as well.
    con = exports(
        tmp_path,
        [
            ("A", "2024-02-29 10:00:00", "42"),
            ("B", "2025-02-28 09:59:59", "42"),  # free
            ("C", "2025-02-28 10:00:00", "42"),  # charged: a new window to 28 Feb 2026
            ("D", "2025-03-01 09:00:00", "42"),  # free, in C's window
        ],
        **{
            "config/grants.csv": "vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note\n"
            "zoominfo,acme,P1,purchase,5,2024-02-29,,bought on a leap day\n"
        },
    )
    try:
        assert entry_types(con) == [
            ("A", "consume"),
            ("B", "reexport"),
            ("C", "consume"),
            ("D", "reexport"),
        ]
        # The same arithmetic gives a purchased lot of 29 Feb its 12 months.
        lot = rows(
            con, "SELECT expires_on::VARCHAR AS e FROM credit_lots WHERE lot_kind = 'purchase'"
        )
        assert lot == [{"e": "2025-02-28"}]
    finally:
        con.close()


def test_007123_and_7123_are_one_record(tmp_path: Path) -> None:
    con = exports(
        tmp_path,
        [
            ("A", "2025-02-03 10:00:00", "007123"),
            ("B", "2025-02-10 10:00:00", "7123"),  # the same contact: a free re-export
            ("C", "2025-02-11 10:00:00", "7123.0"),  # Excel's number for it: the same again
            ("D", "2025-02-12 10:00:00", "0"),  # zero stays zero
        ],
        **{
            "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n"
            "zoominfo,T1,0007123,1,2025-02-20\n"
            "6sense,T2,00123,1,2025-02-20\n",
            # 6sense: 00123 is 123; A00123 has letters, so it is kept as written
            "inbox/6sense/purchases/p.csv": "Purchase Date,Purchased By,Contact ID,Email Confidence,Credits Used\n"
            "2025-02-04 10:00:00,ann@agency.test,123,A,1\n"
            "2025-02-05 10:00:00,ann@agency.test,00123,A,1\n"
            "2025-02-05 11:00:00,ann@agency.test,A00123,A,1\n"
            "2025-02-05 12:00:00,ann@agency.test,A123,A,1\n",
        },
    )
    try:
        assert entry_types(con) == [
            ("A", "consume"),
            ("B", "reexport"),
            ("C", "reexport"),
            ("D", "consume"),
        ]
        keys = rows(
            con,
            "SELECT vendor, entry_type, record_key FROM ledger_entries "
            "WHERE entry_type IN ('consume', 'reexport', 'reverse') ORDER BY ALL",
        )
        assert [tuple(r.values()) for r in keys] == [
            ("6sense", "consume", "123"),
            ("6sense", "consume", "123"),
            ("6sense", "consume", "A00123"),
            ("6sense", "consume", "A123"),
            # T2 (00123) reverses 123's latest charge
            ("6sense", "reverse", "123"),
            ("zoominfo", "consume", "0"),
            ("zoominfo", "consume", "7123"),
            ("zoominfo", "reexport", "7123"),
            ("zoominfo", "reexport", "7123"),
            # T1 (0007123) reverses A's charge of 7123
            ("zoominfo", "reverse", "7123"),
        ]
        repeats = rows(
            con,
            "SELECT record_key, credits_reversed, credits_disputable FROM duplicate_reexports "
            "WHERE vendor = '6sense'",
        )
        # the repeat purchase of 123 was reversed by T2: nothing left to dispute
        assert repeats == [{"record_key": "123", "credits_reversed": 1, "credits_disputable": 0}]
        assert rows(con, "SELECT * FROM quarantine WHERE source = 'reversals'") == []
    finally:
        con.close()
