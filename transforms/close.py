"""DOMAIN rule 8, period close: a closed month never changes.

Closing a month freezes its monthly balances, the ledger entries booked in it and its
invoice lines (in the ingest store: closed_months, frozen_balances, frozen_entries,
frozen_invoice_lines). Every later build computes
the ledger afresh, then:

- ``book_late_entries`` (ledger_entries' ``then``): entries of a closed month are the frozen
  ones. Where the fresh ledger differs for a closed month (data that came late, a config
  change), the difference is booked in the first open month as entries of the same type,
  marked ``late_for_month``, with entry ids ``late:<entry>:<month>``. Differences already
  booked by an earlier open month (and frozen with it) are not booked twice.
- ``use_frozen_balances`` (monthly_balances' ``then``): closed months show their frozen rows;
  the first open month opens with the last closed month's frozen closing balance. Because
  the late entries carry exactly the difference between the fresh and frozen ledgers, the
  first open month still satisfies opening + granted + reversed - consumed - forfeited =
  closing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import duckdb

MODELS = Path(__file__).parent / "models"

STORE_DDL = """
CREATE TABLE IF NOT EXISTS closed_months (
    month DATE PRIMARY KEY, closed_at TIMESTAMP NOT NULL, as_of DATE NOT NULL
);
"""


def has_closed_months_table(con: duckdb.DuckDBPyConnection) -> bool:
    """The ingest store (attached as ``ingest``) has the tables of closed months."""
    tables = {
        t
        for (t,) in con.sql(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'ingest'"
        ).fetchall()
    }
    return {"closed_months", "frozen_entries", "frozen_balances"} <= tables


def _has_closed(con: duckdb.DuckDBPyConnection) -> bool:
    if not has_closed_months_table(con):
        return False
    return con.execute("SELECT count(*) FROM ingest.closed_months").fetchall()[0][0] > 0


def create_first_open(con: duckdb.DuckDBPyConnection) -> None:
    """first_open: the month after the last closed one (one row)."""
    con.execute("""
        CREATE TABLE memory.first_open AS
        SELECT (max(month) + INTERVAL 1 MONTH)::DATE AS month FROM ingest.closed_months
    """)


def book_late_entries(con: duckdb.DuckDBPyConnection) -> int:
    """Closed months' entries of the fresh ledger become their frozen ones, plus the
    differences booked late in the first open month. In place: the full rebuild writes the
    ledger straight into the new file, and copying it to change a few months cost seconds."""
    if not _has_closed(con):
        return 0
    create_first_open(con)
    con.execute("""
        CREATE TEMP TABLE late_booked AS
        WITH closed AS (SELECT month FROM ingest.closed_months),
        -- What the closed months are known to hold: their frozen entries, plus differences
        -- already booked (and frozen) in a later month.
        known AS (
            SELECT coalesce(late_for_month, booking_month) AS month,
                   regexp_replace(entry_id, '^late:(.*):\\d{4}-\\d{2}-\\d{2}$', '\\1') AS entry_id,
                   any_value(entry_type) AS entry_type,
                   sum(credits) AS credits, sum(balance_effect) AS balance_effect
            FROM ingest.frozen_entries
            WHERE coalesce(late_for_month, booking_month) IN (SELECT month FROM closed)
            GROUP BY ALL
        ),
        fresh_closed AS (
            SELECT * FROM ledger_entries WHERE booking_month IN (SELECT month FROM closed)
        ),
        differences AS (
            SELECT
                coalesce(f.entry_id, k.entry_id) AS entry_id,
                coalesce(f.booking_month, k.month) AS month,
                coalesce(f.credits, 0) - coalesce(k.credits, 0) AS credits,
                coalesce(f.balance_effect, 0) - coalesce(k.balance_effect, 0) AS balance_effect
            FROM fresh_closed f
            FULL JOIN known k ON k.entry_id = f.entry_id AND k.month = f.booking_month
            WHERE f.entry_id IS NULL OR k.entry_id IS NULL
               OR f.credits <> k.credits OR f.balance_effect <> k.balance_effect
        ),
        described AS (
            -- The entry as it is now, or as it was frozen when the fresh ledger dropped it.
            -- (an unmatched LEFT JOIN row is a struct of NULLs, not NULL: test the key)
            SELECT d.*, CASE WHEN f.entry_id IS NOT NULL THEN f ELSE e END AS entry
            FROM differences d
            LEFT JOIN fresh_closed f ON f.entry_id = d.entry_id
            LEFT JOIN ingest.frozen_entries e
              ON f.entry_id IS NULL AND e.entry_id = d.entry_id AND e.late_for_month IS NULL
        )
        SELECT
            format('late:{}:{}', d.entry_id, o.month) AS entry_id,
            d.entry.vendor, d.entry.client_id, d.entry.entry_type, d.entry.lot_id,
            d.entry.lot_kind, d.credits, d.balance_effect, d.entry.effective_at,
            o.month AS booking_month, d.entry.recorded_at, d.entry.user, d.entry.export_id,
            d.entry.record_type, d.entry.record_key, d.entry.source_file, d.entry.source_row,
            format('late for closed {}: {}', strftime(d.month, '%Y-%m'),
                   coalesce(d.entry.note, d.entry.entry_type)) AS note,
            d.month AS late_for_month
        FROM described d, first_open o
    """)
    con.execute(
        "DELETE FROM ledger_entries WHERE booking_month IN (SELECT month FROM ingest.closed_months)"
    )
    con.execute("INSERT INTO ledger_entries BY NAME SELECT * FROM ingest.frozen_entries")
    con.execute("INSERT INTO ledger_entries BY NAME SELECT * FROM late_booked")
    con.execute("DROP TABLE late_booked")
    return 1


def use_frozen_balances(con: duckdb.DuckDBPyConnection) -> int:
    """monthly_balances as the close leaves them (its is_closed and late_charged_credits,
    false and 0 from the model, are set here for closed months and the first open one)."""
    if not _has_closed(con):
        return 0
    con.execute("""
        UPDATE monthly_balances SET late_charged_credits = l.late
        FROM (
            SELECT vendor, client_id, booking_month AS month, sum(credits)::BIGINT AS late
            FROM ledger_entries
            WHERE late_for_month IS NOT NULL AND entry_type IN ('consume', 'overage')
            GROUP BY ALL
        ) l
        WHERE l.vendor = monthly_balances.vendor AND l.client_id = monthly_balances.client_id
          AND l.month = monthly_balances.month
    """)
    # The first open month opens where the last closed month closed, as frozen.
    con.execute("""
        UPDATE monthly_balances
        SET available_credits = monthly_balances.available_credits
                                - monthly_balances.opening_balance + f.closing_balance,
            opening_balance = f.closing_balance
        FROM ingest.frozen_balances f, first_open o
        WHERE monthly_balances.month = o.month
          AND f.vendor = monthly_balances.vendor AND f.client_id = monthly_balances.client_id
          AND f.month = (o.month - INTERVAL 1 MONTH)::DATE
    """)
    con.execute("""
        CREATE OR REPLACE TABLE monthly_balances AS
        SELECT * FROM monthly_balances
        WHERE month NOT IN (SELECT month FROM ingest.closed_months)
        UNION ALL BY NAME
        SELECT *, true AS is_closed FROM ingest.frozen_balances
        ORDER BY vendor, client_id, month
    """)
    return 1


# A closed month's invoice lines as its close froze them (the shape of invoice_lines).
FROZEN_INVOICE_LINES_DDL = """
CREATE TABLE frozen_invoice_lines (
    vendor VARCHAR, client_id VARCHAR, month DATE, line_no INTEGER, line_kind VARCHAR,
    description VARCHAR, credits BIGINT, unit_price DECIMAL(12,4), markup_percent DECIMAL(9,4),
    amount DECIMAL(14,2), currency VARCHAR, arithmetic VARCHAR, policy VARCHAR, lot_id VARCHAR
)
"""


def invoice_lines(con: duckdb.DuckDBPyConnection) -> int:
    """The invoice_lines mart (models/billing/invoice_lines.sql): the open months' lines
    priced from the configuration now, a closed month's as its close froze them (none for
    a month closed before invoice lines were kept: its statements were issued without)."""
    tables = {
        t
        for (t,) in con.sql(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'ingest'"
        ).fetchall()
    }
    closed = "SELECT month FROM ingest.closed_months"
    if "closed_months" not in tables:
        closed = "SELECT NULL::DATE AS month WHERE false"
    con.execute(f"CREATE TEMP VIEW invoice_closed_months AS {closed}")
    frozen = "frozen_invoice_lines" in tables
    if frozen:
        con.execute("CREATE TEMP VIEW frozen_invoice_lines AS FROM ingest.frozen_invoice_lines")
    else:
        con.execute(FROZEN_INVOICE_LINES_DDL.replace("CREATE TABLE", "CREATE TEMP TABLE"))
    con.execute((MODELS / "billing" / "invoice_lines.sql").read_text())
    con.execute("DROP VIEW invoice_closed_months")
    con.execute(f"DROP {'VIEW' if frozen else 'TABLE'} frozen_invoice_lines")
    return 1


def _freeze_invoice_lines(con: duckdb.DuckDBPyConnection, month: dt.date) -> None:
    """The month's invoice lines, as the statements the close issues show them, kept with
    the frozen month: later prices, policies or late files never change them."""
    published = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'published' "
        "AND table_name = 'invoice_lines'"
    ).fetchall()[0][0]
    if not published:
        return
    con.execute(
        "CREATE TABLE IF NOT EXISTS frozen_invoice_lines AS "
        "SELECT * FROM published.invoice_lines WHERE false"
    )
    con.execute(
        "INSERT INTO frozen_invoice_lines BY NAME SELECT * FROM published.invoice_lines "
        "WHERE month = ?",
        [month],
    )


class IssuedStatement(NamedTuple):
    """A client's statement as the close issues it: the bytes kept, and their hash."""

    client_id: str
    file_name: str
    html: str
    csv: str
    pdf: bytes | None


