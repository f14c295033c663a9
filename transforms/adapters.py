"""The vendors' adapters: each vendor's files to records in one shape (the vendor_records
model, transforms/models/records/vendor_records.toml)."""

from __future__ import annotations

import duckdb

from schemas.inputs import VENDORS
from transforms.runner import MODELS


def _union_of_adapters(
    con: duckdb.DuckDBPyConnection, kind: str, tables: set[str], columns: str
) -> None:
    """vendor_<kind>: every adapter's <kind>_<vendor> table that exists, unioned; ``columns``
    (typed NULLs) give its shape when none does."""
    parts = [f"SELECT * FROM {kind}_{v}" for v in VENDORS if f"{kind}_{v}" in tables]
    con.execute(
        f"CREATE TABLE vendor_{kind} AS "
        + " UNION ALL BY NAME ".join([*parts, f"SELECT {columns} WHERE false"])
    )


def vendor_adapters(con: duckdb.DuckDBPyConnection) -> int:
    """Run each vendor's adapter (models/vendors/<vendor>.sql), then union what they give:
    records_<vendor> as vendor_records, quarantine_<vendor> (if any) as vendor_quarantine, and
    files_<vendor> (if any: the file each export's records are traced to, by export_id and
    file_id, when that is not simply the file loaded under the file_id) as vendor_files.
    records_<vendor> and vendor_records are views, as is exported_records: the records are
    materialised once, by ledger.mark_charges (materialising the adapters' records as well
    cost 1 s at 10M records)."""
    for vendor in VENDORS:
        con.execute((MODELS / "vendors" / f"{vendor}.sql").read_text())
    tables = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    records = [f"SELECT * FROM records_{v}" for v in VENDORS]
    con.execute("CREATE VIEW vendor_records AS " + " UNION ALL BY NAME ".join(records))
    _union_of_adapters(
        con,
        "quarantine",
        tables,
        "NULL::VARCHAR AS file_id, NULL::BIGINT AS row_number, NULL::VARCHAR AS reason",
    )
    _union_of_adapters(
        con,
        "files",
        tables,
        "NULL::VARCHAR AS export_id, NULL::VARCHAR AS file_id, NULL::VARCHAR AS source_file",
    )
    return len(VENDORS)
