"""The two rules that are sequential by nature, computed set-based round by round.

- ``mark_charges`` (DOMAIN rule 2): a record is charged when it was not charged in the
  previous window (12 months); each charge opens a new window, so charges are found in
  rounds, one per charge in the longest chain of a single record, not one per row.
- ``burn_lots`` (rule 3): a charge draws on its client's open lots in burn order. Between
  two lot boundaries (a lot opening or expiring) the set of open lots is fixed, so all the
  charges of such a segment are matched to lots by running totals in one join. Only the
  lots' remaining credits are carried from one segment to the next: rounds = segments.
  An export's charges come one after another in that order, so they are matched as one
  run; only an export split between lots is matched charge by charge.

Both read and write tables in the build database; nothing loops over rows in Python.
"""

from __future__ import annotations

import duckdb

# Burn order within the same expiry: gift before baseline before earned before purchase.
KIND_RANK = {"gift": 1, "baseline": 2, "earned": 3, "purchase": 4, "adjustment": 5}


def mark_charges(con: duckdb.DuckDBPyConnection) -> int:
    """exported_records -> charges (is_charge, charge_seq of the charge that covers it).

    The vendor's rule (schemas/headers/<vendor>.toml, [charging]) says which applies:
    first_in_window (a record is charged once per window) or per_row (every row costs its
    own credits).
    Returns the number of rounds (the longest charge chain of one record).

    ``charges`` is a view over ``records_by_seq``, the one table that holds every record
    (exported_records is a view too): copying 10M records from table to table cost more
    than the rule itself.
    """
    # seq: the order in which records are charged. Records of one export share its time, so
    # they are taken by record key, not by their place in the file: which record drew the
    # last credits of a lot must not depend on how the vendor sorted the file. The table
    # keeps its ORDER BY's order, so a row's position (rowid + 1) is its seq (a window's
    # row_number() over the same order took twice as long). Every record is a charge of its
    # own until the rounds below mark it a re-export, giving it the charge_seq and window
    # of the charge that covers it (columns added after the sort: carried through it, they
    # cost 0.7 s at 10M records).
    con.execute("""
        CREATE TABLE records_by_seq AS
        SELECT * FROM exported_records
        ORDER BY exported_at, export_id, record_type, record_key, file_id, row_number
    """)
    con.execute("ALTER TABLE records_by_seq ADD COLUMN charge_seq BIGINT")
    con.execute("ALTER TABLE records_by_seq ADD COLUMN window_started_at TIMESTAMP")
    # A key exported once in this build, and never charged before, is charged by that one
    # export: most keys. Only the others are contested and go through the rounds below (a
    # group-by finds them: a window over every record cost twice as much).
    con.execute("""
        CREATE TEMP TABLE contested AS
        SELECT * FROM (
            SELECT vendor, record_type, record_key FROM records_by_seq
            GROUP BY ALL HAVING count(*) > 1
            UNION
            SELECT vendor, record_type, record_key FROM prior_charges
        )
        WHERE vendor IN (SELECT vendor FROM vendor_rules WHERE rule = 'first_in_window')
    """)
    # Round 1, in one window pass over the contested keys' records: each key is charged by
    # its first export...
    con.execute("""
        CREATE TEMP TABLE first_round AS
        SELECT s.rowid + 1 AS seq, vendor, record_type, record_key, exported_at,
               min(s.rowid + 1) OVER k AS charge_seq, min(exported_at) OVER k AS charged_at
        FROM records_by_seq s SEMI JOIN contested USING (vendor, record_type, record_key)
        WINDOW k AS (PARTITION BY vendor, record_type, record_key)
    """)
    # ...unless it was charged on an earlier night (prior_charges: incremental nights only;
    # their seq is negative): then that charge covers it while its window lasts. Records
    # after the window that applies wait in ``pending`` for the next round.
    round_one = """
        SELECT f.seq, f.vendor, f.record_type, f.record_key, f.exported_at,
               coalesce(h.seq, f.charge_seq) AS charge_seq,
               coalesce(h.charged_at, f.charged_at) AS charged_at
        FROM first_round f LEFT JOIN prior_charges h USING (vendor, record_type, record_key)
    """
    window_end = "charged_at + to_months(getvariable('reexport_window_months'))"
    con.execute(f"""
        CREATE TEMP TABLE charge_marks AS
        SELECT seq, charge_seq, charged_at FROM ({round_one})
        WHERE exported_at < {window_end}
    """)
    con.execute(f"""
        CREATE TEMP TABLE pending AS
        SELECT seq, vendor, record_type, record_key, exported_at FROM ({round_one})
        WHERE exported_at >= {window_end}
    """)
    con.execute("DROP TABLE first_round; DROP TABLE contested")
    rounds = 1
    # Later rounds: a key exported again after its window is charged again, and so on. Few
    # records get here, so a group-by per round is cheap.
    while con.execute("SELECT count(*) FROM pending").fetchall()[0][0]:  # type: ignore[index]
        rounds += 1
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE heads AS
            SELECT vendor, record_type, record_key, min(seq) AS charge_seq,
                   min(exported_at) AS charged_at, {window_end} AS window_end
            FROM pending GROUP BY vendor, record_type, record_key
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
    # A mark whose charge is the record itself says what it started as; the others are
    # re-exports, covered by the charge that opened their window.
    con.execute("""
        UPDATE records_by_seq
        SET charge_seq = m.charge_seq, window_started_at = m.charged_at
        FROM charge_marks m
        WHERE m.seq <> m.charge_seq AND records_by_seq.rowid + 1 = m.seq
    """)
    # Every record without a mark charges itself: uncontested keys, and every row of the
    # vendors charging each row (per_row: each row is a charge of its own credits).
    con.execute("""
        CREATE VIEW charges AS
        SELECT rowid + 1 AS seq,
               * EXCLUDE (charge_seq, window_started_at),
               charge_seq IS NULL AS is_charge,
               CASE WHEN charge_seq IS NULL THEN coalesce(row_credits, 1) ELSE 0 END AS credits,
               coalesce(charge_seq, rowid + 1) AS charge_seq,
               coalesce(window_started_at, exported_at) AS window_started_at
        FROM records_by_seq
    """)
    con.execute("DROP TABLE pending; DROP TABLE charge_marks; DROP TABLE IF EXISTS heads")
    return rounds


