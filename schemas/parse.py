"""Turn a file's raw text columns into typed, validated rows plus quarantine reasons.

Three steps, all column-wise in polars:

1. ``map_headers``: find each canonical column among the file's headers (case, spacing,
   ``_``/``-`` and BOM ignored; known spellings from ``schemas/headers/*.toml``).
2. ``parse_frame``: parse text to types. A value that does not parse becomes null and
   leaves a reason quoting the raw text; nothing is guessed (an Excel ``1.3E+09`` ID whose
   digits were lost is rejected, a day-first date is rejected unless configured).
3. ``validate``: the pandera model checks the typed frame; its failure cases become
   reasons a person can read.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandera.polars as pa
import polars as pl

from schemas.inputs import Source

HEADERS_DIR = Path(__file__).parent / "headers"
ROW = "_row"  # positional index of a row in the frame being validated


def normalise_header(name: str) -> str:
    """'\ufeffMobile_Phone ' -> 'mobile phone'."""
    name = name.replace("\ufeff", "").strip().lower()
    return re.sub(r"[\s_\-]+", " ", name)


@cache
def header_config(vendor: str) -> dict[str, typing.Any]:
    with open(HEADERS_DIR / f"{vendor}.toml", "rb") as f:
        return tomllib.load(f)


CHARGE_RULES = ("first_in_window", "per_row")


@dataclass(frozen=True)
class VendorRules:
    """What the shared rules need to know of a vendor, from its header TOML's ``[vendor]``
    and ``[charging]``: no shared model or page names a vendor."""

    vendor: str
    name: str  # as clients know it, on statements
    rule: str  # first_in_window or per_row (DOMAIN rule 2)
    # per_row only: a record charged again is a repeat purchase (duplicate_reexports,
    # disputable); without it rows are not matched to one another.
    repeat_purchases: bool


@cache
def vendor_rules(vendor: str) -> VendorRules:
    config = header_config(vendor)
    charging = config.get("charging", {})
    rule = charging.get("rule")
    if rule not in CHARGE_RULES:
        raise ValueError(
            f"schemas/headers/{vendor}.toml: [charging] rule must be one of "
            f"{', '.join(CHARGE_RULES)}, not {rule!r}"
        )
    repeats = charging.get("repeat_purchases", False)
    if not isinstance(repeats, bool) or (repeats and rule != "per_row"):
        raise ValueError(
            f"schemas/headers/{vendor}.toml: [charging] repeat_purchases is true or false, "
            "and true only with rule = per_row (a first_in_window repeat is a re-export)"
        )
    return VendorRules(vendor, str(config.get("vendor", {}).get("name", vendor)), rule, repeats)


@dataclass(frozen=True)
class Field:
    name: str
    # text, key, id, file_name, int, float, bool, date, datetime, period, or
    # utc_offset:<datetime field> (the offset that field's text carried, in minutes)
    parse: str
    required: bool


def fields_of(model: type[pa.DataFrameModel]) -> list[Field]:
    schema = model.to_schema()
    out = []
    for name, col in schema.columns.items():
        parse = (col.metadata or {}).get("parse")
        if parse is None:
            parse = {
                pl.Int64: "int",
                pl.Float64: "float",
                pl.Boolean: "bool",
                pl.Date: "date",
            }.get(col.dtype.type, "text")
            if isinstance(col.dtype.type, pl.Datetime):
                parse = "datetime"
        out.append(Field(name, parse, required=not col.nullable))
    return out


class FileRejected(Exception):
    """The whole file cannot be read as this source (every row is quarantined with this)."""


def map_headers(source: Source, headers: list[str]) -> dict[str, int]:
    """Canonical column -> position in the file. Raises FileRejected with a reason."""
    aliases = header_config(source.vendor)[source.headers]
    by_norm: dict[str, list[int]] = {}
    for i, h in enumerate(headers):
        by_norm.setdefault(normalise_header(h), []).append(i)
    found: dict[str, int] = {}
    missing: list[str] = []
    for field in fields_of(source.model):
        names = {normalise_header(a) for a in aliases.get(field.name, [field.name])}
        names.add(normalise_header(field.name))
        hits = sorted(i for n in names for i in by_norm.get(n, []))
        if len(hits) > 1:
            shown = ", ".join(repr(headers[i]) for i in hits)
            raise FileRejected(f"columns {shown} all mean {field.name}; keep one of them")
        if hits:
            found[field.name] = hits[0]
        elif field.required:
            missing.append(repr(aliases.get(field.name, [field.name])[0]))
    if missing:
        raise FileRejected(
            f"no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} "
            f"(headers found: {', '.join(repr(h) for h in headers)})"
        )
    if source.any_of and not any(c in found for c in source.any_of):
        wanted = " or ".join(repr(aliases[c][0]) for c in source.any_of)
        raise FileRejected(f"no {wanted} column (headers found: {', '.join(headers)})")
    return found


# --- parsing -------------------------------------------------------------------------------

_INT = r"^[+-]?\d+(\.0*)?$"
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+$"
_EXCEL_NUMBER = r"^(\d+)(?:\.(\d*))?(?:[eE]\+?(\d+))?$"
_TRUE = ["true", "yes", "y", "1", "t"]
_FALSE = ["false", "no", "n", "0", "f"]


def _blank_to_null(e: pl.Expr) -> pl.Expr:
    e = e.str.strip_chars()
    return pl.when(e == "").then(None).otherwise(e)


def _quote(raw: pl.Expr) -> pl.Expr:
    return pl.lit('"') + raw + pl.lit('"')


_CONTROL = r"[\x00-\x1f\x7f]"


def _control_error(raw: pl.Expr) -> pl.Expr:
    """An id or key with a control character (a NUL, an escape) inside it would be a record
    of its own that no person can read or type: the row is quarantined, the character shown
    as U+FFFD. Whitespace around the value is trimmed first, as for any value."""
    t = raw.str.strip_chars()
    return pl.when(t.str.contains(_CONTROL)).then(
        _quote(t.str.replace_all(_CONTROL, "\ufffd"))
        + pl.lit(" contains a control character (shown as \ufffd); IDs must be plain text")
    )


def _id(t: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """IDs stay text. Excel's numeric forms are read back only when every digit survived.

    1.300000001E+9 -> 1300000001 and 1300000001.0 -> 1300000001, but 1.3E+09 could be any
    of a hundred million IDs, so it is rejected.
    """
    parts = t.str.extract_groups(_EXCEL_NUMBER)
    whole, frac = parts.struct.field("1"), parts.struct.field("2").fill_null("")
    exp = parts.struct.field("3").cast(pl.Int64, strict=False).fill_null(0)
    digits = whole + frac
    point = whole.str.len_chars().cast(pl.Int64) + exp
    exact = (point <= digits.str.len_chars()) & digits.str.slice(point).str.contains(r"^0*$")
    excel_form = t.str.contains(r"^\d+(\.\d*)?([eE]\+?\d+)?$") & t.str.contains(r"[.eE]")
    value = (
        pl.when(excel_form & exact)
        .then(digits.str.slice(0, point))
        .when(excel_form)
        .then(None)
        .otherwise(t)
    )
    error = pl.when(excel_form & ~exact).then(
        _quote(t) + pl.lit(" is a number Excel rounded (digits lost); the ID cannot be recovered")
    )
    return value, error


# A time followed by a zone or offset: 2025-11-01T03:30:00Z, 2025-11-01 03:30-05:00,
# 11/04/2025 02:15 PM +0100. Only after a time of day, so 2025-11-04 is never read as one.
_OFFSET = (
    r"(?i)^(.*\d:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AP]M)?)\s*"
    r"(Z|UTC|GMT|([+-])(\d{2}):?(\d{2})?)$"
)


def _split_offset(t: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(the wall time as written, its offset from UTC in minutes or null, whether it had
    one). The time is booked after conversion to the reporting zone (vendor adapters)."""
    g = t.str.extract_groups(_OFFSET)
    has = g.struct.field("1").is_not_null()
    hours = g.struct.field("4").cast(pl.Int64, strict=False)
    minutes = g.struct.field("5").cast(pl.Int64, strict=False).fill_null(0)
    sign = pl.when(g.struct.field("3") == "-").then(-1).otherwise(1)
    offset = (
        pl.when(~has)
        .then(None)
        .when(hours.is_null())  # Z, UTC, GMT
        .then(0)
        .when((hours <= 14) & (minutes < 60))
        .then(sign * (hours * 60 + minutes))
    )
    wall = pl.when(has).then(g.struct.field("1")).otherwise(t)
    return wall, offset.cast(pl.Int64), has


