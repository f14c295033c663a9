"""The peer: the one DuckDB script an analyst might write instead of the pipeline.

    python benchmarks/peer.py DATA OUT.duckdb

It joins every exported ZoomInfo ID to its listing row (by file name) and to the client of
the user who exported it, charges an ID unless the same ID was exported in the 12 months
before (the previous-export test), and writes one table, `monthly_counts`: per client and
month, records exported, charged and free re-exports (a user of no client counts as
`unassigned`, as in the warehouse). On a clean synthetic folder its
counts are the pipeline's (tests/test_peer.py), which makes it a fair yardstick for speed.

What it leaves out, which is most of what the pipeline is for:
- lots and burn order: allocations, one-time gifts, purchased and earned credits with their
  windows, which lot a charge draws on, overage, forfeits at month end, the shared pool and
  contracts;
- the charge rule's chain: a re-export is free within 12 months of the record's last
  *charge*, not of its last export (an ID exported every 11 months is charged again once a
  year has passed since it was charged);
- reversals, month close and late data booked in the first open month;
- quarantine and every input check: Excel-mangled IDs such as `1.3E+09` (counted here as an
  ID), empty IDs, header variants, encodings, delimiters, broken rows, day-first dates,
  files delivered twice or renamed, export files with no listing, users' validity dates;
- reconciliation with the listing's Credits Used and the usage reports, disputes;
- 6sense and Apollo, whose charges follow other rules;
- the ledger (every movement traceable to an input row and a lot), the audits, the atomic
  publish, the Parquet copy, and incremental nights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

PEER_SQL = """
CREATE TABLE monthly_counts AS
WITH listing AS (
    SELECT "File Name" AS file_name, "Export ID" AS export_id,
           lower(trim("Exported By")) AS user, "Export Date"::TIMESTAMP AS exported_at
    FROM read_csv($listings, all_varchar = true, union_by_name = true)
),
users AS (
    SELECT lower(trim("user")) AS user, client_id
    FROM read_csv($users, all_varchar = true)
    WHERE vendor = 'zoominfo'
),
exported AS (
    SELECT parse_filename(filename) AS file_name, "ZoomInfo Contact ID" AS record_id
    FROM read_csv($exports, all_varchar = true, union_by_name = true, filename = true)
    WHERE coalesce("ZoomInfo Contact ID", '') <> ''
),
judged AS (
    SELECT coalesce(u.client_id, 'unassigned') AS client_id, l.exported_at,
           lag(l.exported_at) OVER (
               PARTITION BY e.record_id ORDER BY l.exported_at, l.export_id
           ) AS previous_export
    FROM exported e
    JOIN listing l USING (file_name)
    LEFT JOIN users u USING (user)
)
SELECT client_id, date_trunc('month', exported_at)::DATE AS month,
       count(*) AS records,
       count(*) FILTER (
           WHERE previous_export IS NULL OR previous_export <= exported_at - INTERVAL 12 MONTH
       ) AS charged,
       count(*) FILTER (
           WHERE previous_export > exported_at - INTERVAL 12 MONTH
       ) AS free_reexports
FROM judged
GROUP BY ALL
ORDER BY ALL
"""


def peer(data: Path, out: Path) -> int:
    """Write `monthly_counts` for the ZoomInfo files of `data` into `out`; its row count."""
    inbox = data / "inbox" / "zoominfo"
    con = duckdb.connect(str(out))
    try:
        con.execute(
            PEER_SQL,
            {
                "listings": str(inbox / "downloads" / "*.csv"),
                "exports": str(inbox / "exports" / "*.csv"),
                "users": str(data / "config" / "users.csv"),
            },
        )
        (rows,) = con.execute("SELECT count(*) FROM monthly_counts").fetchone() or (0,)
        return int(rows)
    finally:
        con.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/peer.py DATA OUT.duckdb")
    print(f"monthly_counts: {peer(Path(sys.argv[1]), Path(sys.argv[2]))} rows")
