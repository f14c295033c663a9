"""Month-end reconciliation statements: one self-contained HTML page and one CSV per client
and month (and a PDF of the page on request), and an agency overview page. Read from the
published warehouse only.

A page works with no network: styles inline, the chart drawn as inline SVG, the agency's
logo a data: URI. A client's page and CSV hold only that client's figures. CSV text cells
that a spreadsheet would run as a formula (starting with =, +, - or @) are written as text.

A closed month's statement is the document issued at the close: the close renders it and
keeps its bytes (``closed_statements``, with their sha256), and every later call writes those
bytes again, whatever came since (late files, a client renamed, a grant added, a new version
of this module). An issued statement a client has received never changes; what came late is
explained in the first open month's statement.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from schemas.inputs import VENDORS
from schemas.parse import vendor_rules
from transforms.close import IssuedStatement
from transforms.csvsafe import csv_text
from transforms.filenames import file_stems
from transforms.settings import Agency, logo_data_uri

TEMPLATES = Path(__file__).parent / "templates"

FIELDS = [
    ("baseline_credits", "Standard monthly allocation"),
    ("gift_credits", "One-time gift (not part of the standard allocation)"),
    ("purchased_credits", "Purchased credits"),
    ("earned_credits", "Earned credits"),
    ("opening_balance", "Carried in from earlier months"),
    ("available_credits", "Available this month"),
    ("charged_credits", "Used (charged)"),
    ("overage_credits", "Used beyond your credits (drawn from the shared pool)"),
    ("reversed_credits", "Given back by the vendor (charges it reversed)"),
    ("free_reexports", "Re-exports at no charge"),
    ("forfeited_credits", "Forfeited at month end (credits do not roll over)"),
    ("closing_balance", "Remaining"),
    ("late_charged_credits", "Late charges for an earlier, closed month"),
    ("disputed_credits", "Credits in dispute with the vendor"),
]
# A figure below 0 is a late correction of a closed month, and reads as one.
NEGATIVE = {
    "forfeited_credits": "Forfeited credits given back (used late, for a closed month)",
}
# Shown even when 0: what a client always asks (what I had, what I used, what is left).
ALWAYS_SHOWN = {"available_credits", "charged_credits", "closing_balance"}
# Column heads of the agency overview (a landscape page holds these, not the full labels).
SHORT = {
    "baseline_credits": "Standard",
    "gift_credits": "Gift",
    "purchased_credits": "Purchased",
    "earned_credits": "Earned",
    "opening_balance": "Carried in",
    "available_credits": "Available",
    "charged_credits": "Used",
    "overage_credits": "Overage",
    "reversed_credits": "Reversed",
    "free_reexports": "Free re-exports",
    "forfeited_credits": "Forfeited",
    "closing_balance": "Remaining",
    "late_charged_credits": "Late",
    "disputed_credits": "Disputed",
}
CHART_MONTHS = 12  # at most this many months, the statement's and those before it


def vendor_name(vendor: str) -> str:
    """A vendor as clients know it (every page and sentence reads it from here): the name in
    its header TOML's [vendor]; a vendor this version has no adapter for keeps its id."""
    if vendor not in VENDORS:
        return vendor
    return vendor_rules(vendor).name


@dataclass
class Bar:
    cls: str  # available, gift, used, overage, forfeited
    month: str  # YYYY-MM
    x: float
    y: float
    width: float
    height: float
    value: int  # what the bar stands for (its stack's total is labelled above it)


@dataclass
class Chart:
    title: str
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, float, str]]  # value labels above the bars: (x, y, text)
    ticks: list[tuple[float, str]]  # y axis: (y, label)
    months: list[tuple[float, str, str]]  # (x, "Oct", "2025") under each month's bars
    plot_left: int
    plot_right: int
    base: float
    legend: list[tuple[str, str]]  # (class, words)


@dataclass
class VendorMonth:
    vendor: str
    name: str
    figures: dict[str, int]
    rows: list[tuple[str, str, int]]  # (field, label, value): the rows worth showing
    sentences: list[str]
    late: list[str]  # what came late for a closed month, in words
    chart: Chart | None
    users: list[dict[str, object]] = field(default_factory=list)
    exports: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Statement:
    """A client's statement for a month, as written (the bytes the close keeps)."""

    client_id: str
    file_name: str  # <stem>.html
    html: str
    csv: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.html.encode()).hexdigest()


