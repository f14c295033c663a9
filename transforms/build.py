"""Build the analysts' warehouse from the ingest store and publish it atomically.

The warehouse is built in a new file next to the published one and swapped in with one
``os.replace`` once every audit passes. A reader who has the old file open keeps reading
it undisturbed (and never blocks the swap); a crash leaves the published file as it was.
Models run in the order of ``STEPS``: read them top to bottom to follow a file from the
ingest store to a mart.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb

from schemas.inputs import SOURCES, VENDORS
from schemas.parse import header_config
from transforms import close, ledger
from transforms.failpoints import failpoint

MODELS = Path(__file__).parent / "models"


def vendor_adapters(con: duckdb.DuckDBPyConnection) -> int:
    """Run each vendor's adapter (models/vendors/<vendor>.sql), then union what they give:
    records_<vendor> as vendor_records (a view: read once, by exported_records), quarantine_<vendor>
    (if any) as vendor_quarantine."""
    for vendor in VENDORS:
        con.execute((MODELS / "vendors" / f"{vendor}.sql").read_text())
    tables = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    records = [f"SELECT * FROM records_{v}" for v in VENDORS]
    quarantines = [f"SELECT * FROM quarantine_{v}" for v in VENDORS if f"quarantine_{v}" in tables]
    con.execute("CREATE VIEW vendor_records AS " + " UNION ALL BY NAME ".join(records))
    con.execute(
        "CREATE TABLE vendor_quarantine AS "
        + " UNION ALL BY NAME ".join(
            [
                *quarantines,
                "SELECT NULL::VARCHAR AS file_id, NULL::BIGINT AS row_number, "
                "NULL::VARCHAR AS reason WHERE false",
            ]
        )
    )
    return len(VENDORS)


# (name, what it does): a .sql file in models/ or a function.
STEPS: list[tuple[str, str | Callable[[duckdb.DuckDBPyConnection], int]]] = [
    ("config", "config.sql"),  # current config, unusable rows to quarantine
    ("clients", "clients.sql"),
    ("vendors", vendor_adapters),  # each vendor's files -> records in one shape
    ("exported_records", "exported_records.sql"),  # records -> clients
    ("charges", ledger.mark_charges),  # rule 2: charged or free re-export
    ("lots", "lots.sql"),  # rule 1: baseline and granted lots
    ("reversals", "reversals.sql"),  # rule 5: which charges a reversal undoes
    ("lot_draws", ledger.burn_lots),  # rules 3 and 5: burn order, overage, credits given back
    ("ledger_entries", "ledger_entries.sql"),  # rule 4: forfeits; all movements
    ("late_entries", close.book_late_entries),  # rule 8: closed months keep their entries
    ("credit_lots", "credit_lots.sql"),
    ("monthly_balances", "monthly_balances.sql"),  # rule 9
    ("closed_balances", close.use_frozen_balances),  # rule 8: closed months never change
    ("forfeitures", "forfeitures.sql"),
    ("duplicate_reexports", "duplicate_reexports.sql"),  # re-exports, repeats, disputes
    ("purchase_quality", "purchase_quality.sql"),
    ("vendor_reconciliation", "vendor_reconciliation.sql"),  # rule 7
    ("client_overconsumption", "client_overconsumption.sql"),  # rule 6
    ("pace_forecast", "pace_forecast.sql"),
    ("quarantine", "quarantine.sql"),  # rule 10: rows read = loaded + quarantined
]

# Intermediates that no later step reads, dropped as soon as the step named has run. Each
# holds every record (about 1 GB at 10M records); past the memory limit DuckDB spills to
# disk, and at 10M records keeping them cost 30 s of a 75 s build.
RELEASE_AFTER: dict[str, list[str]] = {
    "exported_records": ["vendor_records", *(f"records_{v}" for v in VENDORS)],
    "charges": ["exported_records"],
    "ledger_entries": ["lot_draws"],
    "client_overconsumption": ["charges"],
}

# Table macros published with the marts (created after the build's own tables are dropped).
MACROS = ["balance_at.sql"]

# Marts also written as Parquet for other tools, partitioned by this month column.
PARQUET_PARTITIONS = {
    "monthly_balances": "month",
    "ledger_entries": "booking_month",
    "forfeitures": "month",
    "credit_lots": None,
    "duplicate_reexports": None,
    "disputes": "month",
    "purchase_quality": "month",
    "vendor_reconciliation": None,
    "client_overconsumption": "month",
    "pool_overconsumption": None,
    "pace_forecast": None,
    "clients": None,
    "quarantine": None,
    "ingest_manifest": None,
}

PUBLISHED = [
    "ledger_entries",
    "monthly_balances",
    "forfeitures",
    "credit_lots",
    "duplicate_reexports",
    "disputes",
    "purchase_quality",
    "vendor_reconciliation",
    "client_overconsumption",
    "pool_overconsumption",
    "pace_forecast",
    "clients",
    "quarantine",
    "ingest_manifest",
    "run_info",
]


def memory_limit() -> str:
    """DuckDB's memory limit for a run (CREDITRECON_MEMORY_LIMIT, default 3GB): past it,
    DuckDB spills to disk rather than growing. 3GB keeps a 10M-record night under 4 GiB."""
    return os.environ.get("CREDITRECON_MEMORY_LIMIT", "3GB")


class AuditFailed(Exception):
    """A rule the warehouse must satisfy does not hold; nothing was published."""


class RunLocked(Exception):
    """Another run holds the warehouse's lock."""


