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


# What an adapter may give besides its records, <kind>_<vendor>, unioned as vendor_<kind>
# (the typed NULLs are the shape when no adapter gives one). The README's "Adding a vendor"
# says what each holds.
ADAPTER_TABLES = {
    # rows it cannot use, with the reason
    "quarantine": "NULL::VARCHAR AS file_id, NULL::BIGINT AS row_number, NULL::VARCHAR AS reason",
    # the file each export's records are traced to, when not the file loaded under file_id
    "files": "NULL::VARCHAR AS export_id, NULL::VARCHAR AS file_id, NULL::VARCHAR AS source_file",
    # what the vendor billed per export: beyond the rules' charges, charged re-exports
    "billed": "NULL::VARCHAR AS vendor, NULL::VARCHAR AS export_id, NULL::BIGINT AS credits_billed",
    # the vendor's own figure per user and month (vendor_reconciliation.sql)
    "reported": (
        "NULL::VARCHAR AS vendor, NULL::VARCHAR AS user, NULL::DATE AS month, "
        "NULL::BIGINT AS reported_credits, NULL::VARCHAR AS reported_from, "
        "NULL::BIGINT AS listing_credits, NULL::BIGINT AS listed_without_file, "
        "NULL::BIGINT AS usage_without_listing, NULL::BIGINT AS usage_minus_listings, "
        "NULL::DATE AS used_to_date_on"
    ),
    # reconciliation rows no user or month can be put on
    "unattributed": "NULL::VARCHAR AS vendor, NULL::VARCHAR AS reason",
    # why this build's files cannot be added to what is published (empty in a full build,
    # whose build_files are every file): an incremental night then rebuilds in full
    "night_conflicts": "NULL::VARCHAR AS vendor, NULL::VARCHAR AS reason",
}


def vendor_adapters(con: duckdb.DuckDBPyConnection) -> int:
    """Run each vendor's adapter (models/vendors/<vendor>.sql), then union what they give:
    records_<vendor> as vendor_records, and each of ADAPTER_TABLES' <kind>_<vendor> (if the
    adapter gives one) as vendor_<kind>. records_<vendor> and vendor_records are views, as
    is exported_records: the records are materialised once, by ledger.mark_charges
    (materialising the adapters' records as well cost 1 s at 10M records)."""
    for vendor in VENDORS:
        con.execute((MODELS / "vendors" / f"{vendor}.sql").read_text())
    tables = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    records = [f"SELECT * FROM records_{v}" for v in VENDORS]
    con.execute("CREATE VIEW vendor_records AS " + " UNION ALL BY NAME ".join(records))
    for kind, columns in ADAPTER_TABLES.items():
        _union_of_adapters(con, kind, tables, columns)
    return len(VENDORS)