def fmt(n: int | float | Decimal) -> str:
    """A figure as a client reads it: thousands separated."""
    return f"{n:,}"


def _day(d: dt.date) -> str:
    return f"{d.day} {d:%B %Y}"


def _story(f: dict[str, int], month: dt.date, is_open: bool, cross_free: int) -> list[str]:
    """The month in words, the way the agency explains it to a client."""
    out = []
    if f["baseline_credits"]:
        out.append(f"Your standard allocation is {f['baseline_credits']:,} credits a month.")
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
    if f["reversed_credits"]:
        out.append(
            f"The vendor reversed {f['reversed_credits']:,} of the credits it charged: they "
            "went back to your credits."
        )
    own_free = f["free_reexports"] - cross_free
    if own_free > 0:
        out.append(
            f"{own_free:,} records you exported again cost nothing: you had already paid for "
            "them within the re-export window."
        )
    if cross_free > 0:
        out.append(
            f"{cross_free:,} records cost you nothing because another client of the agency "
            "had already paid for them: the vendor charges the agency once per record."
        )
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


def _late_story(
    late: list[tuple[dt.date, int, int, int]], closed_on: dict[dt.date, dt.date]
) -> list[str]:
    """Entries booked this month for a closed month, in words: (month, charged, of which
    overage, forfeit correction)."""
    out = []
    for month, charged, overage, forfeit in late:
        when = f" on {_day(closed_on[month])}" if month in closed_on else ""
        text = (
            f"{charged:,} of the credits used this month are for exports made in "
            f"{month:%B %Y}, which reached us after {month:%B} was closed{when}; they are "
            f"counted here, and the final {month:%B} statement stands as it was issued."
        )
        if forfeit < 0:
            text += (
                f" {-forfeit:,} of them came from {month:%B}'s credits that had been counted as "
                "forfeited, so forfeited credits this month show them given back"
                f" ({forfeit:,})."
            )
        if overage > 0:
            text += f" {overage:,} went beyond your credits."
        out.append(text)
    return out


def _step(peak: int) -> int:
    """A round tick step giving at most five ticks up to ``peak``."""
    raw = max(peak, 1) / 5
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return max(1, int(m * power))
    return int(10 * power)


def chart(history: list[dict[str, Any]]) -> Chart | None:
    """Credits per month over the months that exist (up to CHART_MONTHS): available (the
    gift stacked apart), used (overage stacked apart) and forfeited, with an axis, values
    and month names."""
    if not history:
        return None
    left, top, plot_h = 58, 22, 180
    # Drawn at least 640 wide (and shown no larger than drawn), so few months keep the
    # proportions of many.
    group = max(80.0, (640 - left - 12) / len(history))
    bar, gap = min(34.0, group / 4), 4
    width = round(left + group * len(history) + 12)
    base = top + plot_h
    peak = max(max(int(h["available"]), int(h["used"]), int(h["forfeited"])) for h in history)
    step = _step(peak)
    axis_top = max(step, math.ceil(max(peak, 1) / step) * step)

    def y(v: float) -> float:
        return round(base - plot_h * v / axis_top, 1)

    bars: list[Bar] = []
    labels: list[tuple[float, float, str]] = []
    months: list[tuple[float, str, str]] = []
    for i, h in enumerate(history):
        m = str(h["month"])
        x0 = left + i * group + (group - 3 * bar - 2 * gap) / 2
        stacks = [
            [("available", int(h["available"]) - int(h["gift"])), ("gift", int(h["gift"]))],
            [("used", int(h["used"]) - int(h["overage"])), ("overage", int(h["overage"]))],
            [("forfeited", int(h["forfeited"]))],
        ]
        for j, stack in enumerate(stacks):
            x = round(x0 + j * (bar + gap), 1)
            below = 0
            for cls, value in stack:
                if value > 0:
                    height = round(y(below) - y(below + value), 1)
                    bars.append(Bar(cls, m, x, y(below + value), bar, height, value))
                below += max(value, 0)
            # The stack's figure as booked (a late correction can make a month's forfeit
            # negative: drawn as nothing, labelled as it is).
            labels.append((round(x + bar / 2, 1), y(below) - 4, fmt(sum(v for _, v in stack))))
        day = dt.date.fromisoformat(m + "-01")
        months.append((round(left + i * group + group / 2, 1), f"{day:%b}", f"{day:%Y}"))
    ticks = [(y(v), fmt(v)) for v in range(0, axis_top + 1, step)]
    first = dt.date.fromisoformat(str(history[0]["month"]) + "-01")
    last = dt.date.fromisoformat(str(history[-1]["month"]) + "-01")
    span = f"{last:%B %Y}" if first == last else f"{first:%B %Y} to {last:%B %Y}"
    legend = [
        ("available", "available"),
        ("gift", "of which a one-time gift"),
        ("used", "used"),
        ("overage", "of which beyond your credits"),
        ("forfeited", "forfeited"),
    ]
    present = {b.cls for b in bars} | {"available", "used"}
    return Chart(
        title=f"Credits by month, {span}",
        width=width,
        height=base + 40,
        bars=bars,
        labels=labels,
        ticks=ticks,
        months=months,
        plot_left=left,
        plot_right=width - 8,
        base=base,
        legend=[item for item in legend if item[0] in present],
    )


