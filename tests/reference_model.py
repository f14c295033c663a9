"""A plain-Python model of DOMAIN.md rules 1-4 and 9, written to be read, not to be fast.

It walks every exported record in time order and every lot by hand. The pipeline computes
the same thing set-based in DuckDB; the property tests require the two to agree.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

BURN_RANK = {"gift": 1, "baseline": 2, "earned": 3, "purchase": 4, "adjustment": 5}


def add_months(d: dt.datetime, months: int) -> dt.datetime:
    """Same calendar day `months` later, clamped to the month's last day (as DuckDB does)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return d.replace(year=year, month=month, day=min(d.day, calendar.monthrange(year, month)[1]))


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def next_month(d: dt.date) -> dt.date:
    return add_months(dt.datetime.combine(month_start(d), dt.time()), 1).date()


@dataclass
class Lot:
    lot_id: str
    client: str
    kind: str
    credits: int
    opens: dt.date
    closes: dt.date
    draws: list[tuple[dt.datetime, int]] = field(default_factory=list)

    def left_before(self, t: dt.datetime) -> int:
        return self.credits - sum(n for at, n in self.draws if at < t)


@dataclass
class Export:
    export_id: str
    user: str
    at: dt.datetime
    keys: list[str]


@dataclass
class Model:
    """Config and exports of one vendor with a monthly contract [starts, ends)."""

    starts: dt.date
    ends: dt.date
    allocations: dict[tuple[str, dt.date], int]  # (client, effective month) -> monthly credits
    gifts: list[tuple[str, str, int, dt.date, dt.date | None]]  # client, id, credits, on, expires
    users: dict[str, str]  # user -> client (no validity dates in the model)
    exports: list[Export]
    as_of: dt.date
    window_months: int = 12

    def lots(self) -> list[Lot]:
        out = []
        clients = {c for c, _ in self.allocations}
        month = month_start(self.starts)
        while month <= month_start(self.as_of) and month < self.ends:
            for client in sorted(clients):
                effective = [m for c, m in self.allocations if c == client and m <= month]
                if effective:
                    credits = self.allocations[(client, max(effective))]
                    if credits > 0 and max(month, self.starts) <= self.as_of:
                        out.append(
                            Lot(
                                f"{client}:baseline:{month:%Y-%m}",
                                client,
                                "baseline",
                                credits,
                                max(month, self.starts),
                                min(next_month(month), self.ends),
                            )
                        )
            month = next_month(month)
        for client, grant_id, credits, on, expires in self.gifts:
            if on <= self.as_of:
                out.append(
                    Lot(
                        f"{client}:gift:{grant_id}",
                        client,
                        "gift",
                        credits,
                        on,
                        expires or next_month(on),
                    )
                )
        return out

    def run(self) -> tuple[list[Lot], list[tuple[str, dt.datetime, str]]]:
        """Lots with their draws, and (client, time, 'charge'|'reexport'|'overage') events."""
        lots = self.lots()
        cutoff = dt.datetime.combine(self.as_of + dt.timedelta(days=1), dt.time())
        last_charge: dict[str, dt.datetime] = {}
        events = []
        for export in sorted(self.exports, key=lambda e: (e.at, e.export_id)):
            if export.at >= cutoff:
                continue
            client = self.users.get(export.user, "unassigned")
            for key in export.keys:
                started = last_charge.get(key)
                if started is not None and export.at < add_months(started, self.window_months):
                    events.append((client, export.at, "reexport"))
                    continue
                last_charge[key] = export.at
                open_lots = [
                    lot
                    for lot in lots
                    if lot.client == client
                    and dt.datetime.combine(lot.opens, dt.time())
                    <= export.at
                    < dt.datetime.combine(lot.closes, dt.time())
                    and lot.left_before(cutoff) > 0
                ]
                if open_lots:
                    lot = min(
                        open_lots, key=lambda lot: (lot.closes, BURN_RANK[lot.kind], lot.lot_id)
                    )
                    lot.draws.append((export.at, 1))
                    events.append((client, export.at, "consume"))
                else:
                    events.append((client, export.at, "overage"))
        return lots, events

    def monthly_balances(self) -> dict[tuple[str, dt.date], dict[str, int]]:
        lots, events = self.run()

        def at(d: dt.date) -> dt.datetime:
            return dt.datetime.combine(d, dt.time())

        cutoff = self.as_of + dt.timedelta(days=1)
        first: dict[str, dt.date] = {}
        for lot in lots:
            first[lot.client] = min(first.get(lot.client, lot.opens), month_start(lot.opens))
        for client, when, _ in events:
            first[client] = min(first.get(client, when.date()), month_start(when.date()))
        out = {}
        for client, month in sorted(first.items()):
            while month <= month_start(self.as_of):
                end = next_month(month)
                edge = min(end, cutoff)
                mine = [lot for lot in lots if lot.client == client]
                row = {
                    "baseline_credits": sum(
                        lot.credits
                        for lot in mine
                        if lot.kind == "baseline" and month_start(lot.opens) == month
                    ),
                    "gift_credits": sum(
                        lot.credits
                        for lot in mine
                        if lot.kind == "gift" and month_start(lot.opens) == month
                    ),
                    "opening_balance": sum(
                        lot.left_before(at(month)) for lot in mine if lot.opens < month < lot.closes
                    ),
                    "consumed_credits": sum(
                        1
                        for c, w, k in events
                        if c == client and k == "consume" and month_start(w.date()) == month
                    ),
                    "overage_credits": sum(
                        1
                        for c, w, k in events
                        if c == client and k == "overage" and month_start(w.date()) == month
                    ),
                    "free_reexports": sum(
                        1
                        for c, w, k in events
                        if c == client and k == "reexport" and month_start(w.date()) == month
                    ),
                    # Forfeited at expiry (on or before as-of), counted in the last valid day's month.
                    "forfeited_credits": sum(
                        lot.left_before(at(lot.closes))
                        for lot in mine
                        if lot.closes <= self.as_of
                        and month_start(lot.closes - dt.timedelta(days=1)) == month
                    ),
                    "closing_balance": sum(
                        lot.left_before(at(edge))
                        for lot in mine
                        if lot.opens < edge and (lot.closes > edge or lot.closes >= cutoff)
                    ),
                }
                row["available_credits"] = (
                    row["opening_balance"] + row["baseline_credits"] + row["gift_credits"]
                )
                row["charged_credits"] = row["consumed_credits"] + row["overage_credits"]
                out[(client, month)] = row
                month = end
        return out
