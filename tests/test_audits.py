"""The audits return the rows that break a rule (and nothing when none does): an audit that
cannot fail would let a broken warehouse be published."""

from __future__ import annotations

import duckdb

from transforms.runner import grain_audit, models


def grains(entry_ids: list[str]) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    plan = models()
    # Every other declared grain, on an empty table of its key columns.
    for m in plan.published:
        if m.grain and m.name != "ledger_entries":
            con.execute(f"CREATE TABLE {m.name} ({', '.join(f'{c} VARCHAR' for c in m.grain)})")
    con.execute(
        "CREATE TABLE entries_to_audit AS SELECT unnest(?::VARCHAR[]) AS entry_id", [entry_ids]
    )
    audit = grain_audit(plan, {"ledger_entries": "entries_to_audit"})
    return con.sql(audit).fetchall()


def test_the_grain_audit_counts_every_repeated_entry_id() -> None:
    ids = [f"consume:E1:f{i}:{i}:pool" for i in range(1000)]
    assert grains(ids) == []
    assert grains(ids + ids[:3] + ids[:1]) == [("ledger_entries", 4)]
