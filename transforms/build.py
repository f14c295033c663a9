"""Build the analysts' warehouse from the ingest store and publish it atomically.

The warehouse is built in a new file next to the published one and swapped in with one
``os.replace`` once every audit passes. A reader who has the old file open keeps reading
it undisturbed (and never blocks the swap); a crash leaves the published file as it was.
Models run in the order of ``STEPS``: read them top to bottom to follow a file from the
ingest store to a mart. A night that only appends runs the same steps on its new files and
adds their rows to a copy of the published file (transforms/incremental.py); this module
is the full rebuild, and what both share.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
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
from typing import Any

import duckdb

from schemas.inputs import SOURCES, VENDORS
from schemas.parse import header_config
from transforms import alerts, close, ledger
from transforms.config_checks import check_config
from transforms.failpoints import failpoint
from transforms.filenames import file_stems
from transforms.settings import AlertRules
from transforms.sqltext import sql_identifier, sql_string

MODELS = Path(__file__).parent / "models"


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


# (name, what it does): a .sql file in models/ or a function.
STEPS: list[tuple[str, str | Callable[[duckdb.DuckDBPyConnection], int]]] = [
    ("config", "config.sql"),  # current config, unusable rows to quarantine
    ("clients", "clients.sql"),
    ("vendors", vendor_adapters),  # each vendor's files -> records in one shape
    ("exported_records", "exported_records.sql"),  # records -> clients
    ("charges", ledger.mark_charges),  # rule 2: charged or free re-export
    ("watermarks", "watermarks.sql"),  # where the next incremental night starts
    ("lots", "lots.sql"),  # rule 1: baseline and granted lots
    ("reversals", "reversals.sql"),  # rule 5: which charges a reversal undoes
    ("lot_draws", ledger.burn_lots),  # rules 3 and 5: burn order, overage, credits given back
    ("ledger_entries", "ledger_entries.sql"),  # rule 4: forfeits; all movements
    ("late_entries", close.book_late_entries),  # rule 8: closed months keep their entries
    ("credit_lots", "credit_lots.sql"),
    ("monthly_balances", "monthly_balances.sql"),  # rule 9
    ("closed_balances", close.use_frozen_balances),  # rule 8: closed months never change
    ("forfeitures", "forfeitures.sql"),
    ("duplicate_reexports", "duplicate_reexports.sql"),  # re-exports and repeats
    ("disputes", "disputes.sql"),  # what to ask the vendor to reverse
    ("purchase_counts", "purchase_counts.sql"),
    ("purchase_quality", "purchase_quality.sql"),
    ("daily_charges", "daily_charges.sql"),
    ("vendor_reconciliation", "vendor_reconciliation.sql"),  # rule 7
    ("client_overconsumption", "client_overconsumption.sql"),  # rule 6
    ("pace_forecast", "pace_forecast.sql"),
    ("quarantine", "quarantine.sql"),  # rule 10: rows read = loaded + quarantined
    ("closed_statements", close.closed_statements),  # rule 8: statements as issued
    ("alerts", alerts.alerts_mart),  # before credits are lost: raised once per period
]

# Intermediates that no later step reads, dropped as soon as the step named has run. Each
# holds every record (about 1 GB at 10M records); past the memory limit DuckDB spills to
# disk, and at 10M records keeping them cost 30 s of a 75 s build.
RELEASE_AFTER: dict[str, list[str]] = {
    "charges": ["exported_records", "vendor_records", *(f"records_{v}" for v in VENDORS)],
    "ledger_entries": ["lot_draws", "run_draws"],
    "daily_charges": ["charges", "records_by_seq"],
}

# Steps of a full rebuild that write the ledger straight into the new file: it is the one
# published table as big as the records, and building it in memory, then copying it into
# the file, cost 2 s more at 10M records. Later steps read it through a view.
WRITTEN_IN_PLACE = ["ledger_entries", "late_entries"]

# Table macros published with the marts (created after the build's own tables are dropped).
MACROS = ["balance_at.sql"]

# Marts also written as Parquet for other tools, partitioned by this month column.
PARQUET_PARTITIONS = {
    "monthly_balances": "month",
    "ledger_entries": "booking_month",
    "forfeitures": "month",
    "credit_lots": None,
    "duplicate_reexports": "month",
    "disputes": "month",
    "daily_charges": None,
    "purchase_quality": "month",
    "vendor_reconciliation": None,
    "client_overconsumption": "month",
    "pool_overconsumption": None,
    "pace_forecast": None,
    "closed_statements": "month",
    "alerts": None,
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
    "daily_charges",
    "purchase_quality",
    "vendor_reconciliation",
    "client_overconsumption",
    "pool_overconsumption",
    "pace_forecast",
    "closed_statements",
    "alerts",
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
    published_by: str = ""  # the run that publishes (a Prefect flow run), for `status`
    alert_rules: AlertRules = AlertRules()
    run_at: dt.datetime | None = None  # UTC start of the nightly run: when its alerts are raised


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


def describe_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Table and column comments, readable from DuckDB itself (duckdb_columns())."""
    catalog = _catalog()
    for table in PUBLISHED:
        docs = catalog[table]
        con.execute(f"COMMENT ON TABLE {table} IS {sql_string(docs['_table'])}")
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        missing = [c for c in columns if c not in docs]
        if missing:
            raise AuditFailed(f"{table}: columns {missing} have no description in catalog.toml")
        for column in columns:
            con.execute(
                f"COMMENT ON COLUMN {table}.{sql_identifier(column)} IS {sql_string(docs[column])}"
            )


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


