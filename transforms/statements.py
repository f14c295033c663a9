"""Month-end reconciliation statements: one self-contained HTML page and one CSV per client
and month, and an agency overview page. Read from the published warehouse only.

A page works with no network: styles inline, the 12-month chart drawn as inline SVG. A
client's page and CSV hold only that client's figures. CSV text cells that a spreadsheet
would run as a formula (starting with =, +, - or @) are written as text.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from transforms.filenames import file_stems

TEMPLATES = Path(__file__).parent / "templates"

FIELDS = [
    ("baseline_credits", "Standard monthly allocation"),
    ("gift_credits", "One-time gift (not part of the standard allocation)"),
    ("purchased_credits", "Purchased credits"),
    ("earned_credits", "Earned credits"),
    ("opening_balance", "Carried in from earlier lots (purchased or earned)"),
    ("available_credits", "Available this month"),
    ("charged_credits", "Used (charged)"),
    ("overage_credits", "Used beyond your credits (drawn from the shared pool)"),
    ("free_reexports", "Re-exports at no charge"),
    ("forfeited_credits", "Forfeited at month end (credits do not roll over)"),
    ("closing_balance", "Remaining"),
    ("late_charged_credits", "Late charges for an earlier, closed month"),
    ("disputed_credits", "Credits in dispute with the vendor"),
]


VENDOR_NAMES = {"zoominfo": "ZoomInfo", "6sense": "6sense", "apollo": "Apollo"}


@dataclass
class VendorMonth:
    vendor: str
    figures: dict[str, int]
    history: list[tuple[str, int, int]]  # (YYYY-MM, available, used), oldest first
    sentences: list[str]


def _story(f: dict[str, int], month: dt.date, is_open: bool) -> list[str]:
    """The month in words, the way the agency explains it to a client."""
    out = [f"Your standard allocation is {f['baseline_credits']:,} credits a month."]
    if f["gift_credits"]:
        out.append(
            f"In {month:%B} you also had a one-time gift of {f['gift_credits']:,} credits, "
            f"for {month:%B} only: it does not change your standard allocation."
        )
    out.append(f"You had {f['available_credits']:,} credits and used {f['charged_credits']:,}.")
    if f["overage_credits"]:
        out.append(
            f"{f['overage_credits']:,} of them went beyond your credits and came from the pool "
            "the agency shares among its clients."
        )
    if f["free_reexports"]:
        out.append(f"{f['free_reexports']:,} records you exported again cost nothing.")
    if is_open:
        out.append(f"{f['closing_balance']:,} credits remain so far this month.")
    elif f["forfeited_credits"] > 0:
        out.append(
            f"{f['forfeited_credits']:,} credits were unused at month end and are forfeited: "
            "credits reset each calendar month and do not roll over."
        )
    if f["disputed_credits"]:
        out.append(
            f"We are asking the vendor to reverse {f['disputed_credits']:,} credits it charged "
            "for records you had already paid for."
        )
    return out


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def write_statements(warehouse: Path, out: Path, month: dt.date) -> list[Path]:
    """Statements for `month` under out/YYYY-MM/: <client>.html, <client>.csv, index.html
    (<client> the client_id when it is a plain name, else a safe name: transforms/filenames)."""
    month = month.replace(day=1)
    con = duckdb.connect(str(warehouse), read_only=True)
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    keys = [k for k, _ in FIELDS]
    try:
        as_of = con.sql("SELECT as_of FROM run_info").fetchall()[0][0]
        names = dict(con.sql("SELECT client_id, client_name FROM clients").fetchall())
        rows = con.execute(
            f"""
            SELECT b.vendor, b.client_id, b.is_open_month,
                   {", ".join(f"b.{k}" for k in keys if k != "disputed_credits")},
                   coalesce((SELECT sum(d.credits_disputable) FROM duplicate_reexports d
                             WHERE d.vendor = b.vendor AND d.repeat_client_id = b.client_id
                               AND date_trunc('month', d.repeat_exported_at) = b.month), 0)
                       AS disputed_credits
            FROM monthly_balances b WHERE b.month = ? ORDER BY b.client_id, b.vendor
            """,
            [month],
        ).fetchall()
        history = con.execute(
            "SELECT vendor, client_id, strftime(month, '%Y-%m'), available_credits, "
            "charged_credits FROM monthly_balances "
            "WHERE month <= ? AND month > ? - INTERVAL 12 MONTH ORDER BY vendor, client_id, month",
            [month, month],
        ).fetchall()
    finally:
        con.close()
    folder = out / f"{month:%Y-%m}"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    overview = []
    # A client_id is never a path: each client's files are named by a safe, unique stem.
    stems = file_stems({r[1] for r in rows})
    for client in sorted({r[1] for r in rows}):
        mine = [r for r in rows if r[1] == client]
        vendors = []
        is_open = any(r[2] for r in mine)
        for r in mine:
            figures = {k: int(v) for k, v in zip(keys, r[3:], strict=True)}
            vendors.append(
                VendorMonth(
                    r[0],
                    figures,
                    [(m, a, u) for v, c, m, a, u in history if v == r[0] and c == client],
                    _story(figures, month, is_open),
                )
            )
            overview.append(
                {
                    "vendor": r[0],
                    "client_id": client,
                    "client_name": names[client],
                    # A stem has no ':' or '/': the link is never a scheme or another folder.
                    "page": None if client == "unassigned" else f"{stems[client]}.html",
                    **figures,
                }
            )
        if client == "unassigned":
            continue  # nobody to send it to: shown in the agency overview only
        title = f"{names[client]}: credit statement, {month:%B %Y}"
        page = env.get_template("statement.html.j2").render(
            title=title,
            as_of=as_of,
            is_open=is_open,
            vendors=vendors,
            fields=FIELDS,
            vendor_names=VENDOR_NAMES,
        )
        html, csv_path = folder / f"{stems[client]}.html", folder / f"{stems[client]}.csv"
        html.write_text(page)
        with open(csv_path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["client", "client_name", "month", "vendor", *keys])
            for v in vendors:
                text = [client, names[client], f"{month:%Y-%m}", v.vendor]
                w.writerow([_safe_cell(x) for x in text] + [v.figures[k] for k in keys])
        written += [html, csv_path]
    index = env.get_template("overview.html.j2").render(
        title=f"All clients, {month:%B %Y} (as of {as_of})", rows=overview, fields=FIELDS
    )
    (folder / "index.html").write_text(index)
    written.append(folder / "index.html")
    return written
