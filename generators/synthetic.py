"""Synthetic data folders of any size, laid out like a real agency's (for benchmarks).

    creditrecon generate OUT --records 10000000

Columns are built with polars, never row by row, so 10M export rows take well under a
minute. Deterministic for a given seed. Export files are wide by default (the contact's
name, title, email, phones, company, as a vendor writes them); `narrow=True` writes only
the columns the rules read (the record IDs), the shape where per-record cost shows. Rows
are in time order across files, so "an ID exported earlier" is "an ID from an earlier
row": re-exports pick one of those.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from generators.demo_data import CONTACTS_HEADER, LISTING_HEADER

FIRST_ID = 1_300_000_000
EXPORT_COLUMNS = CONTACTS_HEADER
NARROW_EXPORT_COLUMNS = ["ZoomInfo Contact ID", "ZoomInfo Company ID"]
LISTING_COLUMNS = LISTING_HEADER


def _rows_per_file(records: int) -> int:
    return int(min(50_000, max(50, records // 400)))


def _config(
    root: Path, clients: int, start: dt.date, months: int, rng: np.random.Generator
) -> list[str]:
    cfg = root / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    ids = [f"c{i:03d}" for i in range(clients)]
    users = [
        (f"u{i:03d}-{k}@agency.example", c) for i, c in enumerate(ids) for k in range(1 + i % 2)
    ]
    end = _add_months(start, months + 1)
    (cfg / "clients.csv").write_text(
        "client_id,client_name\n" + "".join(f"{c},Client {c[1:]}\n" for c in ids)
    )
    (cfg / "users.csv").write_text(
        "vendor,user,client_id,valid_from,valid_to\n"
        + "".join(f"zoominfo,{u},{c},,\n" for u, c in users)
    )
    (cfg / "contracts.csv").write_text(
        "vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,"
        f"price_per_credit\nzoominfo,SYN,{start},{end},{10**9},monthly,true,,0.40\n"
    )
    allocations = rng.integers(5, 50, size=clients) * 100
    (cfg / "allocations.csv").write_text(
        "vendor,client_id,effective_month,monthly_credits\n"
        + "".join(f"zoominfo,{c},{start},{a}\n" for c, a in zip(ids, allocations, strict=True))
    )
    gift_month = _add_months(start, 1)
    (cfg / "grants.csv").write_text(
        "vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note\n"
        + "".join(f"zoominfo,{c},GIFT-{c},gift,400,{gift_month},,synthetic\n" for c in ids[::5])
    )
    (cfg / "reversals.csv").write_text("vendor,ticket,reference,credits,reversed_on\n")
    return [u for u, _ in users] + ["ghost@agency.example"]


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, 1)


def _contact_details(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns a vendor writes beside the IDs (name, title, email, phones, company)."""
    return frame.with_columns(
        (pl.lit("First") + (pl.col("ZoomInfo Company ID").str.slice(-2))).alias("First Name"),
        (pl.lit("Last") + (pl.col("ZoomInfo Contact ID").str.slice(-3))).alias("Last Name"),
        pl.lit("Director of Operations").alias("Job Title"),
        (
            pl.lit("p")
            + pl.col("ZoomInfo Contact ID")
            + "@co"
            + pl.col("ZoomInfo Company ID")
            + ".example"
        ).alias("Email Address"),
        (pl.lit("+1 617-555-") + pl.col("ZoomInfo Contact ID").str.slice(-4)).alias(
            "Direct Phone Number"
        ),
        pl.lit("").alias("Mobile phone"),
        (pl.lit("Company ") + pl.col("ZoomInfo Company ID")).alias("Company Name"),
        (pl.lit("www.co") + pl.col("ZoomInfo Company ID") + ".example").alias("Website"),
    )


