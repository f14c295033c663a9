"""Dispute files: one CSV per vendor and month, what to put in a support ticket."""

from __future__ import annotations

from pathlib import Path

import duckdb

from transforms.csvsafe import csv_text
from transforms.filenames import file_stems


def disputes_dir(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.stem + "-disputes")


COLUMNS = ["export_or_file", "record_ids", "credits_to_reverse", "cross_client_records"]


def write_disputes(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """One CSV per vendor and month: the export, record IDs and credits for a ticket."""
    out.mkdir()
    months = con.sql("SELECT DISTINCT vendor, month FROM disputes ORDER BY ALL").fetchall()
    stems = file_stems(v for v, _ in months)
    for vendor, month in months:
        rows = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM disputes WHERE vendor = ? AND month = ? "
            "ORDER BY export_or_file",
            [vendor, month],
        ).fetchall()
        target = out / f"{stems[vendor]}_{month:%Y-%m}.csv"
        target.write_text(csv_text([COLUMNS, *rows], newline="\n"), newline="", encoding="utf-8")