def statement_csv(
    client: str,
    name: str,
    month: dt.date,
    vendors: list[VendorMonth],
    money: list[dict[str, object]],
) -> str:
    """The statement's figures as CSV: a row per vendor, every field, and what the client
    owes for the vendor's credits (the sum of its invoice lines; empty when not billed)."""
    keys = [k for k, _ in FIELDS]
    header = ["client", "client_name", "month", "vendor", *keys, "amount_due", "currency"]
    rows = []
    for v in vendors:
        lines = [line for line in money if line["vendor"] == v.vendor]
        due = ["", ""]
        if lines:
            ((currency, total),) = _sums(lines).items()  # one vendor's prices share a currency
            due = [f"{total:.2f}", currency]
        rows.append([client, name, f"{month:%Y-%m}", v.vendor, *(v.figures[k] for k in keys), *due])
    return csv_text([header, *rows])


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
            [name],
        ).fetchall()[0][0]
    )


def _dicts(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object]
) -> list[dict[str, object]]:
    rel = con.execute(sql, params)
    names = [d[0] for d in rel.description]
    return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]


USAGE_BY_USER = """
    SELECT vendor, client_id, coalesce("user", '(no user)') AS "user",
           count(DISTINCT CASE WHEN entry_type IN ('consume', 'overage') THEN record_key END)
               AS records,
           coalesce(sum(CASE WHEN entry_type IN ('consume', 'overage') THEN credits END), 0)::BIGINT
               AS credits,
           count(DISTINCT CASE WHEN entry_type = 'reexport' THEN record_key END) AS free
    FROM ledger_entries
    WHERE booking_month = ? AND entry_type IN ('consume', 'overage', 'reexport')
    GROUP BY ALL ORDER BY vendor, client_id, credits DESC, "user"
"""
# An export as the vendor names it; a vendor with no export ids (purchase logs, usage
# tables) by the day and user.
USAGE_BY_EXPORT = """
    SELECT vendor, client_id,
           export_id AS export,
           min(effective_at)::DATE AS day, string_agg(DISTINCT "user", ', ') AS users,
           count(DISTINCT CASE WHEN entry_type IN ('consume', 'overage') THEN record_key END)
               AS records,
           coalesce(sum(CASE WHEN entry_type IN ('consume', 'overage') THEN credits END), 0)::BIGINT
               AS credits,
           count(DISTINCT CASE WHEN entry_type = 'reexport' THEN record_key END) AS free,
           bool_or(late_for_month IS NOT NULL) AS late
    FROM ledger_entries
    WHERE booking_month = ? AND entry_type IN ('consume', 'overage', 'reexport')
    GROUP BY vendor, client_id, export_id,
             CASE WHEN export_id IS NULL THEN effective_at::DATE END,
             CASE WHEN export_id IS NULL THEN "user" END
    ORDER BY vendor, client_id, day, export, users
"""


