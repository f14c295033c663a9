"""Inbox -> ingest store: every row of every input file is staged or quarantined.

The ingest store is a DuckDB file private to the pipeline (analysts never open it), so
ingest never waits on a reader. New files of one source and header layout are staged in
batches (one validation for many small files); a batch's rows, quarantine rows and
manifest rows go in one transaction, so a crash leaves each file fully ingested or not at
all. A file is known by its content hash, so the same bytes under a new name are recorded
as a duplicate and not loaded twice.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import errno
import fnmatch
import hashlib
import io
import os
import re
import stat
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from schemas.inputs import SOURCES, Source
from schemas.parse import ROW, FileRejected, fields_of, map_headers, parse_and_validate
from transforms.config_errors import ConfigError
from transforms.failpoints import failpoint
from transforms.sqltext import sql_identifier

DUCKDB_TYPES = {
    pl.String: "VARCHAR",
    pl.Int64: "BIGINT",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
}

MANIFEST_DDL = """
CREATE TABLE IF NOT EXISTS ingest_files (
    file_id VARCHAR NOT NULL,          -- 16 hex digits naming the content, per source
    source VARCHAR NOT NULL,
    vendor VARCHAR NOT NULL,
    path VARCHAR NOT NULL,             -- relative to the data folder
    content_hash VARCHAR NOT NULL,     -- sha256 of the bytes
    size_bytes BIGINT NOT NULL,
    status VARCHAR NOT NULL,           -- loaded | duplicate | rejected
    duplicate_of VARCHAR,              -- path of the file first loaded with these bytes
    encoding VARCHAR,
    delimiter VARCHAR,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    error VARCHAR,                     -- why a whole file was rejected
    ingested_at TIMESTAMP NOT NULL,    -- UTC
    PRIMARY KEY (path, content_hash)
);
CREATE TABLE IF NOT EXISTS ingest_quarantine (
    file_id VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,        -- spreadsheet row number: the header is row 1
    raw_row VARCHAR,
    reason VARCHAR NOT NULL
);
"""

FILE = "_file"  # position of a row's file in its batch
ROWS_PER_FILE = 1 << 32  # ROW = FILE * ROWS_PER_FILE + row number: unique in a batch

REJECT_REASONS = {
    "MISSING COLUMNS": "row has fewer columns than the header (cut short?)",
    "TOO MANY COLUMNS": "row has more columns than the header (a stray delimiter?)",
    "UNQUOTED VALUE": "a quote is opened and never closed; the rest of the file is in this row",
    "INVALID ENCODING": "text is not valid in the file's encoding",
    "LINE SIZE OVER MAXIMUM": "row is longer than 2 MB",
    "INVALID STATE": "row cannot be parsed as CSV",
    "CAST": "value cannot be read",
}


@dataclass
class FileResult:
    path: str
    source: str
    status: str  # loaded | duplicate | rejected | unchanged
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    file_id: str = ""
    note: str = ""


@dataclass
class IngestResult:
    files: list[FileResult] = field(default_factory=list)
    # For snapshot sources (config), the file_id of the file present now; None if absent.
    current_config: dict[str, str | None] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)


def ingest_store_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.stem + ".ingest.duckdb")


def staging_columns(source: Source) -> list[tuple[str, str]]:
    schema = source.model.to_schema().columns
    out = []
    for f in fields_of(source.model):
        dtype = schema[f.name].dtype.type
        out.append((f.name, "TIMESTAMP" if isinstance(dtype, pl.Datetime) else DUCKDB_TYPES[dtype]))
    return out


def staging_ddl(source: Source) -> str:
    cols = ["file_id VARCHAR NOT NULL", "row_number BIGINT NOT NULL"]
    cols += [f"{name} {sql_type}" for name, sql_type in staging_columns(source)]
    return f"CREATE TABLE IF NOT EXISTS stg_{source.name} ({', '.join(cols)})"


def open_store(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(MANIFEST_DDL)
    # The file's modification time (ns) when last seen: a file whose path, size and time
    # are unchanged is not read and hashed again. Added after the first stores were made.
    con.execute("ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS modified_ns BIGINT")
    # Its modification time when first ingested, never updated: when it was delivered (a
    # re-delivered listing is ranked by it, and touching a file later must not re-rank it).
    con.execute("ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS delivered_ns BIGINT")
    for s in SOURCES:
        con.execute(staging_ddl(s))
        # A store made before a model gained a column (a time's UTC offset) gets it empty.
        for column, sql_type in staging_columns(s):
            con.execute(f"ALTER TABLE stg_{s.name} ADD COLUMN IF NOT EXISTS {column} {sql_type}")
        # A store made when a model listed more columns (the contact details of an export)
        # keeps only what the model reads now.
        wanted = {"file_id", "row_number", *(f.name for f in fields_of(s.model))}
        for (column,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND NOT "
            "list_contains(?, column_name)",
            [f"stg_{s.name}", sorted(wanted)],
        ).fetchall():
            con.execute(f"ALTER TABLE stg_{s.name} DROP COLUMN {sql_identifier(column)}")
    return con


# --- reading one file ----------------------------------------------------------------------


@dataclass
class Fingerprint:
    content_hash: str
    size: int
    encoding: str  # utf-8 | utf-8-sig | utf-16 | cp1252 | latin-1 ('' for a refused file)
    modified_ns: int | None = None


class NotARegularFile(Exception):
    """A path of the inbox or config that is not a regular file: it is never opened."""


def what_it_is(mode: int) -> str | None:
    """None for a regular file, else what the path is, in words."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path) -> io.BufferedReader:
    """Open a file for reading only if it is a regular file itself: never through a link
    (O_NOFOLLOW), and a named pipe swapped in after the listing cannot block the open
    (O_NONBLOCK) before fstat refuses it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the path is a symbolic link
            raise NotARegularFile("a symbolic link") from None
        raise
    kind = what_it_is(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise NotARegularFile(kind)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def fingerprint(path: Path) -> Fingerprint:
    """Hash and check the encoding in one streaming pass (export files can be GBs)."""
    h = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf16 = codecs.getincrementaldecoder("utf-16")()
    is_utf8 = is_utf16 = True
    size, first = 0, b""
    with open_regular(path) as f:
        modified_ns = os.fstat(f.fileno()).st_mtime_ns
        while chunk := f.read(1 << 20):
            if not first:
                first = chunk[:4]
                # UTF-16 only with its byte order mark (Excel's "Unicode text" has one).
                is_utf16 = first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            h.update(chunk)
            size += len(chunk)
            # ASCII is UTF-8 (when no character is left half-read): ten times faster to check.
            if is_utf8 and not (chunk.isascii() and not utf8.getstate()[0]):
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
            if is_utf16:
                try:
                    utf16.decode(chunk)
                except UnicodeDecodeError:
                    is_utf16 = False
    if is_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    if is_utf16:
        try:
            utf16.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf16 = False
    if is_utf16:
        encoding = "utf-16"
    elif is_utf8:
        encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
    else:
        # Excel on Windows saves "CSV" as cp1252; bytes cp1252 leaves undefined are latin-1.
        try:
            with open_regular(path) as f:
                f.read().decode("cp1252")
            encoding = "cp1252"
        except UnicodeDecodeError:
            encoding = "latin-1"
    return Fingerprint(h.hexdigest(), size, encoding, modified_ns)


def _fingerprint_or_refused(path: Path) -> Fingerprint | str:
    """The file's fingerprint, or what it is if it is no longer a regular file."""
    try:
        return fingerprint(path)
    except NotARegularFile as exc:
        return str(exc)


