"""The two rules that are sequential by nature, computed set-based round by round.

- ``mark_charges`` (DOMAIN rule 2): a record is charged when it was not charged in the
  previous window (12 months); each charge opens a new window, so charges are found in
  rounds, one per charge in the longest chain of a single record, not one per row.
- ``burn_lots`` (rule 3): a charge draws on its client's open lots in burn order. Between
  two lot boundaries (a lot opening or expiring) the set of open lots is fixed, so all the
  charges of such a segment are matched to lots by running totals in one join. Only the
  lots' remaining credits are carried from one segment to the next: rounds = segments.

Both read and write tables in the build database; nothing loops over rows in Python.
"""

from __future__ import annotations

import duckdb

# Burn order within the same expiry: gift before baseline before earned before purchase.
KIND_RANK = {"gift": 1, "baseline": 2, "earned": 3, "purchase": 4, "adjustment": 5}


def mark_charges(con: duckdb.DuckDBPyConnection) -> int:
    """exported_records -> charges (is_charge, charge_seq of the charge that covers it).

    Returns the number of rounds (the longest charge chain of one record).
    """
    con.execute("""
        CREATE TABLE export_seq AS
        SELECT
            row_number() OVER (ORDER BY exported_at, export_id, file_id, row_number) AS seq,
            *
        FROM exported_records
    """)
    con.execute("""
        CREATE TEMP TABLE pending AS
        SELECT seq, vendor, record_type, record_key, exported_at FROM export_seq
    """)
    con.execute(
        "CREATE TEMP TABLE charge_marks (seq BIGINT, charge_seq BIGINT, charged_at TIMESTAMP)"
    )
    rounds = 0
    while con.execute("SELECT count(*) FROM pending").fetchall()[0][0]:  # type: ignore[index]
        rounds += 1
        con.execute("""
            CREATE OR REPLACE TEMP TABLE heads AS
            SELECT vendor, record_type, record_key, min(seq) AS charge_seq,
                   min(exported_at) AS charged_at,
                   min(exported_at) + to_months(getvariable('reexport_window_months')) AS window_end
            FROM pending GROUP BY ALL
        """)
        con.execute("""
            INSERT INTO charge_marks
            SELECT p.seq, h.charge_seq, h.charged_at
            FROM pending p JOIN heads h USING (vendor, record_type, record_key)
            WHERE p.exported_at < h.window_end
        """)
        con.execute("""
            CREATE OR REPLACE TEMP TABLE pending AS
            SELECT p.* FROM pending p JOIN heads h USING (vendor, record_type, record_key)
            WHERE p.exported_at >= h.window_end
        """)
    con.execute("""
        CREATE TABLE charges AS
        SELECT
            e.*,
            m.seq = m.charge_seq AS is_charge,
            CASE WHEN m.seq = m.charge_seq THEN 1 ELSE 0 END AS credits,
            m.charge_seq,
            m.charged_at AS window_started_at
        FROM export_seq e JOIN charge_marks m USING (seq)
    """)
    con.execute("DROP TABLE pending; DROP TABLE charge_marks; DROP TABLE IF EXISTS heads")
    return rounds