def _money(con: duckdb.DuckDBPyConnection, month: dt.date) -> dict[str, list[dict[str, object]]]:
    """invoice_lines of the month by client, when the warehouse has them."""
    if not _has_table(con, "invoice_lines"):
        return {}
    lines = _dicts(
        con,
        "SELECT * FROM invoice_lines WHERE month = ? ORDER BY client_id, vendor, line_no",
        [month],
    )
    out: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        out.setdefault(str(line["client_id"]), []).append(line)
    return out


def _sums(lines: list[dict[str, object]]) -> dict[str, Decimal]:
    """What the lines add up to, per currency."""
    sums: dict[str, Decimal] = {}
    for line in lines:
        currency = str(line["currency"])
        sums[currency] = sums.get(currency, Decimal(0)) + Decimal(str(line["amount"]))
    return sums


def _totals(lines: list[dict[str, object]]) -> list[tuple[str, str]]:
    """(currency, total) of a client's lines, one per currency, as shown."""
    sums = _sums(lines)
    return [(c, f"{sums[c]:,.2f}") for c in sorted(sums)]


def status_line(
    closed_at: dt.datetime | dt.date | None, is_open: bool, ended: bool, as_of: dt.date
) -> tuple[str, str]:
    """(final | provisional, the words at the top of the statement). ``closed_at``: when the
    month was closed, if it is."""
    if isinstance(closed_at, dt.datetime):
        closed_at = closed_at.date()
    if closed_at is not None:
        return "final", f"Final, closed on {_day(closed_at)}"
    if is_open:
        return "provisional", f"Provisional: figures to date (as of {_day(as_of)})"
    if ended:
        return "provisional", (
            "Provisional: the month has ended but is not closed yet, and files that arrive "
            f"late can still change it (as of {_day(as_of)})"
        )
    return "provisional", f"Provisional (as of {_day(as_of)})"


@dataclass
class Rendered:
    statements: list[Statement]
    index_html: str