STATEMENTS_DDL = """
CREATE TABLE IF NOT EXISTS closed_statements (
    month DATE NOT NULL, client_id VARCHAR NOT NULL, file_name VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL, closed_at TIMESTAMP NOT NULL, document VARCHAR NOT NULL,
    csv VARCHAR NOT NULL, pdf BLOB, pdf_sha256 VARCHAR, PRIMARY KEY (month, client_id)
);
"""


def record_closed_statements(
    con: duckdb.DuckDBPyConnection,
    month: dt.date,
    closed_at: dt.datetime,
    statements: Sequence[IssuedStatement],
) -> None:
    """Keep the statements the close of ``month`` issues (in the store, with the frozen
    month): every later rendering of the month writes these bytes, so a statement a client
    has received never changes. The sha256 of each lets anyone check a copy."""
    import hashlib

    con.execute(STATEMENTS_DDL)
    con.executemany(
        "INSERT INTO closed_statements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                month,
                s.client_id,
                s.file_name,
                hashlib.sha256(s.html.encode()).hexdigest(),
                closed_at,
                s.html,
                s.csv,
                s.pdf,
                None if s.pdf is None else hashlib.sha256(s.pdf).hexdigest(),
            ]
            for s in statements
        ],
    )


def closed_statements(con: duckdb.DuckDBPyConnection) -> int:
    """The published closed_statements mart (models/statements/closed_statements.sql): the
    store's, or none before any close kept its statements."""
    has = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'ingest' "
        "AND table_name = 'closed_statements'"
    ).fetchall()[0][0]
    if has:
        con.execute((MODELS / "statements" / "closed_statements.sql").read_text())
    else:
        con.execute(STATEMENTS_DDL.replace(", PRIMARY KEY (month, client_id)", ""))
    return 1