def _dates(t: pl.Expr, formats: list[str], as_date: bool) -> pl.Expr:
    if not as_date:
        wall, offset, has = _split_offset(t)
        tries = [wall.str.strptime(pl.Datetime("us"), f, strict=False, exact=True) for f in formats]
        # An offset out of range (+25:00) makes the whole value unreadable.
        return pl.when(has & offset.is_null()).then(None).otherwise(pl.coalesce(tries))
    tries = [t.str.strptime(pl.Datetime("us"), f, strict=False, exact=True) for f in formats]
    parsed = pl.coalesce(tries)
    return parsed.dt.date() if as_date else parsed


def _period(t: pl.Expr, formats: list[str]) -> pl.Expr:
    tries = []
    for f in formats:
        if "%d" in f:
            tries.append(t.str.strptime(pl.Date, f, strict=False, exact=True))
        else:  # a month with no day: read it as the 1st
            tries.append((pl.lit("1 ") + t).str.strptime(pl.Date, "%d " + f, strict=False))
    return pl.coalesce(tries).dt.month_start()


def parse_expr(
    field: Field, raw: pl.Expr, formats: dict[str, list[str]]
) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, reason or null) for one column."""
    t = _blank_to_null(raw)
    none = pl.lit(None, dtype=pl.String)
    kind = field.parse
    value: pl.Expr
    if kind == "text":
        return t, none
    if kind == "key":
        return t.str.to_lowercase(), none
    if kind == "grade":  # 'a+' or ' A+ ' -> 'A+'
        return t.str.to_uppercase().str.replace_all(" ", ""), none
    if kind == "file_name":
        # Only the base name: a listing must never point outside the exports folder.
        return t.str.replace_all(r"\\", "/").str.split("/").list.last(), none
    if kind == "id":
        return _id(t)
    if kind == "int":
        plain = t.str.replace_all(",", "")
        ok = t.str.contains(_INT) | t.str.contains(_THOUSANDS)
        value = pl.when(ok).then(plain.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False))
        error = pl.when(t.is_not_null() & value.is_null()).then(
            _quote(t) + pl.lit(" is not a whole number")
        )
        return value, error
    if kind == "float":
        value = t.str.replace_all(r"^\$", "").cast(pl.Float64, strict=False)
        return value, pl.when(t.is_not_null() & value.is_null()).then(
            _quote(t) + pl.lit(" is not a number")
        )
    if kind == "bool":
        low = t.str.to_lowercase()
        value = pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False)
        return value, pl.when(t.is_not_null() & value.is_null()).then(
            _quote(t) + pl.lit(" is not true/false")
        )
    if kind in ("date", "datetime"):
        fmts = formats.get(kind) or formats.get("datetime") or formats["date"]
        value = _dates(t, fmts, as_date=kind == "date")
        shown = ", ".join(dt.datetime(2025, 11, 4, 14, 15).strftime(f) for f in fmts[:4])
        return value, pl.when(t.is_not_null() & value.is_null()).then(
            _quote(t) + pl.lit(f" is not a date in an accepted format (e.g. {shown})")
        )
    if kind.startswith("utc_offset:"):  # reasons are given by the datetime itself
        return _split_offset(t)[1], none
    if kind == "period":
        value = _period(t, formats["period"])
        return value, pl.when(t.is_not_null() & value.is_null()).then(
            _quote(t) + pl.lit(" is not a month (e.g. Nov 2025 or 2025-11)")
        )
    raise ValueError(f"unknown parse kind {kind!r}")


# --- validation ----------------------------------------------------------------------------


@dataclass
class Parsed:
    loaded: pl.DataFrame  # ROW + canonical typed columns, valid rows only
    rejected: pl.DataFrame  # ROW, reason


def _check_message(check: str, label: str, value: str | None) -> str:
    got = f" (got {value!r})" if value is not None else ""
    if check == "not_nullable":
        return f"{label} is empty"
    if check.startswith("greater_than_or_equal_to(0"):
        return f"{label} must not be negative{got}"
    if check.startswith("greater_than(0"):
        return f"{label} must be more than 0{got}"
    if check.startswith("isin("):
        allowed = check[len("isin(") : -1]
        return f"{label} must be one of {allowed}{got}"
    return f"{label} fails {check}{got}"


def _ids(raw: pl.DataFrame, column: str) -> tuple[pl.DataFrame, pl.Expr, pl.Expr]:
    """``_id`` for a column, applied only to the values Excel may have rewritten (with a '.'
    or an exponent): on all of a big file's IDs its many regexes are slow."""
    plain = _blank_to_null(pl.col(column))
    excel = pl.col(column).str.contains(r"[.eE]")
    if not raw.select(excel.any()).item():
        return raw, plain, pl.lit(None, dtype=pl.String)
    value, error = _id(plain)
    fixed = raw.filter(excel).select(
        ROW, value.alias(f"_id_{column}"), error.alias(f"_id_error_{column}")
    )
    raw = raw.join(fixed, on=ROW, how="left", maintain_order="left")
    return (
        raw,
        pl.when(excel).then(pl.col(f"_id_{column}")).otherwise(plain),
        pl.col(f"_id_error_{column}"),
    )