@dataclass(frozen=True)
class RunParams:
    as_of: dt.date
    reporting_timezone: str = "UTC"
    reexport_window_months: int = 12


@contextlib.contextmanager
def run_lock(warehouse: Path) -> Iterator[None]:
    """One run at a time per warehouse; a second one is refused at once, not queued."""
    lock_path = warehouse.with_name(warehouse.name + ".lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise RunLocked(f"{warehouse} is being built by {holder}; try again later") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()


def _catalog() -> dict[str, dict[str, str]]:
    with open(MODELS / "catalog.toml", "rb") as f:
        return tomllib.load(f)


def _audits(con: duckdb.DuckDBPyConnection) -> list[str]:
    failures = []
    for audit in sorted((MODELS / "audits").glob("*.sql")):
        rows = con.sql(audit.read_text()).fetchall()
        if rows:
            failures.append(f"{audit.stem}: {len(rows)} rows break it, e.g. {rows[:3]}")
    return failures


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _describe(con: duckdb.DuckDBPyConnection) -> None:
    """Table and column comments, readable from DuckDB itself (duckdb_columns())."""
    catalog = _catalog()
    for table in PUBLISHED:
        docs = catalog[table]
        con.execute(f"COMMENT ON TABLE {table} IS {_literal(docs['_table'])}")
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        missing = [c for c in columns if c not in docs]
        if missing:
            raise AuditFailed(f"{table}: columns {missing} have no description in catalog.toml")
        for column in columns:
            con.execute(f'COMMENT ON COLUMN {table}."{column}" IS {_literal(docs[column])}')


def _inputs_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.sql(
        "SELECT content_hash FROM ingest_manifest WHERE status = 'loaded' ORDER BY 1"
    ).fetchall()
    return hashlib.sha256("".join(r[0] for r in rows).encode()).hexdigest()[:16]


def parquet_dir(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.stem + "-parquet")


# Kept in the Parquet folder (so it is swapped in with it): each partition's fingerprint and
# files. Names starting with '_' are skipped by Parquet dataset readers.
PARQUET_STATE = "_partitions.json"
# zstd: a third of snappy's size (the ledger at 10M records: 50 MB, not 150) for the same
# time; pyarrow, polars, pandas and Spark all read it.
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # DuckDB's folder name for a NULL partition value


def _partition_fingerprints(
    con: duckdb.DuckDBPyConnection, table: str, month: str | None
) -> tuple[dict[str, str], bool]:
    """({partition folder ('' when not partitioned): fingerprint of its rows, schema and
    Parquet options}, whether the table is empty). Two 64-bit sums of row hashes plus the
    count: a changed row changes it."""
    schema = con.sql(
        f"SELECT string_agg(column_name || ' ' || column_type, ',') FROM (DESCRIBE {table})"
    ).fetchall()[0][0]
    folder = (
        f"CASE WHEN {month} IS NULL THEN '{HIVE_NULL}' ELSE {month}::VARCHAR END" if month else "''"
    )
    rows = con.sql(
        f"SELECT {folder}, count(*), bit_xor(hash(_row)), sum(hash(_row)::HUGEINT) "
        f"FROM {table} _row GROUP BY ALL"
    ).fetchall()
    empty = not rows
    if empty:  # an empty table is one empty file (see _write_parquet)
        rows = [(HIVE_NULL if month else "", 0, 0, 0)]
    prefix = f"{PARQUET_OPTIONS}|{schema}"
    fingerprints = {
        (f"{month}={part}" if month else ""): hashlib.sha256(
            f"{prefix}|{n}|{xor}|{total}".encode()
        ).hexdigest()
        for part, n, xor, total in rows
    }
    return fingerprints, empty


def _intact(folder: Path, files: dict[str, int]) -> bool:
    """The files a partition was written as are all still there, at their sizes."""
    return bool(files) and all(
        (folder / f).is_file() and (folder / f).stat().st_size == size for f, size in files.items()
    )


def _write_parquet(con: duckdb.DuckDBPyConnection, out: Path, previous: Path) -> None:
    """Every table of PARQUET_PARTITIONS as Parquet under ``out``. A partition whose rows are
    those of the ``previous`` folder's (same fingerprint, files intact) is hard-linked from
    it, not written again: a night touches a month or two, the history stays as it was."""
    try:
        old = json.loads((previous / PARQUET_STATE).read_text())
    except (OSError, ValueError):
        old = {}
    if not isinstance(old, dict):
        old = {}
    state: dict[str, dict[str, dict[str, object]]] = {}
    out.mkdir()
    for table, month in PARQUET_PARTITIONS.items():
        target = out / table
        parts, empty = _partition_fingerprints(con, table, month)
        kept: dict[str, dict[str, object]] = {}
        for part, fp in parts.items():
            was = old.get(table, {}).get(part, {})
            if was.get("fingerprint") == fp and _intact(previous / table, was.get("files", {})):
                kept[part] = was
        changed = [part for part in parts if part not in kept]
        if month and changed and empty:
            # No rows, so no partition: one empty file keeps the table readable (and its
            # columns known) by `read_parquet('<table>/**/*.parquet')`.
            (target / changed[0]).mkdir(parents=True)
            con.execute(
                f"COPY (SELECT * EXCLUDE ({month}) FROM {table}) "
                f"TO '{target / changed[0] / 'data_0.parquet'}' ({PARQUET_OPTIONS})"
            )
        elif month and changed:
            con.execute(
                f"COPY (SELECT * FROM {table} WHERE '{month}=' || "
                f"coalesce({month}::VARCHAR, '{HIVE_NULL}') IN (SELECT unnest(?))) "
                f"TO '{target}' ({PARQUET_OPTIONS}, PARTITION_BY ({month}))",
                [changed],
            )
        elif changed:
            target.mkdir()
            con.execute(f"COPY {table} TO '{target / 'data.parquet'}' ({PARQUET_OPTIONS})")
        target.mkdir(exist_ok=True)
        for entry in kept.values():
            for f in entry["files"]:  # type: ignore[attr-defined]
                (target / f).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(previous / table / f, target / f)
                except OSError:  # a file system without hard links
                    shutil.copy2(previous / table / f, target / f)
        state[table] = dict(kept)
        for part in changed:
            written = [target / "data.parquet"] if not month else sorted((target / part).glob("*"))
            if not written or not all(w.is_file() for w in written):
                raise RuntimeError(f"Parquet partition {table}/{part} was not written as expected")
            state[table][part] = {
                "fingerprint": parts[part],
                "files": {str(w.relative_to(target)): w.stat().st_size for w in written},
            }
    (out / PARQUET_STATE).write_text(json.dumps(state, indent=1, sort_keys=True))


def disputes_dir(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.stem + "-disputes")


def _safe(column: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @) is written as text."""
    return (
        f"CASE WHEN regexp_matches({column}, '^[=+@-]') THEN chr(39) || {column} ELSE {column} END"
    )


def _write_disputes(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """One CSV per vendor and month: the export, record IDs and credits for a ticket."""
    out.mkdir()
    months = con.sql("SELECT DISTINCT vendor, month FROM disputes ORDER BY ALL").fetchall()
    for vendor, month in months:
        target = out / f"{vendor}_{month:%Y-%m}.csv"
        con.execute(
            f"COPY (SELECT {_safe('export_or_file')} AS export_or_file, {_safe('record_ids')} "
            "AS record_ids, credits_to_reverse, cross_client_records FROM disputes "
            f"WHERE vendor = ? AND month = ? ORDER BY export_or_file) TO '{target}' (HEADER)",
            [vendor, month],
        )


def _swap_dir(new: Path, target: Path) -> None:
    """Replace a directory by another: two renames, so a reader sees the old or the new."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def data_dictionary(con: duckdb.DuckDBPyConnection) -> str:
    """Markdown, from the warehouse's own table and column comments."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from the warehouse's table and column comments.",
        "",
    ]
    tables = con.sql(
        "SELECT table_name, comment FROM duckdb_tables() "
        "WHERE database_name = current_database() ORDER BY table_name"
    ).fetchall()
    order = {t: i for i, t in enumerate(PUBLISHED)}
    for table, comment in sorted(tables, key=lambda t: order.get(t[0], len(order))):
        lines += [
            f"## {table}",
            "",
            comment or "",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        for column, dtype, text in con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall():
            lines.append(f"| `{column}` | {dtype} | {text or ''} |")
        lines.append("")
    macros = con.sql(
        "SELECT DISTINCT function_name FROM duckdb_functions() "
        "WHERE function_type = 'table_macro' AND database_name = current_database() ORDER BY 1"
    ).fetchall()
    if macros:
        lines += ["## Table macros", ""]
        lines += [
            f"- `{m}(at_time TIMESTAMP)`: see transforms/models/{MACROS[0]}" for (m,) in macros
        ]
        lines.append("")
    return "\n".join(lines)


def build(
    store: Path,
    warehouse: Path,
    params: RunParams,
    current_config: dict[str, str | None],
    parquet: bool = True,
    on_step: Callable[[str, float], None] | None = None,
) -> dict[str, int]:
    """Build every mart into a fresh file, audit it, then swap it in. Returns row counts.

    Beside it, swapped in right after the warehouse: ``<name>-disputes/`` (a CSV per
    vendor and month for support tickets) and, with ``parquet``, ``<name>-parquet/``.
    ``on_step(name, seconds)`` hears how long each step and each phase of the publish took.
    """
    clock = time.perf_counter()

    def done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if on_step:
            on_step(name, now - clock)
        clock = now

    building = warehouse.with_name(f".{warehouse.name}.building-{os.getpid()}")
    side_dirs = [parquet_dir(warehouse), disputes_dir(warehouse)]
    side_building = [d.with_name(f".{d.name}.building-{os.getpid()}") for d in side_dirs]
    for stale in warehouse.parent.glob(f".{warehouse.name}.building-*"):
        stale.unlink()  # left by a run that was killed; we hold the lock, so nobody uses it
    for stale in warehouse.parent.glob(f".{warehouse.name}.scratch-*"):
        shutil.rmtree(stale)
    for d in side_dirs:
        for stale in warehouse.parent.glob(f".{d.name}.*"):
            shutil.rmtree(stale)
    # Intermediate tables live in memory (spilling to a scratch folder past the limit), not
    # in the new file: writing them compressed to disk, only to drop them, cost more than
    # computing them. Only the published tables are copied into the file at the end.
    scratch = warehouse.with_name(f".{warehouse.name}.scratch-{os.getpid()}")
    con = duckdb.connect(config={"memory_limit": memory_limit(), "temp_directory": str(scratch)})
    try:
        con.execute(f"ATTACH '{store}' AS ingest (READ_ONLY)")
        con.execute("SET VARIABLE as_of = ?::DATE", [params.as_of])
        con.execute("SET VARIABLE cutoff = (?::DATE + INTERVAL 1 DAY)::TIMESTAMP", [params.as_of])
        con.execute(
            "SET VARIABLE reexport_window_months = ?::INTEGER", [params.reexport_window_months]
        )
        con.execute("CREATE TABLE current_config_files (source VARCHAR, file_id VARCHAR)")
        con.executemany(
            "INSERT INTO current_config_files VALUES (?, ?)",
            [[s, f] for s, f in current_config.items() if f is not None],
        )
        con.execute("CREATE TABLE vendor_rules (vendor VARCHAR, rule VARCHAR)")
        con.executemany(
            "INSERT INTO vendor_rules VALUES (?, ?)",
            [[v, header_config(v)["charging"]["rule"]] for v in VENDORS],
        )
        con.execute("CREATE TABLE sources (source VARCHAR, vendor VARCHAR, snapshot BOOLEAN)")
        con.executemany(
            "INSERT INTO sources VALUES (?, ?, ?)",
            [[s.name, s.vendor, s.snapshot] for s in SOURCES],
        )
        con.execute(
            "CREATE TEMP VIEW staged_rows AS "
            + " UNION ALL ".join(
                f"SELECT file_id, row_number, to_json(s)::VARCHAR AS raw_row "
                f"FROM ingest.stg_{s.name} s"
                for s in SOURCES
            )
        )
        done("setup")
        for name, step in STEPS:
            failpoint(f"build:step:{name}")
            try:
                if isinstance(step, str):
                    con.execute((MODELS / step).read_text())
                else:
                    step(con)
            except duckdb.Error as exc:
                raise RuntimeError(f"step {name} failed: {exc}") from exc
            for table in RELEASE_AFTER.get(name, []):
                is_view = con.execute(
                    "SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [table]
                ).fetchall()[0][0]
                con.execute(f"DROP {'VIEW' if is_view else 'TABLE'} {table}")
            done(name)
        con.execute(
            "CREATE TABLE run_info AS SELECT ?::DATE AS as_of, ? AS reporting_timezone, "
            "?::INTEGER AS reexport_window_months, ? AS inputs_fingerprint, "
            "? AS creditrecon_version",
            [
                params.as_of,
                params.reporting_timezone,
                params.reexport_window_months,
                _inputs_fingerprint(con),
                version("creditrecon"),
            ],
        )
        failures = _audits(con)
        if failures:
            raise AuditFailed("; ".join(failures))
        done("audits")
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in PUBLISHED}
        con.execute("DETACH ingest")
        failpoint("build:write")
        con.execute(f"ATTACH '{building}' AS warehouse")
        for table in PUBLISHED:
            con.execute(f"CREATE TABLE warehouse.{table} AS FROM memory.{table}")
        con.execute("USE warehouse")
        for macro in MACROS:
            con.execute((MODELS / macro).read_text())
        _describe(con)
        con.execute("USE memory")
        con.execute("DETACH warehouse")
        done("write warehouse file")
        _write_disputes(con, side_building[1])
        if parquet:
            _write_parquet(con, side_building[0], side_dirs[0])
        done("write disputes and parquet")
    except BaseException:
        con.close()
        building.unlink(missing_ok=True)
        for d in [*side_building, scratch]:
            shutil.rmtree(d, ignore_errors=True)
        raise
    con.close()
    shutil.rmtree(scratch, ignore_errors=True)
    with open(building, "rb") as f:
        os.fsync(f.fileno())
    failpoint("build:publish")
    os.replace(building, warehouse)  # atomic: readers see the old file or the new one
    for new, target in zip(side_building, side_dirs, strict=True):
        if new.exists():
            _swap_dir(new, target)
    dir_fd = os.open(warehouse.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return counts