def parquet_dir(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.stem + "-parquet")


# Kept in the Parquet folder (so it is swapped in with it): each partition's fingerprint and
# files. Names starting with '_' are skipped by Parquet dataset readers.
PARQUET_STATE = "_partitions.json"
# zstd: a third of snappy's size for the same time; pyarrow, polars, pandas and Spark all
# read it. Level 1, not DuckDB's default 3: the ledger at 10M records was both faster to
# write (3.9 s, not 4.3) and smaller (43 MB, not 50; snappy: 151 MB).
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # DuckDB's folder name for a NULL partition value


def _in_partitions(month: str, parts: list[str]) -> tuple[str, list[object]]:
    """A filter for the rows of the partition folders ``parts`` (``<month>=<date>``), on the
    DATE column itself: building each row's folder name to compare it cost seconds at 50M."""
    dates = [p.split("=", 1)[1] for p in parts]
    return (
        f"({month} IN (SELECT unnest(?::DATE[])) OR ({month} IS NULL AND ?))",
        [[d for d in dates if d != HIVE_NULL], HIVE_NULL in dates],
    )


def _partition_fingerprints(
    con: duckdb.DuckDBPyConnection, table: str, month: str | None, only: set[str] | None = None
) -> tuple[dict[str, str], bool]:
    """({partition folder ('' when not partitioned): fingerprint of its rows, schema and
    Parquet options}, whether it found no rows), over the partitions ``only`` names if
    given. Two 64-bit sums of row hashes plus the count: a changed row changes it."""
    schema = con.sql(
        f"SELECT string_agg(column_name || ' ' || column_type, ',') FROM (DESCRIBE {table})"
    ).fetchall()[0][0]
    folder = (
        f"CASE WHEN {month} IS NULL THEN '{HIVE_NULL}' ELSE {month}::VARCHAR END" if month else "''"
    )
    where = ""
    params: list[object] = []
    if only is not None and month:
        where, params = _in_partitions(month, sorted(only))
        where = "WHERE " + where
    rows = con.execute(
        f"SELECT {folder}, count(*), bit_xor(hash(_row)), sum(hash(_row)::HUGEINT) "
        f"FROM {table} _row {where} GROUP BY ALL",
        params,
    ).fetchall()
    empty = not rows
    if empty and only is None:  # an empty table is one empty file (see _write_parquet)
        rows = [(HIVE_NULL if month else "", 0, 0, 0)]
    prefix = f"{PARQUET_OPTIONS}|{schema}"
    fingerprints = {
        (f"{month}={part}" if month else ""): hashlib.sha256(
            f"{prefix}|{n}|{xor}|{total}".encode()
        ).hexdigest()
        for part, n, xor, total in rows
    }
    return fingerprints, empty