def render_statements(
    warehouse: Path,
    month: dt.date,
    agency: Agency | None = None,
    closed_at: dt.datetime | None = None,
) -> Rendered:
    """Every client's statement of ``month`` and the overview, from the warehouse as it is.
    ``closed_at``: the month is being closed at that time (its statements are Final)."""
    month = month.replace(day=1)
    agency = agency or Agency()
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    env.filters["n"] = fmt
    keys = [k for k, _ in FIELDS]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        as_of, zone = con.sql("SELECT as_of, reporting_timezone FROM run_info").fetchall()[0]
        names = dict(con.sql("SELECT client_id, client_name FROM clients").fetchall())
        rows = con.execute(
            f"""
            SELECT b.vendor, b.client_id, b.is_open_month, b.is_closed,
                   {", ".join(f"b.{k}" for k in keys if k != "disputed_credits")},
                   coalesce((SELECT sum(d.credits_disputable) FROM duplicate_reexports d
                             WHERE d.vendor = b.vendor AND d.repeat_client_id = b.client_id
                               AND date_trunc('month', d.repeat_exported_at) = b.month), 0)
                       AS disputed_credits,
                   (SELECT count(*) FROM duplicate_reexports d
                    WHERE d.vendor = b.vendor AND d.repeat_client_id = b.client_id
                      AND d.month = b.month AND d.kind = 'free_reexport' AND d.cross_client)
                       AS cross_free
            FROM monthly_balances b WHERE b.month = ? ORDER BY b.client_id, b.vendor
            """,
            [month],
        ).fetchall()
        history = _dicts(
            con,
            "SELECT vendor, client_id, strftime(month, '%Y-%m') AS month, available_credits "
            "AS available, gift_credits AS gift, charged_credits AS used, overage_credits AS "
            "overage, forfeited_credits AS forfeited FROM monthly_balances "
            "WHERE month <= ? AND month > ? - INTERVAL (?) MONTH ORDER BY vendor, client_id, month",
            [month, month, CHART_MONTHS],
        )
        late = con.execute(
            """
            SELECT vendor, client_id, late_for_month,
                   sum(CASE WHEN entry_type IN ('consume', 'overage') THEN credits ELSE 0 END),
                   sum(CASE WHEN entry_type = 'overage' THEN credits ELSE 0 END),
                   sum(CASE WHEN entry_type = 'forfeit' THEN credits ELSE 0 END)
            FROM ledger_entries WHERE booking_month = ? AND late_for_month IS NOT NULL
            GROUP BY ALL ORDER BY ALL
            """,
            [month],
        ).fetchall()
        closed_at_of = (
            dict(
                con.sql("SELECT month, max(closed_at) FROM closed_statements GROUP BY 1").fetchall()
            )
            if _has_table(con, "closed_statements")
            else {}
        )
        users = _dicts(con, USAGE_BY_USER, [month])
        exports = _dicts(con, USAGE_BY_EXPORT, [month])
        money = _money(con, month)
    finally:
        con.close()
    ended = as_of >= (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)

    # When a month was closed, as a day in the reporting time zone (closed_at is UTC).
    def local_day(at: dt.datetime) -> dt.date:
        return at.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone)).date()

    closed_on = {m: local_day(at) for m, at in closed_at_of.items()}
    closed: dt.date | None = local_day(closed_at) if closed_at else closed_on.get(month)
    # A month closed before its statements were kept is final all the same.
    legacy = closed is None and bool(rows) and all(r[3] for r in rows)
    logo = logo_data_uri(agency.logo) if agency.logo else None
    statements: list[Statement] = []
    overview: list[dict[str, Any]] = []
    # A client_id is never a path: each client's files are named by a safe, unique stem.
    stems = file_stems({r[1] for r in rows})
    for client in sorted({r[1] for r in rows}):
        mine = [r for r in rows if r[1] == client]
        vendors = []
        is_open = any(r[2] for r in mine)
        for r in mine:
            vendor = r[0]
            figures = {k: int(v) for k, v in zip(keys, r[4:-1], strict=True)}
            past = [h for h in history if h["vendor"] == vendor and h["client_id"] == client]
            late_here = [
                (m, int(c), int(o), int(f))
                for v, cl, m, c, o, f in late
                if v == vendor and cl == client
            ]
            vendors.append(
                VendorMonth(
                    vendor=vendor,
                    name=vendor_name(vendor),
                    figures=figures,
                    rows=[
                        (k, NEGATIVE.get(k, label) if figures[k] < 0 else label, figures[k])
                        for k, label in FIELDS
                        if figures[k] != 0 or k in ALWAYS_SHOWN
                    ],
                    sentences=_story(figures, month, is_open, int(r[-1])),
                    late=_late_story(late_here, closed_on),
                    chart=chart(past),
                    users=[u for u in users if u["vendor"] == vendor and u["client_id"] == client],
                    exports=[
                        e for e in exports if e["vendor"] == vendor and e["client_id"] == client
                    ],
                )
            )
            if client == "unassigned" and not any(figures.values()):
                continue  # no export by an unknown user this month: nothing to show
            overview.append(
                {
                    "vendor": vendor,
                    "vendor_name": vendor_name(vendor),
                    "client_id": client,
                    "client_name": names[client],
                    # A stem has no ':' or '/': the link is never a scheme or another folder.
                    "page": None if client == "unassigned" else f"{stems[client]}.html",
                    **figures,
                }
            )
        if client == "unassigned":
            continue  # nobody to send it to: shown in the agency overview only
        kind, status = status_line(closed, is_open, ended, as_of)
        if legacy:
            kind, status = "final", "Final: the month is closed"
        lines = money.get(client, [])
        page = env.get_template("statement.html.j2").render(
            title=f"{names[client]}: credit statement, {month:%B %Y}",
            client_name=names[client],
            month=f"{month:%B %Y}",
            status_kind=kind,
            status=status,
            agency=agency,
            logo=logo,
            vendors=vendors,
            money=lines,
            money_totals=_totals(lines),
        )
        statements.append(
            Statement(
                client,
                f"{stems[client]}.html",
                page,
                statement_csv(client, names[client], month, vendors, lines),
            )
        )
    # Credits of different vendors are different units: a total per vendor.
    totals = {
        v: {k: sum(int(r[k]) for r in overview if r["vendor"] == v) for k in keys}
        for v in {r["vendor"] for r in overview}
    }
    kind, status = status_line(closed, any(r[2] for r in rows), ended, as_of)
    if legacy:
        kind, status = "final", "Final: the month is closed"
    index = env.get_template("overview.html.j2").render(
        title=f"All clients, {month:%B %Y} (as of {as_of})",
        status_kind=kind,
        status=status,
        agency=agency,
        rows=overview,
        totals=totals,
        fields=FIELDS,
        short=SHORT,
    )
    return Rendered(statements, index)


