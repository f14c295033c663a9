"""Checks of the agency's configuration that stop a run before it builds anything.

Most config problems are one row's: that row is quarantined with its reason and the rest
is used (models/config/). These are not: a config file rejected whole, or a contracts file with
a row that cannot be used, or two contracts of one vendor covering the same day. Building
on them would bill charges against the wrong pool (or all as overage) and publish it, so
the run stops with one line naming the file and rows, and the published warehouse stays.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from schemas.inputs import SOURCE_BY_NAME
from transforms.config_errors import ConfigError

SHOWN = 3  # problems named in the message; the count says if there are more


def _message(path: str, problems: list[str]) -> str:
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return f"{path}: {'; '.join(problems[:SHOWN])}{more}; nothing was published"


def check_config(store: Path, current_config: dict[str, str | None]) -> None:
    """Raise ConfigError if the config present now cannot be built on."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        for source, file_id in sorted(current_config.items()):
            if file_id is None:
                continue
            path = SOURCE_BY_NAME[source].pattern
            status = con.execute(
                "SELECT status, error FROM ingest_files WHERE file_id = ? AND path = ?",
                [file_id, path],
            ).fetchall()
            if status and status[0][0] == "rejected":
                raise ConfigError(_message(path, [f"the file is rejected: {status[0][1]}"]))
        contracts = current_config.get("contracts")
        if contracts is None:
            return
        path = SOURCE_BY_NAME["contracts"].pattern
        problems = [
            f"row {n}: {reason}"
            for n, reason in con.execute(
                "SELECT row_number, reason FROM ingest_quarantine WHERE file_id = ? ORDER BY 1",
                [contracts],
            ).fetchall()
        ]
        problems += [
            f"row {n}: ends_on {e} is not after starts_on {s}"
            for n, s, e in con.execute(
                "SELECT row_number, starts_on, ends_on FROM stg_contracts "
                "WHERE file_id = ? AND ends_on <= starts_on ORDER BY 1",
                [contracts],
            ).fetchall()
        ]
        problems += [
            f"rows {a} and {b}: contract_id {cid} is used twice"
            for a, b, cid in con.execute(
                "SELECT a.row_number, b.row_number, b.contract_id FROM stg_contracts a "
                "JOIN stg_contracts b ON a.file_id = b.file_id AND a.vendor = b.vendor "
                "AND lower(a.contract_id) = lower(b.contract_id) AND a.row_number < b.row_number "
                "WHERE a.file_id = ? ORDER BY 1, 2",
                [contracts],
            ).fetchall()
        ]
        problems += [
            f"rows {a} and {b}: {vendor} contracts overlap from {start} to {end} "
            "(one contract per vendor on any day)"
            for a, b, vendor, start, end in con.execute(
                "SELECT a.row_number, b.row_number, a.vendor, greatest(a.starts_on, b.starts_on), "
                "least(a.ends_on, b.ends_on) FROM stg_contracts a JOIN stg_contracts b "
                "ON a.file_id = b.file_id AND a.vendor = b.vendor AND a.row_number < b.row_number "
                "AND a.starts_on < b.ends_on AND b.starts_on < a.ends_on "
                "AND lower(a.contract_id) <> lower(b.contract_id) "
                "WHERE a.file_id = ? ORDER BY 1, 2",
                [contracts],
            ).fetchall()
        ]
        if problems:
            raise ConfigError(_message(path, problems))
        if not con.execute(
            "SELECT count(*) FROM stg_contracts WHERE file_id = ?", [contracts]
        ).fetchall()[0][0]:
            raise ConfigError(_message(path, ["no contract rows (every charge would be overage)"]))
    finally:
        con.close()