def burn_lots(con: duckdb.DuckDBPyConnection) -> int:
    """lots + charges -> lot_draws: (seq, lot_id or NULL for overage, credits).

    Returns the number of segment rounds.
    """
    kind_rank = " ".join(f"WHEN '{k}' THEN {r}" for k, r in KIND_RANK.items())
    con.execute(f"""
        CREATE TEMP TABLE burn_lots AS
        SELECT
            dense_rank() OVER (ORDER BY vendor, client_id) AS account,
            vendor, client_id, lot_id, credits,
            effective_on::TIMESTAMP AS opens, expires_on::TIMESTAMP AS closes,
            CASE kind {kind_rank} END AS kind_rank
        FROM lots
    """)
    # Segment boundaries per account: every instant a lot opens or closes.
    con.execute("""
        CREATE TEMP TABLE boundaries AS
        SELECT account, edge, row_number() OVER (PARTITION BY account ORDER BY edge) AS segment
        FROM (
            SELECT DISTINCT account, opens AS edge FROM burn_lots
            UNION SELECT DISTINCT account, closes FROM burn_lots
        )
    """)
    # Each charge falls in the segment of the last boundary at or before it (0: before any).
    con.execute("""
        CREATE TEMP TABLE burn_charges AS
        SELECT c.seq, c.exported_at, c.credits, a.account, coalesce(b.segment, 0) AS segment
        FROM charges c
        LEFT JOIN (SELECT DISTINCT account, vendor, client_id FROM burn_lots) a
          ON a.vendor = c.vendor AND a.client_id = c.client_id
        ASOF LEFT JOIN boundaries b ON b.account = a.account AND c.exported_at >= b.edge
        WHERE c.credits > 0
    """)
    con.execute("""
        CREATE TEMP TABLE demand AS
        SELECT account, segment, sum(credits) AS demand
        FROM burn_charges WHERE account IS NOT NULL AND segment > 0 GROUP BY ALL
    """)
    con.execute("CREATE TEMP TABLE remaining AS SELECT lot_id, credits AS remaining FROM burn_lots")
    con.execute("""
        CREATE TEMP TABLE takes (account BIGINT, segment BIGINT, lot_id VARCHAR,
                                 starts_at BIGINT, take BIGINT)
    """)
    segments = con.execute("SELECT coalesce(max(segment), 0) FROM demand").fetchall()[0][0]
    for segment in range(1, segments + 1):
        con.execute(
            """
            INSERT INTO takes
            WITH open_lots AS (
                SELECT l.account, l.lot_id, r.remaining, l.closes, l.kind_rank
                FROM demand d
                JOIN boundaries b ON b.account = d.account AND b.segment = d.segment
                JOIN burn_lots l
                  ON l.account = d.account AND l.opens <= b.edge AND l.closes > b.edge
                JOIN remaining r ON r.lot_id = l.lot_id
                WHERE d.segment = $segment AND r.remaining > 0
            ),
            in_order AS (
                SELECT *, coalesce(sum(remaining) OVER (
                    PARTITION BY account ORDER BY closes, kind_rank, lot_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                FROM open_lots
            )
            SELECT o.account, $segment, o.lot_id, o.before,
                   least(o.remaining, greatest(0, d.demand - o.before))
            FROM in_order o JOIN demand d ON d.account = o.account AND d.segment = $segment
            WHERE d.demand > o.before
        """,
            {"segment": segment},
        )
        con.execute(
            """
            UPDATE remaining SET remaining = remaining.remaining - t.take
            FROM takes t WHERE t.lot_id = remaining.lot_id AND t.segment = $segment
        """,
            {"segment": segment},
        )
    # Within a segment, lot i covers running-total positions [starts_at, starts_at + take);
    # a charge covers [running total before it, running total after it). Overlaps are draws.
    con.execute("""
        CREATE TABLE lot_draws AS
        WITH positioned AS (
            SELECT *, sum(credits) OVER (
                PARTITION BY account, segment ORDER BY exported_at, seq
                ROWS UNBOUNDED PRECEDING) AS upto
            FROM burn_charges
        ),
        spans AS (SELECT *, upto - credits AS from_ FROM positioned),
        drawn AS (
            SELECT account, segment, sum(take) AS taken FROM takes GROUP BY ALL
        )
        SELECT s.seq, t.lot_id,
               least(s.upto, t.starts_at + t.take) - greatest(s.from_, t.starts_at) AS credits
        FROM spans s
        JOIN takes t ON t.account = s.account AND t.segment = s.segment
         AND s.from_ < t.starts_at + t.take AND s.upto > t.starts_at
        UNION ALL
        SELECT s.seq, NULL, s.upto - greatest(s.from_, coalesce(d.taken, 0))
        FROM spans s
        LEFT JOIN drawn d ON d.account = s.account AND d.segment = s.segment
        WHERE s.upto > coalesce(d.taken, 0)
    """)
    con.execute(
        "DROP TABLE burn_lots; DROP TABLE boundaries; DROP TABLE burn_charges; "
        "DROP TABLE demand; DROP TABLE remaining; DROP TABLE takes"
    )
    return segments
