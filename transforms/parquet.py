"""The published marts as Parquet for other tools, a folder per table, partitioned by the
month column the model declares (transforms/models/<area>/<name>.toml ``partition``).
A partition whose rows did not change is hard-linked from the previous folder, not
written again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb

from transforms.runner import models


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


def write_parquet(
    con: duckdb.DuckDBPyConnection, out: Path, previous: Path, changed: dict[str, set[str]]
) -> None:
    """Every published table with a Parquet copy, under ``out``. A partition whose rows are
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
    for table, month in models().parquet().items():
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
