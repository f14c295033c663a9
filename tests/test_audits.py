"""The audits return the rows that break a rule (and nothing when none does): an audit that
cannot fail would let a broken warehouse be published."""

from __future__ import annotations

import duckdb

from transforms.build import MODELS


def grains(entry_ids: list[str]) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE monthly_balances (vendor VARCHAR, client_id VARCHAR, month DATE)")
    con.execute("CREATE TABLE forfeitures (vendor VARCHAR, client_id VARCHAR, lot_id VARCHAR)")
    con.execute("CREATE TABLE quarantine (file_id VARCHAR, row_number BIGINT)")
    con.execute(
        "CREATE TABLE entries_to_audit AS SELECT unnest(?::VARCHAR[]) AS entry_id", [entry_ids]
    )
    return con.sql((MODELS / "audits" / "grains.sql").read_text()).fetchall()


def test_the_grain_audit_counts_every_repeated_entry_id() -> None:
    ids = [f"consume:E1:f{i}:{i}:pool" for i in range(1000)]
    assert grains(ids) == []
    assert grains(ids + ids[:3] + ids[:1]) == [("ledger_entries", 4)]