def issue_statements(
    warehouse: Path, month: dt.date, agency: Agency | None, closed_at: dt.datetime, pdf: bool
) -> tuple[list[IssuedStatement], str]:
    """The statements the close of ``month`` issues, rendered from the warehouse built just
    before it, with their PDFs if ``pdf`` and Chromium prints them; and if not, why."""
    from transforms.statement_pdf import ChromiumMissing, pdf_bytes

    rendered = render_statements(warehouse, month, agency, closed_at)
    pdfs: list[bytes | None] = [None] * len(rendered.statements)
    why = ""
    if pdf:
        try:
            pdfs = list(pdf_bytes([s.html for s in rendered.statements]))
        except ChromiumMissing as exc:  # a close is never refused for want of a browser
            why = str(exc)
    issued = [
        IssuedStatement(s.client_id, s.file_name, s.html, s.csv, p)
        for s, p in zip(rendered.statements, pdfs, strict=True)
    ]
    return issued, why


class ClosingStatements:
    """What the close of ``month`` issues (``close_month``'s ``issue``); after the close,
    ``why_no_pdf`` says why its statements have no PDFs ("" when they have)."""

    def __init__(self, warehouse: Path, month: dt.date, agency: Agency | None) -> None:
        from transforms.statement_pdf import ChromiumMissing, chromium

        self.warehouse, self.month, self.agency = warehouse, month, agency
        try:
            chromium()
            self.why_no_pdf = ""
        except ChromiumMissing as exc:
            self.why_no_pdf = str(exc)

    def __call__(self, closed_at: dt.datetime) -> list[IssuedStatement]:
        issued, why = issue_statements(
            self.warehouse, self.month, self.agency, closed_at, not self.why_no_pdf
        )
        self.why_no_pdf = self.why_no_pdf or why
        return issued


def issued_statements(warehouse: Path, month: dt.date) -> dict[str, IssuedStatement]:
    """The statements the close of ``month`` issued, by client."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if not _has_table(con, "closed_statements"):
            return {}
        got = con.execute(
            "SELECT client_id, file_name, document, csv, pdf FROM closed_statements "
            "WHERE month = ?",
            [month.replace(day=1)],
        ).fetchall()
    finally:
        con.close()
    return {r[0]: IssuedStatement(*r) for r in got}


def write_statements(
    warehouse: Path,
    out: Path,
    month: dt.date,
    agency: Agency | None = None,
    pdf: bool = False,
) -> list[Path]:
    """Statements for `month` under out/YYYY-MM/: <client>.html, <client>.csv (and
    <client>.pdf with ``pdf``), index.html (<client> the client_id when it is a plain name,
    else a safe name: transforms/filenames). A statement the close issued is written as
    issued, byte for byte."""
    month = month.replace(day=1)
    rendered = render_statements(warehouse, month, agency)
    issued = issued_statements(warehouse, month)
    folder = out / f"{month:%Y-%m}"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    to_print: list[tuple[str, Path]] = []
    for fresh in rendered.statements:
        s = issued.get(fresh.client_id) or IssuedStatement(
            fresh.client_id, fresh.file_name, fresh.html, fresh.csv, None
        )
        html = folder / s.file_name
        html.write_text(s.html)
        html.with_suffix(".csv").write_text(s.csv, newline="")
        written += [html, html.with_suffix(".csv")]
        if pdf and s.pdf is not None:
            html.with_suffix(".pdf").write_bytes(s.pdf)  # as issued
            written.append(html.with_suffix(".pdf"))
        elif pdf:
            to_print.append((s.html, html.with_suffix(".pdf")))
    (folder / "index.html").write_text(rendered.index_html)
    written.append(folder / "index.html")
    if to_print:
        from transforms.statement_pdf import write_pdfs

        write_pdfs(to_print)
        written += [p for _, p in to_print]
    return written