def burn_lots(con: duckdb.DuckDBPyConnection, lots: str = "lots") -> int:
    """lots + charges + reversals -> run_draws, lot_draws and reversal_draws. Returns
    segment rounds.

    ``lots``: the table of lots to draw on, their credits being what is left to draw (an
    incremental night passes the lots still open, less what earlier nights drew).

    run_draws: (exported_at, export_id, lot_id or NULL for overage, credits,
    last_recorded_at): an export whose charges all drew on one lot (or all on the pool):
    each of them drew its credits from it. Most charges are drawn this way, so no table
    holds a row per charge.
    lot_draws: (seq, lot_id or NULL for overage, credits, piece_from, piece_to): what each
    other charge drew, piece by piece.
    reversal_draws: (file_id, row_number, lot_id or NULL, credits, lot_open): what each
    reversal gave back, to the lot its charge drew on (lot_open: still open, so the credits
    can be spent again; else they are forfeited at once) or to the pool (lot_id NULL).
    """
    kind_rank = " ".join(f"WHEN '{k}' THEN {r}" for k, r in KIND_RANK.items())
    con.execute(f"""
        CREATE TEMP TABLE accounts AS
        SELECT row_number() OVER (ORDER BY vendor, client_id) AS account, vendor, client_id
        FROM (SELECT vendor, client_id FROM {lots} UNION SELECT vendor, client_id FROM charges
              UNION SELECT vendor, client_id FROM reversals)
    """)
    con.execute(f"""
        CREATE TEMP TABLE burn_lots AS
        SELECT a.account, l.lot_id, l.credits,
               l.effective_on::TIMESTAMP AS opens, l.expires_on::TIMESTAMP AS closes,
               CASE l.kind {kind_rank} END AS kind_rank
        FROM {lots} l JOIN accounts a USING (vendor, client_id)
    """)
    con.execute("""
        CREATE TEMP TABLE burn_reversals AS
        SELECT a.account, r.* FROM reversals r JOIN accounts a USING (vendor, client_id)
    """)
    # Segment boundaries per account: every instant a lot opens or closes or credits come
    # back; between two of them the open lots and their order do not change.
    con.execute("""
        CREATE TEMP TABLE boundaries AS
        SELECT account, edge, row_number() OVER (PARTITION BY account ORDER BY edge) AS segment
        FROM (
            SELECT account, opens AS edge FROM burn_lots
            UNION SELECT account, closes FROM burn_lots
            UNION SELECT account, reversed_at FROM burn_reversals
        )
    """)
    # Units of the burn order. An export's records follow one another in seq and share its
    # time, so its client and its segment: its charges are one run in their account's
    # order, placed and matched to lots as one (a run is kept only if nothing else lies
    # between its first and last seq). Charges in no run (rows of vendors without exports,
    # such as purchase logs) are units of one. A unit's seq is its first charge's.
    con.execute("""
        CREATE TEMP TABLE export_runs AS
        SELECT exported_at, export_id, any_value(vendor) AS vendor,
               any_value(client_id) AS client_id, min(seq) AS seq, sum(credits) AS credits,
               max(recorded_at) FILTER (WHERE credits > 0) AS last_recorded_at
        FROM charges WHERE export_id IS NOT NULL
        GROUP BY exported_at, export_id
        HAVING count(*) = max(seq) - min(seq) + 1 AND count(DISTINCT (vendor, client_id)) = 1
           AND sum(credits) > 0
    """)
    # Each unit falls in the segment of the last boundary at or before it (0: before any)
    # and covers [from_, upto) of the running total of its segment's charges.
    con.execute("""
        CREATE TEMP TABLE burn_units AS
        WITH units AS (
            SELECT seq, exported_at, export_id, vendor, client_id, credits, last_recorded_at,
                   true AS is_run
            FROM export_runs
            UNION ALL
            SELECT c.seq, c.exported_at, NULL, c.vendor, c.client_id, c.credits, NULL, false
            FROM charges c ANTI JOIN export_runs r USING (exported_at, export_id)
            WHERE c.credits > 0
        ),
        placed AS (
            SELECT u.*, a.account, coalesce(b.segment, 0) AS segment
            FROM units u
            JOIN accounts a USING (vendor, client_id)
            ASOF LEFT JOIN boundaries b ON b.account = a.account AND u.exported_at >= b.edge
        )
        SELECT *, upto - credits AS from_
        FROM (
            SELECT *, sum(credits) OVER (
                PARTITION BY account, segment ORDER BY exported_at, seq ROWS UNBOUNDED PRECEDING
            ) AS upto
            FROM placed
        )
    """)
    con.execute("""
        CREATE TEMP TABLE demand AS
        SELECT account, segment, sum(credits) AS demand
        FROM burn_units WHERE segment > 0 GROUP BY ALL
    """)
    has_reversals = con.execute("SELECT count(*) FROM burn_reversals").fetchall()[0][0] > 0
    if has_reversals:
        # The charges reversals may undo, each with its own place in its unit's range.
        runs = """
            SELECT u.seq FROM burn_units u JOIN charges c USING (exported_at, export_id)
            WHERE u.is_run AND c.seq IN (SELECT seq FROM reversal_targets)
        """
        con.execute(f"""
            CREATE TEMP TABLE burn_targets AS
            {_charge_places(runs, "SELECT seq FROM reversal_targets")}
        """)
    con.execute("CREATE TEMP TABLE remaining AS SELECT lot_id, credits AS remaining FROM burn_lots")
    con.execute("""
        CREATE TEMP TABLE takes (account BIGINT, segment BIGINT, lot_id VARCHAR,
                                 starts_at BIGINT, take BIGINT)
    """)
    con.execute("""
        CREATE TABLE reversal_draws (file_id VARCHAR, row_number BIGINT, lot_id VARCHAR,
                                     credits BIGINT, lot_open BOOLEAN)
    """)
    segments = con.execute("SELECT coalesce(max(segment), 0) FROM boundaries").fetchall()[0][0]
    for segment in range(1, segments + 1):
        if has_reversals:
            _give_back(con, segment)
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
    # a unit covers [from_, upto). Overlaps are draws; beyond all takes is overage.
    con.execute(f"CREATE TEMP TABLE unit_draws AS {_DRAWS.format(charges='burn_units')}")
    # A run that drew on one lot (or only on the pool) is that lot for each of its charges;
    # only a run split between lots needs each charge's place in it. A unit of one charge
    # is its charge.
    con.execute("""
        CREATE TEMP TABLE split_runs AS
        SELECT seq FROM unit_draws JOIN burn_units u USING (seq) WHERE u.is_run
        GROUP BY seq HAVING count(*) > 1
    """)
    con.execute(
        f"CREATE TEMP TABLE split_charges AS {_charge_places('SELECT seq FROM split_runs')}"
    )
    con.execute("""
        CREATE TABLE run_draws AS
        SELECT u.exported_at, u.export_id, d.lot_id, u.credits, u.last_recorded_at
        FROM unit_draws d JOIN burn_units u USING (seq)
        WHERE u.is_run AND u.seq NOT IN (SELECT seq FROM split_runs)
    """)
    con.execute(f"""
        CREATE TABLE lot_draws AS
        SELECT d.* FROM unit_draws d JOIN burn_units u USING (seq) WHERE NOT u.is_run
        UNION ALL
        SELECT * FROM ({_DRAWS.format(charges="split_charges")})
    """)
    con.execute(
        "DROP TABLE accounts; DROP TABLE burn_lots; DROP TABLE burn_reversals; "
        "DROP TABLE boundaries; DROP TABLE export_runs; DROP TABLE burn_units; "
        "DROP TABLE demand; DROP TABLE remaining; DROP TABLE takes; DROP TABLE unit_draws; "
        "DROP TABLE split_runs; DROP TABLE split_charges; DROP TABLE IF EXISTS burn_targets"
    )
    return segments


