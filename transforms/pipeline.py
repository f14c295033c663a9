"""What a full rebuild and an incremental night share: the build database and its inputs,
run_info, the audits (nothing is published if one fails), the side folders, the timing."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb

from schemas.inputs import SOURCES, VENDORS
from schemas.parse import vendor_rules
from transforms import alerts, close
from transforms.disputes import write_disputes
from transforms.parquet import write_parquet
from transforms.publish import Workspace
from transforms.runner import MODELS, grain_audit, models
from transforms.settings import AlertRules


def memory_limit() -> str:
    """DuckDB's memory limit for a run (CREDITRECON_MEMORY_LIMIT, default 3GB): past it,
    DuckDB spills to disk rather than growing. 3GB keeps a 10M-record night under 4 GiB."""
    return os.environ.get("CREDITRECON_MEMORY_LIMIT", "3GB")


class AuditFailed(Exception):
    """A rule the warehouse must satisfy does not hold; nothing was published."""


@dataclass(frozen=True)
class RunParams:
    as_of: dt.date
    reporting_timezone: str = "UTC"
    reexport_window_months: int = 12
    published_by: str = ""  # the run that publishes (a Prefect flow run), for `status`
    alert_rules: AlertRules = AlertRules()
    run_at: dt.datetime | None = None  # UTC start of the nightly run: when its alerts are raised


def create_vendor_rules(con: duckdb.DuckDBPyConnection) -> None:
    """vendor_rules: what the shared models need to know of each vendor (its header TOML),
    and vendor_name(v), a vendor as clients know it, for every sentence a model writes (a
    vendor with no adapter keeps its id)."""
    con.execute(
        "CREATE TABLE vendor_rules "
        "(vendor VARCHAR, rule VARCHAR, repeat_purchases BOOLEAN, vendor_name VARCHAR)"
    )
    con.executemany(
        "INSERT INTO vendor_rules VALUES (?, ?, ?, ?)",
        [[r.vendor, r.rule, r.repeat_purchases, r.name] for r in map(vendor_rules, VENDORS)],
    )
    con.execute("""
        CREATE MACRO vendor_name(v) AS
            coalesce((SELECT r.vendor_name FROM vendor_rules r WHERE r.vendor = v), v)
    """)


def _audits(con: duckdb.DuckDBPyConnection) -> list[str]:
    failures = []
    # The grains declared, on the ledger entries to audit (see finish).
    grains = grain_audit(models(), {"ledger_entries": "entries_to_audit"})
    audits = [(a.stem, a.read_text()) for a in (MODELS / "audits").glob("*.sql")]
    for name, sql in sorted([*audits, ("grains", grains)]):
        rows = con.sql(sql).fetchall()
        if rows:
            failures.append(f"{name}: {len(rows)} rows break it, e.g. {rows[:3]}")
    return failures


def _inputs_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.sql(
        "SELECT content_hash FROM ingest_manifest WHERE status = 'loaded' ORDER BY 1"
    ).fetchall()
    return hashlib.sha256("".join(r[0] for r in rows).encode()).hexdigest()[:16]


@functools.cache
def pipeline_fingerprint() -> str:
    """Hash of the code and rules that build the marts (transforms/, the vendors' header and
    charging config): an incremental night only adds to a warehouse built by the same."""
    root = Path(__file__).resolve().parent.parent
    files = sorted(
        [*(root / "transforms").rglob("*.py"), *(root / "transforms").rglob("*.sql")]
        + [*(root / "transforms").rglob("*.toml"), *(root / "schemas" / "headers").glob("*.toml")]
    )
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class Clock:
    """Tells ``on_step(name, seconds)`` how long each step took since the last one."""

    def __init__(self, on_step: Callable[[str, float], None] | None) -> None:
        self.on_step = on_step
        self.last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        if self.on_step:
            self.on_step(name, now - self.last)
        self.last = now


# build_files' columns from ingest_files rows. file_id only for a loaded file: a duplicate
# shares the id of the file loaded first, whose rows are not this build's to take again.
BUILD_FILES = "SELECT path, content_hash, CASE WHEN status = 'loaded' THEN file_id END AS file_id"


def connect(
    store: Path, work: Workspace, params: RunParams, current_config: dict[str, str | None]
) -> duckdb.DuckDBPyConnection:
    """An in-memory build database with the ingest store attached (read-only) as ``ingest``
    and the run's parameters and small fixed tables. Intermediate tables live in memory
    (spilling to the scratch folder past the limit), not in the new file: writing them
    compressed to disk, only to drop them, cost more than computing them. They are kept
    narrow (a record's file path is looked up by file_id, not carried): in memory DuckDB
    stores them uncompressed, and at 10M records every column is a few hundred MB."""
    con = duckdb.connect(
        config={"memory_limit": memory_limit(), "temp_directory": str(work.scratch)}
    )
    con.execute("ATTACH ? AS ingest (READ_ONLY)", [str(store)])
    con.execute("SET VARIABLE as_of = ?::DATE", [params.as_of])
    con.execute("SET VARIABLE cutoff = (?::DATE + INTERVAL 1 DAY)::TIMESTAMP", [params.as_of])
    con.execute("SET VARIABLE reexport_window_months = ?::INTEGER", [params.reexport_window_months])
    con.execute("SET VARIABLE reporting_timezone = ?", [params.reporting_timezone])
    alerts.set_rules(con, params.alert_rules, params.run_at)
    # A vendor time that carried an offset (minutes east of UTC) as wall time in the
    # reporting zone; one without stays as written (DOMAIN rule 11, docs/rules.md).
    # A record ID of digits only is a number to the vendor: 007123 is 7123, the same
    # record with the zeros a spreadsheet added (docs/rules.md "Record IDs").
    con.execute("""
        CREATE MACRO record_id(id) AS CASE
            WHEN starts_with(id, '0') AND regexp_full_match(id, '[0-9]+')
                THEN coalesce(nullif(ltrim(id, '0'), ''), '0')
            ELSE id END
    """)
    con.execute("""
        CREATE MACRO reporting_time(t, utc_offset) AS CASE WHEN utc_offset IS NULL THEN t
            ELSE timezone(getvariable('reporting_timezone'),
                          timezone('UTC', t - to_minutes(utc_offset::BIGINT))) END
    """)
    con.execute("CREATE TABLE current_config_files (source VARCHAR, file_id VARCHAR)")
    config_rows = [[s, f] for s, f in current_config.items() if f is not None]
    if config_rows:
        con.executemany("INSERT INTO current_config_files VALUES (?, ?)", config_rows)
    create_vendor_rules(con)
    con.execute("CREATE TABLE sources (source VARCHAR, vendor VARCHAR, snapshot BOOLEAN)")
    con.executemany(
        "INSERT INTO sources VALUES (?, ?, ?)",
        [[s.name, s.vendor, s.snapshot] for s in SOURCES],
    )
    # The files whose rows this build computes: all of them here; an incremental night keeps
    # only its new ones (and adds the results to the last published warehouse).
    con.execute(f"CREATE TABLE build_files AS {BUILD_FILES} FROM ingest.ingest_files")
    # What earlier nights charged and drew: empty in a full rebuild (transforms/incremental.py).
    con.execute("""
        CREATE TABLE prior_charges (
            vendor VARCHAR, record_type VARCHAR, record_key VARCHAR, seq BIGINT,
            charged_at TIMESTAMP, client_id VARCHAR, export_id VARCHAR, exported_at TIMESTAMP,
            source_file VARCHAR, row_number BIGINT)
    """)
    con.execute(
        "CREATE TABLE prior_lot_draws (lot_id VARCHAR, drawn BIGINT, last_recorded_at TIMESTAMP)"
    )
    # Every staged row of build_files (keys only), and, as the text of the input row, the
    # ones the rules rejected (rule_rejects, filled by quarantine.sql): turning every row to
    # JSON to keep the rejected ones cost 2 s at 10M records.
    con.execute("CREATE TABLE rule_rejects (file_id VARCHAR, row_number BIGINT, reason VARCHAR)")
    con.execute(
        "CREATE TEMP VIEW staged_rows AS "
        + " UNION ALL ".join(
            f"SELECT file_id, row_number FROM ingest.stg_{s.name} "
            "WHERE file_id IN (SELECT file_id FROM build_files)"
            for s in SOURCES
        )
    )
    con.execute(
        "CREATE TEMP VIEW rejected_raw_rows AS "
        + " UNION ALL ".join(
            "SELECT file_id, row_number, to_json(s)::VARCHAR AS raw_row "
            f"FROM ingest.stg_{s.name} s SEMI JOIN rule_rejects USING (file_id, row_number)"
            for s in SOURCES
        )
    )
    return con


def closed_months(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not close.has_closed_months_table(con):
        return []
    return [
        str(m) for (m,) in con.sql("SELECT month FROM ingest.closed_months ORDER BY 1").fetchall()
    ]


def finish(
    con: duckdb.DuckDBPyConnection,
    params: RunParams,
    current_config: dict[str, str | None],
    how: str,
) -> dict[str, int]:
    """run_info, then the audits (nothing is published if one fails). Returns row counts."""
    watermarks = {
        vendor: str(at)
        for vendor, at in con.sql("SELECT vendor, watermark FROM watermarks ORDER BY 1").fetchall()
    }
    con.execute(
        "CREATE TABLE run_info AS SELECT ?::DATE AS as_of, ? AS reporting_timezone, "
        "?::INTEGER AS reexport_window_months, ? AS inputs_fingerprint, "
        "? AS creditrecon_version, ? AS pipeline_fingerprint, ? AS build, ? AS config_files, "
        "? AS closed_months, ? AS watermarks, ? AS published_by",
        [
            params.as_of,
            params.reporting_timezone,
            params.reexport_window_months,
            _inputs_fingerprint(con),
            version("creditrecon"),
            pipeline_fingerprint(),
            how,
            json.dumps(current_config, sort_keys=True),
            json.dumps(closed_months(con)),
            json.dumps(watermarks, sort_keys=True),
            params.published_by,
        ],
    )
    # Audits check every ledger entry, unless an incremental night said which are new.
    con.execute("CREATE TEMP VIEW IF NOT EXISTS entries_to_audit AS FROM ledger_entries")
    failures = _audits(con)
    if failures:
        raise AuditFailed("; ".join(failures))
    return {
        m.name: con.execute(f"SELECT count(*) FROM {m.name}").fetchall()[0][0]
        for m in models().published
    }


def write_side_dirs(
    con: duckdb.DuckDBPyConnection,
    work: Workspace,
    parquet: bool,
    changed: dict[str, set[str]] | None = None,
) -> None:
    write_disputes(con, work.side_building[1])
    if parquet:
        write_parquet(con, work.side_building[0], work.side_dirs[0], changed or {})
