"""What a run did, read back from the published warehouse: printed by the command, kept as
the flow run's Markdown artifact, and answered by `creditrecon status`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flows.preflight import contract_span
from transforms.alerts import AlertNight


@dataclass(frozen=True)
class FileRow:
    path: str
    status: str
    read: int
    loaded: int
    quarantined: int

    @property
    def problem(self) -> bool:
        return bool(self.quarantined) or self.status not in ("loaded", "unchanged")


CLIENT_COLUMNS = (
    "vendor",
    "client",
    "available",
    "charged",
    "overage",
    "remaining",
    "forfeited",
    "free re-exports",
    "pace: month-end use",
    "to forfeit",
    "over",
    "needed a day",
)


@dataclass
class Summary:
    warehouse: Path
    as_of: dt.date
    built: str
    files: list[FileRow] = field(default_factory=list)
    totals: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    reasons: list[tuple[str, int]] = field(default_factory=list)
    clients: list[tuple[object, ...]] = field(default_factory=list)
    reconciliation: str = ""
    notes: list[str] = field(default_factory=list)
    alerts: AlertNight = field(default_factory=AlertNight)

    @property
    def nothing_new(self) -> bool:
        return self.built.startswith("nothing new")

    @property
    def month(self) -> dt.date:
        return self.as_of.replace(day=1)

    def nothing_new_line(self) -> str:
        return f"Nothing new since the last run: the warehouse as of {self.as_of} is unchanged."


def read_summary(
    warehouse: Path, as_of: dt.date, built: str, data: Path | None = None, as_of_given: bool = True
) -> Summary:
    s = Summary(warehouse, as_of, built)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        s.files = [
            FileRow(*r)
            for r in con.sql(
                "SELECT path, status, rows_read, rows_loaded, rows_quarantined FROM "
                "ingest_manifest WHERE status <> 'superseded' ORDER BY source, path"
            ).fetchall()
        ]
        s.totals = con.execute(
            "SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(rows_quarantined), 0), count(*) FILTER (WHERE status = 'duplicate') "
            "FROM ingest_manifest WHERE status <> 'superseded'"
        ).fetchall()[0]
        s.reasons = con.sql(
            "SELECT regexp_replace(regexp_replace(reason, '\"[^\"]*\"', '\"...\"', 'g'), "
            "' \\(e\\.g\\. [^)]*\\)', '', 'g') AS r, count(*) "
            "FROM quarantine GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8"
        ).fetchall()
        s.clients = con.execute(
            "SELECT b.vendor, b.client_id, b.available_credits, b.charged_credits, "
            "b.overage_credits, b.closing_balance, b.forfeited_credits, b.free_reexports, "
            "p.projected_use, p.projected_forfeit, p.projected_overage, p.daily_pace_needed "
            "FROM monthly_balances b LEFT JOIN pace_forecast p USING (vendor, client_id, month) "
            "WHERE b.month = ? AND b.available_credits + b.charged_credits + b.closing_balance "
            "+ b.forfeited_credits + b.free_reexports > 0 ORDER BY b.vendor, b.client_id",
            [s.month],
        ).fetchall()
        off, disputable = con.execute(
            "SELECT (SELECT count(*) FROM vendor_reconciliation WHERE variance <> 0 "
            "OR reason NOT LIKE 'reconciled%'), (SELECT coalesce(sum(credits_to_reverse), 0) "
            "FROM disputes)"
        ).fetchall()[0]
        s.reconciliation = (
            f"Vendor reconciliation: {off} vendor-user-months with a difference or a flag "
            f"(vendor_reconciliation); {disputable} credits to dispute "
            f"(disputes, {warehouse.stem}-disputes/)."
        )
        (newest,) = con.sql("SELECT max(day) FROM daily_charges").fetchall()[0]
    finally:
        con.close()
    if not as_of_given:
        s.notes.extend(default_as_of_notes(as_of, newest, contract_span(data) if data else None))
    return s


def default_as_of_notes(
    as_of: dt.date, newest: dt.date | None, span: tuple[dt.date, dt.date] | None
) -> list[str]:
    """Say so when today, the default as-of, lies past the data: open credits are then
    forfeited and the client table of the month is empty, which is rarely what was meant."""
    notes = []
    if span is not None and as_of >= span[1]:
        notes.append(
            f"As of {as_of} (today, the default): every contract has ended (the last on "
            f"{span[1] - dt.timedelta(days=1)}), so every open credit counts as forfeited; "
            "pass --as-of to run as of an earlier day."
        )
    if newest is not None and as_of.replace(day=1) > newest.replace(day=1):
        notes.append(
            f"As of {as_of} (today, the default): the newest export is of {newest}, "
            f"so {as_of:%B %Y} has no charges yet; pass --as-of to run as of an earlier day."
        )
    return notes


def alert_lines(s: Summary) -> list[str]:
    """The night's alerts: each raised, then how delivery went (a failure is in notes)."""
    a = s.alerts
    if not a.raised and not a.delivered:
        return []
    lines = [f"{len(a.raised)} new alert{'s' if len(a.raised) != 1 else ''} (alerts):"]
    lines += [f"- {m}" for m in a.raised]
    if a.delivered:
        lines.append(f"{a.delivered} delivered.")
    return lines


def markdown(s: Summary) -> str:
    """The run summary as the flow run's artifact (every file, for the record)."""
    if s.nothing_new:
        warning = [f"> {s.alerts.warning}"] if s.alerts.warning else []
        return "\n".join([s.nothing_new_line(), *warning, ""])
    out = [f"# creditrecon, as of {s.as_of}", "", f"Warehouse `{s.warehouse}`: {s.built}.", ""]
    out += [f"> {note}" for note in s.notes]
    n, read, loaded, quarantined, duplicates = s.totals
    out += [
        "",
        f"{n} files, {read} rows read: {loaded} loaded, {quarantined} quarantined; "
        f"{duplicates} duplicate files skipped.",
        "",
    ]
    out += ["| file | status | read | loaded | quarantined |", "|---|---|---:|---:|---:|"]
    out += [f"| {f.path} | {f.status} | {f.read} | {f.loaded} | {f.quarantined} |" for f in s.files]
    if s.reasons:
        out += ["", "| quarantined | reason |", "|---:|---|"]
        out += [f"| {n} | {reason} |" for reason, n in s.reasons]
    out += ["", f"## Clients, {s.month:%B %Y} as of {s.as_of}", ""]
    out += ["| " + " | ".join(CLIENT_COLUMNS) + " |", "|---|---|" + "---:|" * 10]
    out += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in s.clients]
    out += ["", s.reconciliation, ""]
    if alert_lines(s):
        out += ["## Alerts", "", *alert_lines(s), ""]
    return "\n".join(out)