def _head(path: Path, size: int = 4096) -> bytes:
    with open_regular(path) as f:
        return f.read(size)


# The first bytes of files people save with a .csv name that are not text.
MAGIC = [
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
]


def not_text(head: bytes, encoding: str) -> str | None:
    """Why a file is not CSV text (a workbook, an archive, other binary), or None."""
    if encoding == "utf-16":
        return None
    for magic, what in MAGIC:
        if head.startswith(magic):
            if what.startswith("a zip") and b"xl/" in head:
                what = "an Excel workbook (.xlsx)"
            return f"file is {what}, not CSV text; save it from the vendor or Excel as CSV"
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    # Text has none (a stray NUL in an ID is that row's problem, not the file's).
    if head and control > len(head) // 10:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        # ASCII text as UTF-16: every other byte NUL, the bytes between them not
        if max(even, odd) > len(head) // 4 and min(even, odd) < len(head) // 40:
            return (
                "file looks like UTF-16 text without a byte order mark, which cannot be told "
                "apart from binary; save it as CSV UTF-8"
            )
        return (
            f"file is binary, not CSV text ({control} of its first {len(head)} bytes are "
            "control characters); save it as CSV"
        )
    return None


def file_id_of(source: Source, fp: Fingerprint) -> str:
    """Stable id of a file's content as one source (the same bytes are never loaded twice)."""
    return hashlib.sha256(f"{source.name}:{fp.content_hash}".encode()).hexdigest()[:16]