def _charge_places(runs: str, charges: str | None = None) -> str:
    """SQL for charges with their account, segment and [from_, upto): those of the run
    units whose seq ``runs`` selects, each its part of the run's range in seq order (only
    the charges whose seq ``charges`` selects, if given), and the units of one charge that
    ``charges`` selects."""
    only = f"WHERE seq IN ({charges})" if charges else ""
    loose = (
        f"""UNION ALL
        SELECT seq, account, segment, credits, from_, upto
        FROM burn_units WHERE NOT is_run AND seq IN ({charges})"""
        if charges
        else ""
    )
    return f"""
        SELECT seq, account, segment, credits, upto - credits AS from_, upto
        FROM (
            SELECT c.seq, u.account, u.segment, c.credits,
                   u.from_ + sum(c.credits) OVER (
                       PARTITION BY u.seq ORDER BY c.seq ROWS UNBOUNDED PRECEDING) AS upto
            FROM charges c JOIN burn_units u USING (exported_at, export_id)
            WHERE c.credits > 0 AND u.is_run AND u.seq IN ({runs})
        )
        {only}
        {loose}
    """


# Draws of the charges in {charges}: (seq, lot_id, credits, piece_from, piece_to), where
# [piece_from, piece_to) is the part of the charge's own credits the piece covers.
_DRAWS = """
    WITH drawn AS (SELECT account, segment, sum(take) AS taken FROM takes GROUP BY ALL)
    SELECT s.seq, t.lot_id,
           least(s.upto, t.starts_at + t.take) - greatest(s.from_, t.starts_at) AS credits,
           greatest(s.from_, t.starts_at) - s.from_ AS piece_from,
           least(s.upto, t.starts_at + t.take) - s.from_ AS piece_to
    FROM {charges} s
    JOIN takes t ON t.account = s.account AND t.segment = s.segment
     AND s.from_ < t.starts_at + t.take AND s.upto > t.starts_at
    UNION ALL
    SELECT s.seq, NULL, s.upto - greatest(s.from_, coalesce(d.taken, 0)),
           greatest(s.from_, coalesce(d.taken, 0)) - s.from_, s.upto - s.from_
    FROM {charges} s
    LEFT JOIN drawn d ON d.account = s.account AND d.segment = s.segment
    WHERE s.upto > coalesce(d.taken, 0)
"""