def close_month(
    store: Path,
    warehouse: Path,
    month: dt.date,
    as_of: dt.date,
    issue: Callable[[dt.datetime], Sequence[IssuedStatement]] | None = None,
) -> None:
    """Freeze `month` from the warehouse just built (as of `as_of`, after the month's end).
    ``issue(closed_at)``: the month's statements, rendered from that warehouse, kept with it."""
    if as_of < (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1):
        raise ValueError(f"{month:%Y-%m} has not ended by the as-of date {as_of}")
    closed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    con = duckdb.connect(str(store))
    try:
        con.execute(STORE_DDL)
        con.execute("ATTACH ? AS published (READ_ONLY)", [str(warehouse)])
        closed = [m for (m,) in con.sql("SELECT month FROM closed_months ORDER BY 1").fetchall()]
        if month in closed:
            raise ValueError(f"{month:%Y-%m} is already closed")
        earlier_open = con.execute(
            "SELECT min(month) FROM published.monthly_balances WHERE month < ? AND NOT is_closed",
            [month],
        ).fetchall()[0][0]
        if earlier_open is not None:
            raise ValueError(f"close {earlier_open:%Y-%m} first: months close in order")
        issued: Sequence[IssuedStatement] = []
        if issue is not None:
            con.execute("DETACH published")  # the statements read it on their own
            issued = issue(closed_at)
            con.execute("ATTACH ? AS published (READ_ONLY)", [str(warehouse)])
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "CREATE TABLE IF NOT EXISTS frozen_balances AS "
            "SELECT * EXCLUDE (is_closed) FROM published.monthly_balances WHERE false"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS frozen_entries AS "
            "SELECT * FROM published.ledger_entries WHERE false"
        )
        con.execute(
            "INSERT INTO frozen_balances BY NAME "
            "SELECT * EXCLUDE (is_closed) FROM published.monthly_balances WHERE month = ?",
            [month],
        )
        con.execute(
            "INSERT INTO frozen_entries BY NAME "
            "SELECT * FROM published.ledger_entries WHERE booking_month = ?",
            [month],
        )
        _freeze_invoice_lines(con, month)
        con.execute("INSERT INTO closed_months VALUES (?, ?, ?)", [month, closed_at, as_of])
        if issue is not None:
            record_closed_statements(con, month, closed_at, issued)
        con.execute("COMMIT")
    finally:
        con.close()