def _utf8_copy(path: Path, encoding: str, tmpdir: Path) -> Path:
    out = tmpdir / (path.name + ".utf8")
    with (
        io.TextIOWrapper(open_regular(path), encoding=encoding, newline="") as src,
        open(out, "w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return out


def _header(path: Path) -> tuple[list[str], str]:
    """The header row and the delimiter (',', ';', tab or '|': whichever splits it most)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
    best = max([",", ";", "\t", "|"], key=lambda d: len(next(csv.reader([first], delimiter=d))))
    headers = next(csv.reader(io.StringIO(first), delimiter=best), [])
    return [h.replace("\ufeff", "") for h in headers], best


def read_rows(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    headers: list[str],
    delimiter: str,
    keep: list[int] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[int, str]]:
    """All rows of files sharing one header layout, as text.

    Returns the rows (columns cK for each position K in ``keep``, every column if None,
    FILE = position of the file in ``paths`` and row_number = spreadsheet row number, the
    header being row 1) and the rows DuckDB could not split into the header's columns
    (FILE, row_number, raw_row, reason), and why, for a file DuckDB could not read at all
    (by position; its lines are all rejects). ``con`` is a scratch in-memory connection.
    Every line is still split into all of the header's columns, so a row with too few or
    too many is rejected whichever columns are kept.
    """
    con.execute("DROP TABLE IF EXISTS rejects; DROP TABLE IF EXISTS reject_scans")
    columns = {f"c{i}": "VARCHAR" for i in range(len(headers))}
    kept = [f"c{i}" for i in (range(len(headers)) if keep is None else keep)]
    # A real export has 80+ columns and the rules read two or three: the others are not
    # turned into values at all (DuckDB's scan skips the columns a query does not select).
    select = ", ".join(f'"{c}"' for c in kept) or "NULL AS _none"
    position = {str(p): i for i, p in enumerate(paths)}
    # One scan per file, never one scan over many: DuckDB 2.0.1 reading several files in
    # one read_csv can drop rows of a malformed file without reporting them as rejected.
    # The rejects of every scan gather in the same table, read once below.
    parts = []
    unreadable: dict[int, str] = {}
    broken = []
    for i, path in enumerate(paths):
        try:
            table = con.sql(
                f"SELECT {select} FROM read_csv($path, auto_detect=false, header=true, "
                "delim=$delim, "
                "quote='\"', escape='\"', columns=$columns, store_rejects=true, "
                "ignore_errors=true, strict_mode=true, max_line_size=2000000, "
                "rejects_table='rejects')",
                params={"path": str(path), "delim": delimiter, "columns": columns},
            ).to_arrow_table()
        except duckdb.Error as exc:
            # The parser gave up on the whole file (e.g. line endings that change midway):
            # every line after the header is quarantined as it is, with DuckDB's reason.
            reason = str(exc).split("\n")[0].removeprefix("Invalid Input Error: ")
            unreadable[i] = f"file cannot be read as CSV ({reason})"
            lines = Path(path).read_text(encoding="utf-8-sig").splitlines()[1:]
            broken.append(
                pl.DataFrame({"raw_row": lines}, schema={"raw_row": pl.String}).select(
                    pl.lit(i, dtype=pl.Int64).alias(FILE),
                    (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias("row_number"),
                    "raw_row",
                    pl.lit(unreadable[i]).alias("reason"),
                )
            )
            continue
        part = pl.from_arrow(table)
        assert isinstance(part, pl.DataFrame)
        # _k: the row's place among the file's accepted rows (numbered here, per file, not
        # by a window over the whole batch).
        parts.append(
            part.select(
                *kept,
                pl.lit(i, dtype=pl.Int64).alias(FILE),
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_k"),
            )
        )
    empty = pl.DataFrame(schema={**{c: pl.String for c in kept}, FILE: pl.Int64, "_k": pl.Int64})
    rows = pl.concat([empty, *parts], rechunk=False)
    if parts:  # the rejects tables exist once a scan has run to the end
        rejects = con.sql(
            # DuckDB reports a short row once per missing column: one row, one reason.
            "SELECT s.file_path AS _path, r.line::BIGINT AS row_number, "
            "first(r.csv_line ORDER BY r.column_idx) AS raw_row, "
            "first(r.error_type::VARCHAR ORDER BY r.column_idx) AS error "
            "FROM rejects r JOIN reject_scans s USING (scan_id, file_id) "
            "GROUP BY ALL ORDER BY ALL"
        ).pl()
    else:
        rejects = pl.DataFrame(
            schema={
                "_path": pl.String,
                "row_number": pl.Int64,
                "raw_row": pl.String,
                "error": pl.String,
            }
        )
    rejects = rejects.select(
        pl.col("_path").replace_strict(position, return_dtype=pl.Int64).alias(FILE),
        "row_number",
        "raw_row",
        pl.col("error")
        .replace_strict(REJECT_REASONS, default="row cannot be parsed as CSV")
        .alias("reason"),
    )
    rejects = pl.concat([rejects, *broken])
    # DuckDB numbers records (not physical lines) from the header = 1, as a spreadsheet does.
    # Accepted rows keep file order, so a file's k-th accepted row has its k-th number that
    # was not rejected.
    if rejects.height:
        totals = (
            pl.concat([rows.select(FILE), rejects.select(FILE)])
            .group_by(FILE)
            .len()
            .select(FILE, pl.int_ranges(2, pl.col("len") + 2).alias("row_number"))
            .explode("row_number")
            .join(rejects.select(FILE, "row_number"), on=[FILE, "row_number"], how="anti")
            .sort(FILE, "row_number")
            .with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over(FILE).alias("_k"))
        )
        rows = rows.join(totals, on=[FILE, "_k"], how="left", maintain_order="left")
    else:
        rows = rows.with_columns((pl.col("_k") + 2).alias("row_number"))
    return rows.drop("_k"), rejects, unreadable


def _raw_json(rows: pl.DataFrame, headers: list[str], positions: list[int]) -> pl.Expr:
    seen: dict[str, int] = {}
    parts = []
    for i in positions:
        name = headers[i] or f"column {i + 1}"
        seen[name] = seen.get(name, 0) + 1
        alias = name if seen[name] == 1 else f"{name} ({seen[name]})"
        parts.append(pl.col(f"c{i}").alias(alias))
    return pl.struct(parts).struct.json_encode() if parts else pl.lit("{}")


@dataclass
class NewFile:
    """A file not seen before, ready to stage."""

    source: Source
    path: Path
    rel_path: str
    fp: Fingerprint
    readable: Path | None = None  # UTF-8 text of the file (a converted copy if need be)
    headers: tuple[str, ...] = ()
    delimiter: str | None = None
    error: str | None = None  # why the whole file is rejected

    @property
    def file_id(self) -> str:
        return file_id_of(self.source, self.fp)

    def result(self, status: str, note: str = "") -> FileResult:
        return FileResult(self.rel_path, self.source.name, status, file_id=self.file_id, note=note)


def _manifest_row(
    f: NewFile,
    result: FileResult,
    now: dt.datetime,
    duplicate_of: str | None = None,
) -> dict[str, object]:
    return {
        "file_id": result.file_id,
        "source": f.source.name,
        "vendor": f.source.vendor,
        "path": result.path,
        "content_hash": f.fp.content_hash,
        "size_bytes": f.fp.size,
        "status": result.status,
        "duplicate_of": duplicate_of,
        "encoding": f.fp.encoding or None,
        "delimiter": f.delimiter,
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "error": f.error,
        "ingested_at": now,
        "modified_ns": f.fp.modified_ns,
        "delivered_ns": f.fp.modified_ns,
    }


MANIFEST_SCHEMA = pl.Schema(
    {
        "file_id": pl.String(),
        "source": pl.String(),
        "vendor": pl.String(),
        "path": pl.String(),
        "content_hash": pl.String(),
        "size_bytes": pl.Int64(),
        "status": pl.String(),
        "duplicate_of": pl.String(),
        "encoding": pl.String(),
        "delimiter": pl.String(),
        "rows_read": pl.Int64(),
        "rows_loaded": pl.Int64(),
        "rows_quarantined": pl.Int64(),
        "error": pl.String(),
        "ingested_at": pl.Datetime("us"),
        "modified_ns": pl.Int64(),
        "delivered_ns": pl.Int64(),
    }
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def commit(
    con: duckdb.DuckDBPyConnection,
    source: Source | None,
    staged: pl.DataFrame | None,
    quarantine: pl.DataFrame | None,
    manifest: list[dict[str, object]],
) -> None:
    """Staged rows, quarantine rows and manifest rows of a batch: all or nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        if source is not None and staged is not None and staged.height:
            cols = ", ".join(staged.columns)
            con.register("staged_df", staged)
            con.execute(f"INSERT INTO stg_{source.name} ({cols}) SELECT {cols} FROM staged_df")
            con.unregister("staged_df")
        if quarantine is not None and quarantine.height:
            con.register("quarantine_df", quarantine)
            con.execute(
                "INSERT INTO ingest_quarantine "
                "SELECT file_id, row_number, raw_row, reason FROM quarantine_df"
            )
            con.unregister("quarantine_df")
        failpoint("ingest:in-transaction")
        if manifest:
            con.register("manifest_df", pl.DataFrame(manifest, schema=MANIFEST_SCHEMA))
            cols = ", ".join(MANIFEST_SCHEMA)
            con.execute(f"INSERT INTO ingest_files ({cols}) SELECT {cols} FROM manifest_df")
            con.unregister("manifest_df")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@dataclass
class StagedBatch:
    """A batch read and validated, ready to be written in one transaction."""

    results: list[FileResult]
    source: Source
    staged: pl.DataFrame | None
    quarantine: pl.DataFrame
    manifest: list[dict[str, object]]

    def write(self, con: duckdb.DuckDBPyConnection) -> list[FileResult]:
        commit(con, self.source, self.staged, self.quarantine, self.manifest)
        return self.results


def stage_batch(reader: duckdb.DuckDBPyConnection, batch: list[NewFile]) -> StagedBatch:
    """Read and validate files of one source and one header layout together."""
    source, headers, delimiter = batch[0].source, list(batch[0].headers), batch[0].delimiter
    assert delimiter is not None
    error = None
    try:
        columns = map_headers(source, headers)
    except FileRejected as exc:
        error = str(exc)
    # Only the columns the model maps are read; a rejected file's rows are kept whole.
    used = None if error else sorted(columns.values())
    rows, rejects, unreadable = read_rows(
        reader, [f.readable or f.path for f in batch], headers, delimiter, used
    )
    quarantine = [rejects.select(FILE, "row_number", "raw_row", "reason")]
    staged = None
    if error:
        quarantine.append(
            rows.select(
                FILE,
                "row_number",
                _raw_json(rows, headers, list(range(len(headers)))).alias("raw_row"),
                pl.lit(f"file rejected: {error}").alias("reason"),
            )
        )
    else:
        # ROW must be unique across the batch: file position and row number in one integer.
        rows = rows.with_columns((pl.col(FILE) * ROWS_PER_FILE + pl.col("row_number")).alias(ROW))
        parsed = parse_and_validate(source, rows, columns, headers)
        assert used is not None
        quarantine.append(
            rows.join(parsed.rejected, on=ROW).select(
                FILE, "row_number", _raw_json(rows, headers, used).alias("raw_row"), "reason"
            )
        )
        staged = parsed.loaded.select(
            (pl.col(ROW) // ROWS_PER_FILE).alias(FILE),
            (pl.col(ROW) % ROWS_PER_FILE).alias("row_number"),
            pl.exclude(ROW),
        )
    ids = {i: f.file_id for i, f in enumerate(batch)}

    def with_file_id(frame: pl.DataFrame) -> pl.DataFrame:
        file_id = pl.col(FILE).replace_strict(ids, return_dtype=pl.String).alias("file_id")
        return frame.select(file_id, pl.exclude(FILE))

    bad = pl.concat(quarantine).sort(FILE, "row_number")
    read = pl.concat([rows.select(FILE), rejects.select(FILE)]).get_column(FILE).value_counts()
    counts = {
        "read": dict(read.iter_rows()),
        "loaded": dict(staged.get_column(FILE).value_counts().iter_rows())
        if staged is not None
        else {},
        "quarantined": dict(bad.get_column(FILE).value_counts().iter_rows()),
    }
    now = _now()
    results, manifest = [], []
    for i, f in enumerate(batch):
        f.error = error or unreadable.get(i)
        r = f.result("rejected" if f.error else "loaded", note=f.error or "")
        r.rows_read = counts["read"].get(i, 0)
        r.rows_loaded = counts["loaded"].get(i, 0)
        r.rows_quarantined = counts["quarantined"].get(i, 0)
        results.append(r)
        manifest.append(_manifest_row(f, r, now))
    return StagedBatch(
        results,
        source,
        with_file_id(staged) if staged is not None else None,
        with_file_id(bad),
        manifest,
    )


# --- the inbox -----------------------------------------------------------------------------


def _arrival_order(path: Path) -> tuple[str, int, str]:
    """Sort 'x.csv' before its copies 'x (1).csv' and 'x - Copy.csv', so that a copy is the
    one called duplicate when both arrive the same night."""
    base = re.sub(r"( \(\d+\)| - Copy( \(\d+\))?)(?=\.[^.]*$)", "", path.name)
    return (base, len(path.name), path.name)


REFUSED = "only regular files inside the data folder are read"


@dataclass(frozen=True)
class Refused:
    """An inbox path that is not a regular file in the data folder: recorded, never opened."""

    source: Source
    path: Path
    reason: str


def _folder_problem(data: Path, folder: Path) -> tuple[Path, str] | None:
    """The first part of ``folder`` (below ``data``) that is not a real directory, and what
    it is: a linked folder would let the inbox reach anywhere."""
    here = data
    for part in folder.relative_to(data).parts:
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(mode):
            return here, what_it_is(mode) or "a file"
    return None


def discover(data: Path) -> tuple[list[tuple[Source, Path]], list[Refused]]:
    """The regular files of every source, in arrival order, and the paths refused (links,
    folders, pipes, devices where a file belongs). A config file that is not a regular file
    stops the run (treating it as absent would bill every charge as overage)."""
    found: list[tuple[Source, Path]] = []
    refused: list[Refused] = []
    for source in SOURCES:
        pattern = Path(source.pattern)
        folder = data / pattern.parent
        problem = _folder_problem(data, folder)
        if problem:
            where, kind = problem
            if source.snapshot:
                raise ConfigError(f"{where.relative_to(data)} is {kind}, not a folder; {REFUSED}")
            if not any(r.path == where for r in refused):
                refused.append(Refused(source, where, f"folder is {kind}; {REFUSED}"))
            continue
        try:
            entries = sorted(
                (e for e in os.scandir(folder) if fnmatch.fnmatchcase(e.name, pattern.name)),
                key=lambda e: _arrival_order(Path(e.name)),
            )
        except FileNotFoundError:
            entries = []
        if source.required and not entries:
            raise FileNotFoundError(f"{data / source.pattern} is missing (required configuration)")
        for e in entries:
            path = folder / e.name
            what = what_it_is(e.stat(follow_symlinks=False).st_mode)
            if what is None:
                found.append((source, path))
            elif source.snapshot:
                raise ConfigError(f"{path.relative_to(data)} is {what}, not a file; {REFUSED}")
            else:
                refused.append(Refused(source, path, f"file is {what}; {REFUSED}"))
    return found, refused


# A batch is read into memory whole: this bounds memory (and keeps the few fixed costs of a
# read and a validation small against the rows they cover).
BATCH_BYTES = 64 << 20


def _batches(files: list[NewFile]) -> list[list[NewFile]]:
    """Files of one source and header layout, in arrival order, up to BATCH_BYTES each."""
    groups: dict[tuple[str, tuple[str, ...], str | None], list[list[NewFile]]] = {}
    for f in files:
        chunks = groups.setdefault((f.source.name, f.headers, f.delimiter), [[]])
        if chunks[-1] and sum(g.fp.size for g in chunks[-1]) + f.fp.size > BATCH_BYTES:
            chunks.append([])
        chunks[-1].append(f)
    return [chunk for chunks in groups.values() for chunk in chunks]


def ingest(data: Path, store: Path) -> IngestResult:
    """Stage every new file under ``data`` into the ingest store at ``store``."""
    data = data.resolve()
    result = IngestResult()
    found, refused = discover(data)
    con = open_store(store)
    readers = [duckdb.connect(), duckdb.connect()]
    try:
        # A file seen before with the same path, size and modification time is not hashed
        # again (the inbox keeps years of files; reading them all every night is the slow
        # part of a quiet night).
        seen_before = {
            (path, size, modified): Fingerprint(content_hash, size, encoding, modified)
            for path, size, modified, content_hash, encoding in con.sql(
                "SELECT path, size_bytes, modified_ns, content_hash, encoding FROM ingest_files "
                "WHERE modified_ns IS NOT NULL"
            ).fetchall()
        }
        stats = [os.lstat(p) for _, p in found]
        known_fp = [
            seen_before.get((p.relative_to(data).as_posix(), st.st_size, st.st_mtime_ns))
            for (_, p), st in zip(found, stats, strict=True)
        ]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            # hashlib hashes without the GIL: the cores share the reading.
            to_hash = [p for (_, p), k in zip(found, known_fp, strict=True) if not k]
            hashed = iter(list(pool.map(_fingerprint_or_refused, to_hash)))
        checked = [k or next(hashed) for k in known_fp]
        # A file replaced by a link or a pipe between the listing and the reading.
        refused += [
            Refused(source, path, f"file is {fp}; {REFUSED}")
            for (source, path), fp in zip(found, checked, strict=True)
            if isinstance(fp, str)
        ]
        found = [sp for sp, fp in zip(found, checked, strict=True) if not isinstance(fp, str)]
        fingerprints = [fp for fp in checked if isinstance(fp, Fingerprint)]
        # A refused path is known by its path and why: recorded once, not every night.
        for no in refused:
            rel = no.path.relative_to(data).as_posix()
            marker = hashlib.sha256(f"refused\0{rel}\0{no.reason}".encode()).hexdigest()
            found.append((no.source, no.path))
            fingerprints.append(Fingerprint(marker, 0, "", None))
        refusal = {(no.source.name, no.path): no.reason for no in refused}
        # (source, content hash) -> every path already ingested with it, first one first.
        known: dict[tuple[str, str], list[str]] = {}
        for source_name, content_hash, path in con.sql(
            "SELECT source, content_hash, path FROM ingest_files ORDER BY ingested_at, path"
        ).fetchall():
            known.setdefault((source_name, content_hash), []).append(path)
        new: list[NewFile] = []
        touched: list[list[object]] = []  # unchanged content, new modification time
        duplicates: list[tuple[NewFile, str]] = []
        for (source, path), fp in zip(found, fingerprints, strict=True):
            f = NewFile(source, path, path.relative_to(data).as_posix(), fp)
            f.error = refusal.get((source.name, path))
            if source.snapshot:
                result.current_config[source.name] = f.file_id
            seen = known.setdefault((source.name, fp.content_hash), [])
            if f.rel_path in seen:
                result.files.append(f.result("unchanged"))
                if (f.rel_path, fp.size, fp.modified_ns) not in seen_before:
                    touched.append([fp.modified_ns, f.rel_path, fp.content_hash])
            elif seen:
                duplicates.append((f, seen[0]))
            else:
                seen.append(f.rel_path)
                new.append(f)

        with tempfile.TemporaryDirectory(dir=store.parent, prefix=".ingest-") as tmp:
            empty = []  # and refused, and not text: no row to stage
            for f in new:
                if f.error:
                    empty.append(f)
                    continue
                head = _head(f.path)
                if f.fp.encoding == "utf-16":
                    head = head.decode("utf-16", errors="ignore").encode()
                if f.fp.size == 0 or not head.strip(b"\xef\xbb\xbf \r\n\t"):
                    f.error = "file is empty (not even a header row)"
                    empty.append(f)
                    continue
                f.error = not_text(head, f.fp.encoding)
                if f.error:
                    empty.append(f)
                    continue
                f.readable = (
                    f.path
                    if f.fp.encoding.startswith("utf-8")
                    else _utf8_copy(f.path, f.fp.encoding, Path(tmp))
                )
                headers, f.delimiter = _header(f.readable)
                f.headers = tuple(headers)
            # A batch is written (one transaction, in order) while the next two are read and
            # validated, each with a scratch connection of its own: reading a file is one
            # thread's work in DuckDB, so one reader left a core idle a third of the time.
            batches = _batches([f for f in new if f not in empty])
            with (
                ThreadPoolExecutor(max_workers=1) as writer,
                ThreadPoolExecutor(max_workers=len(readers)) as staging,
            ):

                def stage(k: int) -> Future[StagedBatch]:
                    # Batch k's reader is free: batch k - len(readers) was taken before.
                    return staging.submit(stage_batch, readers[k % len(readers)], batches[k])

                ahead = deque(stage(k) for k in range(min(len(readers), len(batches))))
                writing: Future[list[FileResult]] | None = None
                for i in range(len(batches)):
                    failpoint(f"ingest:batch:{i + 1}")
                    staged = ahead.popleft().result()
                    if i + len(readers) < len(batches):
                        ahead.append(stage(i + len(readers)))
                    if writing:
                        result.files.extend(writing.result())
                    writing = writer.submit(staged.write, con)
                if writing:
                    result.files.extend(writing.result())

        # Files with no rows to stage: the manifest says what they were.
        now = _now()
        manifest = []
        for f in empty:
            r = f.result("rejected", note=f.error or "")
            result.files.append(r)
            manifest.append(_manifest_row(f, r, now))
        for f, first in duplicates:
            r = f.result("duplicate", note=f"same content as {first}")
            result.files.append(r)
            manifest.append(_manifest_row(f, r, now, duplicate_of=first))
        if manifest:
            commit(con, None, None, None, manifest)
        if touched:
            con.executemany(
                "UPDATE ingest_files SET modified_ns = ? WHERE path = ? AND content_hash = ?",
                touched,
            )
        for s in SOURCES:
            if s.snapshot:
                result.current_config.setdefault(s.name, None)
        con.execute("CHECKPOINT")
    finally:
        for reader in readers:
            reader.close()
        con.close()
    return result