def _give_back(con: duckdb.DuckDBPyConnection, segment: int) -> None:
    """Apply the reversals at the start of ``segment`` (DOMAIN rule 5).

    A reversal undoes its target's charges most recent first, and within a charge the
    piece drawn last first. Its charges all lie in earlier segments, so their draws are
    known. Credits go back to the lot if it is still open (they can be spent again), are
    forfeited at once if it has expired, and reduce the overage for the overage part.
    """
    con.execute(
        f"""
        INSERT INTO reversal_draws
        WITH now AS (
            SELECT r.* FROM burn_reversals r
            JOIN boundaries b ON b.account = r.account AND b.edge = r.reversed_at
            WHERE b.segment = $segment
        ),
        targets AS (
            SELECT * FROM reversal_targets WHERE target IN (SELECT target FROM now)
        ),
        target_charges AS (
            SELECT * FROM burn_targets WHERE seq IN (SELECT seq FROM targets)
        ),
        pieces AS (
            SELECT d.lot_id, t.target,
                   t.undo_position + (t.credits - d.piece_to) AS undo_lo,
                   t.undo_position + (t.credits - d.piece_from) AS undo_hi
            FROM ({_DRAWS.format(charges="target_charges")}) d
            JOIN targets t USING (seq)
        )
        SELECT n.file_id, n.row_number, p.lot_id,
               least(p.undo_hi, n.undo_to) - greatest(p.undo_lo, n.undo_from),
               p.lot_id IS NULL OR l.closes > n.reversed_at
        FROM now n
        JOIN pieces p ON p.target = n.target AND p.undo_lo < n.undo_to AND p.undo_hi > n.undo_from
        LEFT JOIN burn_lots l ON l.lot_id = p.lot_id
        """,
        {"segment": segment},
    )
    con.execute(
        """
        UPDATE remaining SET remaining = remaining.remaining + g.credits
        FROM (
            SELECT d.lot_id, sum(d.credits) AS credits
            FROM reversal_draws d
            JOIN burn_reversals r USING (file_id, row_number)
            JOIN boundaries b ON b.account = r.account AND b.edge = r.reversed_at
            WHERE b.segment = $segment AND d.lot_id IS NOT NULL AND d.lot_open
            GROUP BY ALL
        ) g
        WHERE g.lot_id = remaining.lot_id
        """,
        {"segment": segment},
    )