def _clustered(con: duckdb.DuckDBPyConnection, table: str, month: str, months: int) -> bool:
    """Whether ``table``'s rows come month by month: then a filter on the month reads little
    more than that month's row groups. Counted as runs of one month in the table's order (a
    streaming pass over one column): with at most two a row group, the COPYs of all months
    read the table about three times over, which costs less than partitioning it (reading
    the 10M-entry ledger: 0.5 s). The ledger is built in charge order (about 90 runs in its
    80 row groups at 10M records), and a night or a late month adds a run or two at its end;
    rows in no order would make millions."""
    rows, runs = con.sql(
        f"SELECT count(*), count(*) FILTER (WHERE m IS DISTINCT FROM p OR n = 1) "
        f"FROM (SELECT {month} AS m, lag({month}) OVER () AS p, row_number() OVER () AS n "
        f"FROM {table})"
    ).fetchall()[0]
    row_groups = rows // 122_880 + 1  # DuckDB's row group size
    return bool(runs <= 2 * row_groups + months)


def _intact(folder: Path, files: dict[str, int]) -> bool:
    """The files a partition was written as are all still there, at their sizes."""
    return bool(files) and all(
        (folder / f).is_file() and (folder / f).stat().st_size == size for f, size in files.items()
    )


def _write_parquet(
    con: duckdb.DuckDBPyConnection, out: Path, previous: Path, changed: dict[str, set[str]]
) -> None:
    """Every table of PARQUET_PARTITIONS as Parquet under ``out``. A partition whose rows are
    those of the ``previous`` folder's (same fingerprint, files intact) is hard-linked from
    it, not written again: a night touches a month or two, the history stays as it was.
    ``changed`` names, for some tables, the only partitions that can differ from the previous
    folder's (an incremental night knows): the others are linked without being hashed."""
    try:
        old = json.loads((previous / PARQUET_STATE).read_text())
    except (OSError, ValueError):
        old = {}
    if not isinstance(old, dict):
        old = {}
    state: dict[str, dict[str, dict[str, object]]] = {}
    out.mkdir()
    # A partitioned COPY buffers each partition's rows before writing them; DuckDB's default
    # of 524,288 rows a partition made the ledger's copy a fifth slower (10M records: 6.4 s,
    # not 5.2) than smaller, more frequent flushes, which still give row groups of ~85k rows.
    con.execute("SET partitioned_write_flush_threshold = 50000")
    for table, month in PARQUET_PARTITIONS.items():
        target = out / table
        kept: dict[str, dict[str, Any]] = {}
        was_parts: dict[str, dict[str, Any]] = old.get(table, {})
        only = changed.get(table) if month else None
        if only is not None:
            only = only | {f"{month}={HIVE_NULL}"}  # never carry an empty table's marker
            carried = {p: e for p, e in was_parts.items() if p not in only}
            if was_parts and all(
                _intact(previous / table, e.get("files", {})) for e in carried.values()
            ):
                kept.update(carried)
            else:
                only = None
        parts, empty = _partition_fingerprints(con, table, month, only)
        if only is not None and not parts and not kept:  # the table is empty after all
            parts, empty = _partition_fingerprints(con, table, month)
        for part, fp in parts.items():
            was = was_parts.get(part, {})
            if was.get("fingerprint") == fp and _intact(previous / table, was.get("files", {})):
                kept[part] = was
        to_write = [part for part in parts if part not in kept]
        if month and to_write and empty:
            # No rows, so no partition: one empty file keeps the table readable (and its
            # columns known) by `read_parquet('<table>/**/*.parquet')`.
            (target / to_write[0]).mkdir(parents=True)
            con.execute(
                f"COPY (SELECT * EXCLUDE ({month}) FROM {table}) TO ? ({PARQUET_OPTIONS})",
                [str(target / to_write[0] / "data_0.parquet")],
            )
        elif month and to_write and _clustered(con, table, month, len(to_write)):
            # A COPY per month, each reading only the row groups that hold the month: a
            # fifth faster than one partitioned COPY (10M-entry ledger: 5.3 s, not 6.4).
            for part in to_write:
                value = part.split("=", 1)[1]
                (target / part).mkdir(parents=True)
                con.execute(
                    f"COPY (SELECT * EXCLUDE ({month}) FROM {table} WHERE "
                    + (f"{month} IS NULL" if value == HIVE_NULL else f"{month} = ?::DATE")
                    + f") TO ? ({PARQUET_OPTIONS})",
                    [
                        *([] if value == HIVE_NULL else [value]),
                        str(target / part / "data_0.parquet"),
                    ],
                )
        elif month and to_write:
            # One COPY for the months to write, unfiltered when it is every month (a filter
            # cost a third more on the ledger): a month's rows are spread over the table,
            # so a COPY per month would decompress all of it for each month.
            where, params = _in_partitions(month, to_write) if kept else ("true", [])
            con.execute(
                f"COPY (SELECT * FROM {table} WHERE {where}) "
                f"TO ? ({PARQUET_OPTIONS}, PARTITION_BY ({month}))",
                [*params, str(target)],
            )
        elif to_write:
            target.mkdir()
            con.execute(f"COPY {table} TO ? ({PARQUET_OPTIONS})", [str(target / "data.parquet")])
        target.mkdir(exist_ok=True)
        for entry in kept.values():
            for f in entry["files"]:  # type: ignore[attr-defined]
                (target / f).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(previous / table / f, target / f)
                except OSError:  # a file system without hard links
                    shutil.copy2(previous / table / f, target / f)
        state[table] = dict(kept)
        for part in to_write:
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
    stems = file_stems(v for v, _ in months)
    for vendor, month in months:
        target = out / f"{stems[vendor]}_{month:%Y-%m}.csv"
        con.execute(
            f"COPY (SELECT {_safe('export_or_file')} AS export_or_file, {_safe('record_ids')} "
            "AS record_ids, credits_to_reverse, cross_client_records FROM disputes "
            "WHERE vendor = ? AND month = ? ORDER BY export_or_file) TO ? (HEADER)",
            [vendor, month, str(target)],
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


@dataclass
class Workspace:
    """A build's paths: the new warehouse file and side folders, written beside the
    published ones and swapped in at the end; a scratch folder for DuckDB's spills."""

    warehouse: Path

    def __post_init__(self) -> None:
        pid = os.getpid()
        w = self.warehouse
        self.building = w.with_name(f".{w.name}.building-{pid}")
        self.scratch = w.with_name(f".{w.name}.scratch-{pid}")
        self.side_dirs = [parquet_dir(w), disputes_dir(w)]
        self.side_building = [d.with_name(f".{d.name}.building-{pid}") for d in self.side_dirs]

    def clear_stale(self) -> None:
        """Remove what a killed run left; we hold the lock, so nobody uses it."""
        w = self.warehouse
        for stale in w.parent.glob(f".{w.name}.building-*"):
            stale.unlink()
        for stale in w.parent.glob(f".{w.name}.scratch-*"):
            shutil.rmtree(stale)
        for d in self.side_dirs:
            for stale in w.parent.glob(f".{d.name}.*"):
                shutil.rmtree(stale)

    @property
    def published_stamp(self) -> Path:
        """Size, inode and modification time of the file as published (see publish())."""
        w = self.warehouse
        return w.with_name(f".{w.name}.published")

    def _stamp(self) -> str:
        s = self.warehouse.stat()
        return f"{s.st_size} {s.st_ino} {s.st_mtime_ns}"

    def changed_since_published(self) -> str | None:
        """Why the published file may not be the one our last publish wrote, or None. (An
        analyst can open it read-write and change it; an incremental night must not build
        on that.)"""
        try:
            stamp = self.published_stamp.read_text()
        except OSError:
            return "the published file has no record of being published by this version"
        if stamp != self._stamp():
            return "the published file was changed after it was published"
        return None

    def discard(self) -> None:
        self.building.unlink(missing_ok=True)
        for d in [*self.side_building, self.scratch]:
            shutil.rmtree(d, ignore_errors=True)

    @contextlib.contextmanager
    def publishing(self, con: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """Build inside the block; when it ends, close ``con`` and publish. On any error,
        close it and discard what was written: the published files stay as they were."""
        try:
            yield
        except BaseException:
            con.close()
            self.discard()
            raise
        con.close()
        self.publish()

    def publish(self) -> None:
        """Swap the new file in (atomic: readers see the old file or the new one), then
        the side folders."""
        shutil.rmtree(self.scratch, ignore_errors=True)
        with open(self.building, "rb") as f:
            os.fsync(f.fileno())
        failpoint("build:publish")
        self.published_stamp.unlink(missing_ok=True)
        os.replace(self.building, self.warehouse)
        self.published_stamp.write_text(self._stamp())
        for new, target in zip(self.side_building, self.side_dirs, strict=True):
            if new.exists():
                _swap_dir(new, target)
        dir_fd = os.open(self.warehouse.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


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


def run_step(
    con: duckdb.DuckDBPyConnection,
    name: str,
    step: str | Callable[[duckdb.DuckDBPyConnection], int],
) -> None:
    """One step of STEPS, then drop what no later step reads."""
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
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in PUBLISHED}


def write_side_dirs(
    con: duckdb.DuckDBPyConnection,
    work: Workspace,
    parquet: bool,
    changed: dict[str, set[str]] | None = None,
) -> None:
    _write_disputes(con, work.side_building[1])
    if parquet:
        _write_parquet(con, work.side_building[0], work.side_dirs[0], changed or {})


def build(
    store: Path,
    warehouse: Path,
    params: RunParams,
    current_config: dict[str, str | None],
    parquet: bool = True,
    on_step: Callable[[str, float], None] | None = None,
    incremental: bool = True,
    on_note: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Build every mart into a fresh file, audit it, then swap it in. Returns row counts.

    With ``incremental``, a night that only adds files after what the published warehouse
    already holds is added to it (transforms/incremental.py); any other night, or when
    that is not possible, is a full rebuild. ``on_note`` hears which, and why.
    Beside it, swapped in right after the warehouse: ``<name>-disputes/`` (a CSV per
    vendor and month for support tickets) and, with ``parquet``, ``<name>-parquet/``.
    ``on_step(name, seconds)`` hears how long each step and each phase of the publish took.
    """
    from transforms import incremental as night  # it builds on this module

    check_config(store, current_config)
    reason = "asked for"
    if incremental:
        try:
            counts, how = night.build_night(
                store, warehouse, params, current_config, parquet, on_step
            )
        except night.NotIncremental as exc:
            reason = str(exc)
        except AuditFailed as exc:
            # Something the night's checks did not foresee: the full rebuild is the reference
            # (and fails the same way if the data itself breaks a rule).
            reason = f"the incremental result failed an audit ({exc})"
        else:
            if on_note:
                on_note(how)
            return counts
    if on_note:
        on_note(f"full rebuild: {reason}")
    return full_rebuild(store, warehouse, params, current_config, parquet, on_step, reason)


def full_rebuild(
    store: Path,
    warehouse: Path,
    params: RunParams,
    current_config: dict[str, str | None],
    parquet: bool,
    on_step: Callable[[str, float], None] | None,
    reason: str,
) -> dict[str, int]:
    """Every mart from every staged row, into a new file swapped in once audited."""
    clock = Clock(on_step)
    work = Workspace(warehouse)
    work.clear_stale()
    con = connect(store, work, params, current_config)
    with work.publishing(con):
        con.execute("ATTACH ? AS warehouse", [str(work.building)])
        clock.done("setup")
        for name, step in STEPS:
            if name in WRITTEN_IN_PLACE:
                # Created in the new file; the build's own tables are still found.
                con.execute("USE warehouse")
                con.execute("SET search_path = 'warehouse.main,memory.main'")
            run_step(con, name, step)
            if name in WRITTEN_IN_PLACE:
                con.execute("USE memory")
            if name == WRITTEN_IN_PLACE[-1]:
                con.execute("CREATE VIEW ledger_entries AS FROM warehouse.ledger_entries")
            clock.done(name)
        counts = finish(con, params, current_config, f"full rebuild: {reason}")
        clock.done("audits")
        con.execute("DETACH ingest")
        failpoint("build:write")
        for table in PUBLISHED:
            if table != "ledger_entries":
                con.execute(f"CREATE TABLE warehouse.{table} AS FROM memory.{table}")
        con.execute("USE warehouse")
        for macro in MACROS:
            con.execute((MODELS / macro).read_text())
        describe_tables(con)
        con.execute("USE memory")
        con.execute("CHECKPOINT warehouse")
        clock.done("write warehouse file")
        write_side_dirs(con, work, parquet)
        con.execute("DROP VIEW ledger_entries")
        con.execute("DETACH warehouse")
        clock.done("write disputes and parquet")
    return counts
