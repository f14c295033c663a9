"""The audits return the rows that break a rule (and nothing when none does): an audit that
cannot fail would let a broken warehouse be published."""

from __future__ import annotations

import duckdb

from transforms.runner import grain_audit, models


def grains(entry_ids: list[str]) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    con.execute("CREATE TABLE monthly_balances (vendor VARCHAR, client_id VARCHAR, month DATE)")
    con.execute("CREATE TABLE forfeitures (vendor VARCHAR, client_id VARCHAR, lot_id VARCHAR)")
    con.execute("CREATE TABLE quarantine (file_id VARCHAR, row_number BIGINT)")
    con.execute(
        "CREATE TABLE entries_to_audit AS SELECT unnest(?::VARCHAR[]) AS entry_id", [entry_ids]
    )
    con.execute("CREATE TABLE closed_statements (month DATE, client_id VARCHAR)")
    audit = grain_audit(models(), {"ledger_entries": "entries_to_audit"})
    return con.sql(audit).fetchall()


def test_the_grain_audit_counts_every_repeated_entry_id() -> None:
    ids = [f"consume:E1:f{i}:{i}:pool" for i in range(1000)]
    assert grains(ids) == []
    assert grains(ids + ids[:3] + ids[:1]) == [("ledger_entries", 4)]