def _exports(
    root: Path,
    users: list[str],
    rows: int,
    first_day: dt.date,
    days: int,
    rng: np.random.Generator,
    first_id: int,
    known_ids: int,
    reexport_share: float,
    bad_row_share: float,
    tag: str,
    narrow: bool = False,
) -> dict[str, int]:
    """Write export files and their listings for `rows` rows over `days` days. IDs below
    first_id + known_ids were exported before: re-exports draw from them too."""
    per_file = _rows_per_file(rows)
    files = max(1, -(-rows // per_file))
    # Files in time order; each row belongs to a file.
    offsets = np.sort(rng.integers(0, days * 24 * 60, size=files))
    when = [
        dt.datetime.combine(first_day, dt.time()) + dt.timedelta(minutes=int(m)) for m in offsets
    ]
    file_of = np.minimum(np.arange(rows) // per_file, files - 1)
    reexport = rng.random(rows) < reexport_share
    fresh = np.cumsum(~reexport)  # IDs handed out so far, in row order
    pool = known_ids + fresh  # a re-export picks any ID exported before this row
    picked = (rng.random(rows) * np.maximum(pool, 1)).astype(np.int64)
    contact = np.where(reexport & (pool > 0), first_id + picked, first_id + known_ids + fresh - 1)
    company = 400_000_000 + contact % 50_000
    bad = rng.random(rows) < bad_row_share
    ids = pl.Series(contact.astype(np.int64)).cast(pl.String)
    ids = pl.select(
        pl.when(pl.Series(bad) & pl.Series(rng.random(rows) < 0.5))
        .then(pl.lit(""))
        .when(pl.Series(bad))
        .then(pl.lit("1.3E+09"))
        .otherwise(ids)
    ).to_series()
    frame = pl.DataFrame(
        {
            "file": file_of,
            "ZoomInfo Contact ID": ids,
            "ZoomInfo Company ID": pl.Series(company).cast(pl.String),
        }
    )
    columns = NARROW_EXPORT_COLUMNS if narrow else EXPORT_COLUMNS
    if not narrow:
        frame = _contact_details(frame)
    exports_dir = root / "inbox" / "zoominfo" / "exports"
    exports_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{tag}_export_{i:05d}.csv" for i in range(files)]
    for (i,), part in frame.partition_by("file", as_dict=True, maintain_order=True).items():
        part.select(columns).write_csv(exports_dir / names[int(i)])
    counts = np.bincount(file_of, minlength=files)
    new = np.bincount(file_of, weights=(~reexport & ~bad).astype(np.int64), minlength=files)
    who = rng.integers(0, len(users), size=files)
    listing = pl.DataFrame(
        {
            "Export ID": [f"{tag.upper()}-{i:05d}" for i in range(files)],
            "Export Name": [f"Synthetic list {i}" for i in range(files)],
            "File Name": names,
            "Exported By": [users[int(w)] for w in who],
            "Export Date": [w.strftime("%Y-%m-%d %H:%M:%S") for w in when],
            "Export Type": ["Contacts"] * files,
            "Records": counts.astype(np.int64),
            "Credits Used": new.astype(np.int64),
        }
    )
    listings_dir = root / "inbox" / "zoominfo" / "downloads"
    listings_dir.mkdir(parents=True, exist_ok=True)
    months = listing.with_columns(pl.col("Export Date").str.slice(0, 7).alias("_month"))
    for (month,), part in months.partition_by("_month", as_dict=True, maintain_order=True).items():
        part.select(LISTING_COLUMNS).write_csv(listings_dir / f"{tag}_downloads_{month}.csv")
    return {
        "export_rows": rows,
        "export_files": files,
        "listing_rows": files,
        "bad_rows": int(bad.sum()),
        "new_ids": int(fresh[-1]) if rows else 0,
    }


def generate(
    root: Path,
    *,
    records: int,
    clients: int = 20,
    months: int = 6,
    start: dt.date = dt.date(2025, 1, 1),
    seed: int = 0,
    reexport_share: float = 0.1,
    bad_row_share: float = 0.001,
    narrow: bool = False,
) -> dict[str, int]:
    """A data folder with `records` export rows over `months` months from `start`; with
    `narrow`, export files hold only the record IDs."""
    rng = np.random.default_rng(seed)
    users = _config(root, clients, start, months, rng)
    days = (_add_months(start, months) - start).days
    return _exports(
        root,
        users,
        records,
        start,
        days,
        rng,
        FIRST_ID,
        0,
        reexport_share,
        bad_row_share,
        "syn",
        narrow,
    )


def add_day(
    root: Path,
    day: dt.date,
    *,
    records: int,
    known_ids: int,
    seed: int = 1,
    narrow: bool = False,
) -> dict[str, int]:
    """One more day of exports (a night's new files) in an existing synthetic folder."""
    rng = np.random.default_rng(seed)
    users = [
        line.split(",")[1] for line in (root / "config" / "users.csv").read_text().splitlines()[1:]
    ]
    return _exports(
        root,
        users,
        records,
        day,
        1,
        rng,
        FIRST_ID,
        known_ids,
        0.1,
        0.001,
        f"day{day:%Y%m%d}",
        narrow,
    )
