"""Inbox -> ingest store: every row of every input file is staged or quarantined.

The ingest store is a DuckDB file private to the pipeline (analysts never open it), so
ingest never waits on a reader. Each file is staged in one transaction together with its
quarantine rows and its manifest row: a crash leaves a file either fully ingested or not
at all. A file is known by its content hash, so the same bytes under a new name are
recorded as a duplicate and not loaded twice.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from schemas.inputs import SOURCES, Source
from schemas.parse import ROW, FileRejected, fields_of, map_headers, parse_and_validate
from transforms.failpoints import failpoint

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


def staging_ddl(source: Source) -> str:
    cols = ["file_id VARCHAR NOT NULL", "row_number BIGINT NOT NULL"]
    schema = source.model.to_schema().columns
    for f in fields_of(source.model):
        dtype = schema[f.name].dtype.type
        sql_type = "TIMESTAMP" if isinstance(dtype, pl.Datetime) else DUCKDB_TYPES[dtype]
        cols.append(f"{f.name} {sql_type}")
    return f"CREATE TABLE IF NOT EXISTS stg_{source.name} ({', '.join(cols)})"


def open_store(path: Path) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(MANIFEST_DDL)
    for s in SOURCES:
        con.execute(staging_ddl(s))
    return con


# --- reading one file ----------------------------------------------------------------------


@dataclass
class Fingerprint:
    content_hash: str
    size: int
    encoding: str  # utf-8 | utf-8-sig | cp1252 | latin-1


def fingerprint(path: Path) -> Fingerprint:
    """Hash and check the encoding in one streaming pass (export files can be GBs)."""
    h = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    is_utf8, size, first = True, 0, b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if not first:
                first = chunk[:3]
            h.update(chunk)
            size += len(chunk)
            if is_utf8:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
    if is_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    if is_utf8:
        encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
    else:
        # Excel on Windows saves "CSV" as cp1252; bytes cp1252 leaves undefined are latin-1.
        try:
            path.read_bytes().decode("cp1252")
            encoding = "cp1252"
        except UnicodeDecodeError:
            encoding = "latin-1"
    return Fingerprint(h.hexdigest(), size, encoding)


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def file_id_of(source: Source, fp: Fingerprint) -> str:
    """Stable id of a file's content as one source (the same bytes are never loaded twice)."""
    return hashlib.sha256(f"{source.name}:{fp.content_hash}".encode()).hexdigest()[:16]


def _utf8_copy(path: Path, encoding: str, tmpdir: Path) -> Path:
    out = tmpdir / (path.name + ".utf8")
    with (
        open(path, encoding=encoding, newline="") as src,
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
    con: duckdb.DuckDBPyConnection, path: Path, headers: list[str], delimiter: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All rows as text (columns c0..cN, plus ROW = spreadsheet row number) and the rows
    DuckDB could not split into the header's columns (row_number, raw_row, reason).
    ``con`` is a scratch in-memory connection."""
    con.execute("DROP TABLE IF EXISTS rejects; DROP TABLE IF EXISTS reject_scans")
    columns = {f"c{i}": "VARCHAR" for i in range(len(headers))}
    rel = con.sql(
        "SELECT * FROM read_csv($path, auto_detect=false, header=true, delim=$delim, "
        "quote='\"', escape='\"', columns=$columns, store_rejects=true, ignore_errors=true, "
        "strict_mode=true, max_line_size=2000000, rejects_table='rejects')",
        params={"path": str(path), "delim": delimiter, "columns": columns},
    )
    rows = rel.pl()
    rejects = con.sql(
        # DuckDB reports a short row once per missing column: one row, one reason.
        "SELECT line::BIGINT AS row_number, first(csv_line ORDER BY column_idx) AS raw_row, "
        "first(error_type::VARCHAR ORDER BY column_idx) AS error "
        "FROM rejects GROUP BY line ORDER BY line"
    ).pl()
    # DuckDB numbers records (not physical lines) from the header = 1, as a spreadsheet does.
    # Accepted rows keep file order, so the k-th accepted row is the k-th number not rejected.
    total = rows.height + rejects.height
    numbers = (
        pl.DataFrame({"row_number": pl.int_range(2, total + 2, eager=True)})
        .join(rejects.select("row_number"), on="row_number", how="anti")
        .get_column("row_number")
    )
    rows = rows.with_columns(numbers.alias(ROW))
    rejects = rejects.with_columns(
        pl.col("error")
        .replace_strict(REJECT_REASONS, default="row cannot be parsed as CSV")
        .alias("reason")
    ).drop("error")
    return rows, rejects


def _raw_json(rows: pl.DataFrame, headers: list[str], positions: list[int]) -> pl.Expr:
    seen: dict[str, int] = {}
    parts = []
    for i in positions:
        name = headers[i] or f"column {i + 1}"
        seen[name] = seen.get(name, 0) + 1
        alias = name if seen[name] == 1 else f"{name} ({seen[name]})"
        parts.append(pl.col(f"c{i}").alias(alias))
    return pl.struct(parts).struct.json_encode() if parts else pl.lit("{}")


def record_file(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    fp: Fingerprint,
    result: FileResult,
    *,
    delimiter: str | None = None,
    duplicate_of: str | None = None,
    error: str | None = None,
) -> None:
    """The file's row in the manifest, stamped with the ingest time."""
    con.execute(
        "INSERT INTO ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.file_id,
            source.name,
            source.vendor,
            result.path,
            fp.content_hash,
            fp.size,
            result.status,
            duplicate_of,
            fp.encoding,
            delimiter,
            result.rows_read,
            result.rows_loaded,
            result.rows_quarantined,
            error,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
        ],
    )