def parse_and_validate(
    source: Source, raw: pl.DataFrame, columns: dict[str, int], headers: list[str]
) -> Parsed:
    """raw: ROW plus one String column per file column, named c0, c1, ..."""
    formats = header_config(source.vendor).get("formats", {})
    fields = fields_of(source.model)
    exprs, errors = [pl.col(ROW)], []
    label = {}
    for f in fields:
        label[f.name] = (
            headers[columns[f.name]].replace("\ufeff", "").strip() if f.name in columns else f.name
        )
        # An offset is read from its datetime's column.
        of = f.parse.removeprefix("utc_offset:") if f.parse.startswith("utc_offset:") else f.name
        raw_column = f"c{columns[of]}" if of in columns else ""
        if f.parse == "id" and raw_column:
            raw, value, error = _ids(raw, raw_column)
        elif raw_column:
            value, error = parse_expr(f, pl.col(raw_column), formats)
        if raw_column and f.parse in ("id", "key", "file_name"):
            error = pl.coalesce(_control_error(pl.col(raw_column)), error)
        if not raw_column:
            value, error = pl.lit(None), pl.lit(None, dtype=pl.String)
        dtype = source.model.to_schema().columns[f.name].dtype.type
        exprs.append(value.cast(dtype).alias(f.name))
        errors.append((pl.lit(label[f.name] + ": ") + error).alias(f"_err_{f.name}"))
    typed = raw.with_columns(pl.col(ROW).cast(pl.Int64)).select(*exprs, *errors)

    error_columns = [c for c in typed.columns if c.startswith("_err_")]
    parse_errors = (
        typed.select(ROW, *error_columns)
        # Most rows have no error: unpivot only the ones that do.
        .filter(pl.any_horizontal(pl.col(error_columns).is_not_null()))
        .unpivot(index=ROW, variable_name="column", value_name="reason")
        .drop_nulls("reason")
        .with_columns(pl.col("column").str.strip_prefix("_err_"))
    )
    typed = typed.select(ROW, *[f.name for f in fields])

    check_errors = pl.DataFrame(schema={ROW: pl.Int64, "column": pl.String, "reason": pl.String})
    try:
        source.model.validate(typed.drop(ROW), lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases.filter(pl.col("index").is_not_null())
        if fc.height:
            positions = typed.select(ROW).with_row_index("index")
            rows = []
            for (column, check), group in fc.group_by(["column", "check"], maintain_order=True):
                # One message per distinct failing value, not per row: keeps this cheap.
                msgs = {
                    v: _check_message(str(check), label.get(str(column), str(column)), v)
                    for v in group["failure_case"].unique().to_list()
                }
                rows.append(
                    group.select(
                        pl.col("index").cast(pl.Int64),
                        pl.lit(column).alias("column"),
                        pl.col("failure_case")
                        .replace_strict(msgs, return_dtype=pl.String)
                        .alias("reason"),
                    )
                )
            check_errors = (
                pl.concat(rows)
                .join(positions.with_columns(pl.col("index").cast(pl.Int64)), on="index")
                .select(ROW, "column", "reason")
            )

    # A value that did not parse is already explained; drop pandera's "is empty" for it.
    check_errors = check_errors.join(
        parse_errors.select(ROW, "column"), on=[ROW, "column"], how="anti"
    )
    order = {f.name: i for i, f in enumerate(fields)}
    reasons = (
        pl.concat([parse_errors, check_errors])
        .with_columns(pl.col("column").replace_strict(order, return_dtype=pl.Int32).alias("_o"))
        .sort(ROW, "_o")
        .group_by(ROW, maintain_order=True)
        .agg(pl.col("reason").str.join("; "))
    )
    loaded = typed.join(reasons.select(ROW), on=ROW, how="anti")
    return Parsed(loaded=loaded, rejected=reasons)