def stage_file(
    con: duckdb.DuckDBPyConnection,
    reader: duckdb.DuckDBPyConnection,
    source: Source,
    path: Path,
    rel_path: str,
    fp: Fingerprint,
    tmpdir: Path,
) -> FileResult:
    file_id = file_id_of(source, fp)
    result = FileResult(rel_path, source.name, "loaded", file_id=file_id)
    error = None
    delimiter = None
    quarantine = pl.DataFrame(
        schema={"row_number": pl.Int64, "raw_row": pl.String, "reason": pl.String}
    )
    staged: pl.DataFrame | None = None

    if fp.size == 0 or not _head(path).strip(b"\xef\xbb\xbf \r\n\t"):
        result.status, error = "rejected", "file is empty (not even a header row)"
    else:
        readable = (
            path if fp.encoding.startswith("utf-8") else _utf8_copy(path, fp.encoding, tmpdir)
        )
        headers, delimiter = _header(readable)
        rows, rejects = read_rows(reader, readable, headers, delimiter)
        result.rows_read = rows.height + rejects.height
        quarantine = pl.concat([quarantine, rejects.select(quarantine.columns)])
        try:
            columns = map_headers(source, headers)
        except FileRejected as exc:
            error = str(exc)
            bad = rows.select(
                pl.col(ROW).alias("row_number"),
                _raw_json(rows, headers, list(range(len(headers)))).alias("raw_row"),
                pl.lit(f"file rejected: {error}").alias("reason"),
            )
            quarantine = pl.concat([quarantine, bad])
        else:
            parsed = parse_and_validate(source, rows, columns, headers)
            used = sorted(columns.values())
            bad = rows.join(parsed.rejected, on=ROW).select(
                pl.col(ROW).alias("row_number"),
                _raw_json(rows, headers, used).alias("raw_row"),
                "reason",
            )
            quarantine = pl.concat([quarantine, bad])
            staged = parsed.loaded.rename({ROW: "row_number"})
        if error:
            result.status = "rejected"

    result.rows_loaded = staged.height if staged is not None else 0
    result.rows_quarantined = quarantine.height
    result.note = error or ""
    con.execute("BEGIN TRANSACTION")
    try:
        if staged is not None and staged.height:
            cols = ", ".join(staged.columns)
            con.register("staged_df", staged)
            con.execute(
                f"INSERT INTO stg_{source.name} (file_id, {cols}) SELECT ?, {cols} FROM staged_df",
                [file_id],
            )
            con.unregister("staged_df")
        if quarantine.height:
            con.register("quarantine_df", quarantine.sort("row_number"))
            con.execute(
                "INSERT INTO ingest_quarantine "
                "SELECT ?, row_number, raw_row, reason FROM quarantine_df",
                [file_id],
            )
            con.unregister("quarantine_df")
        failpoint("ingest:in-transaction")
        record_file(con, source, fp, result, delimiter=delimiter, error=error)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


# --- the inbox -----------------------------------------------------------------------------


def _arrival_order(path: Path) -> tuple[str, int, str]:
    """Sort 'x.csv' before its copies 'x (1).csv' and 'x - Copy.csv', so that a copy is the
    one called duplicate when both arrive the same night."""
    base = re.sub(r"( \(\d+\)| - Copy( \(\d+\))?)(?=\.[^.]*$)", "", path.name)
    return (base, len(path.name), path.name)


def discover(data: Path) -> list[tuple[Source, Path]]:
    found: list[tuple[Source, Path]] = []
    for source in SOURCES:
        paths = sorted(data.glob(source.pattern), key=_arrival_order)
        if source.required and not paths:
            raise FileNotFoundError(f"{data / source.pattern} is missing (required configuration)")
        found.extend((source, p) for p in paths if p.is_file())
    return found


def ingest(data: Path, store: Path) -> IngestResult:
    """Stage every new file under ``data`` into the ingest store at ``store``."""
    data = data.resolve()
    result = IngestResult()
    files = discover(data)
    con = open_store(store)
    reader = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(dir=store.parent, prefix=".ingest-") as tmp:
            for source, path in files:
                rel_path = path.relative_to(data).as_posix()
                fp = fingerprint(path)
                file_id = file_id_of(source, fp)
                if source.snapshot:
                    result.current_config[source.name] = file_id
                found: list[tuple[str]] = con.execute(
                    "SELECT path FROM ingest_files WHERE source = ? AND content_hash = ? "
                    "ORDER BY (path = ?) DESC, ingested_at, path LIMIT 1",
                    [source.name, fp.content_hash, rel_path],
                ).fetchall()
                seen = found[0] if found else None
                if seen and seen[0] == rel_path:
                    result.files.append(
                        FileResult(rel_path, source.name, "unchanged", file_id=file_id)
                    )
                elif seen:
                    duplicate = FileResult(
                        rel_path,
                        source.name,
                        "duplicate",
                        file_id=file_id,
                        note=f"same content as {seen[0]}",
                    )
                    record_file(con, source, fp, duplicate, duplicate_of=seen[0])
                    result.files.append(duplicate)
                else:
                    failpoint(f"ingest:file:{result.count('loaded') + 1}")
                    result.files.append(
                        stage_file(con, reader, source, path, rel_path, fp, Path(tmp))
                    )
        for s in SOURCES:
            if s.snapshot:
                result.current_config.setdefault(s.name, None)
        con.execute("CHECKPOINT")
    finally:
        reader.close()
        con.close()
    return result
