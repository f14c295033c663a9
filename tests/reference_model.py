"""A plain-Python model of DOMAIN.md rules 1-6, 9 and 12, written to be read, not to be fast.

It walks every event (exported record, reversal) in time order and every lot by hand.
The pipeline computes the same thing set-based in DuckDB; the property tests require the
two to agree on every ledger movement and every monthly balance.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

BURN_RANK = {"gift": 1, "baseline": 2, "earned": 3, "purchase": 4, "adjustment": 5}
VENDOR = "zoominfo"


def add_months(d: dt.datetime, months: int) -> dt.datetime:
    """Same calendar day `months` later, clamped to the month's last day (as DuckDB does)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return d.replace(year=year, month=month, day=min(d.day, calendar.monthrange(year, month)[1]))


def midnight(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time())


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def next_month(d: dt.date) -> dt.date:
    return add_months(midnight(month_start(d)), 1).date()


@dataclass
class Lot:
    lot_id: str
    client: str
    kind: str
    credits: int
    opens: dt.date
    closes: dt.date
    # (when, credits): + drawn by a charge, - given back by a reversal while open
    draws: list[tuple[dt.datetime, int]] = field(default_factory=list)

    def left_before(self, t: dt.datetime) -> int:
        return self.credits - sum(n for at, n in self.draws if at < t)

    def is_open(self, t: dt.datetime) -> bool:
        return midnight(self.opens) <= t < midnight(self.closes)


@dataclass
class Export:
    export_id: str
    user: str
    at: dt.datetime
    keys: list[str]


@dataclass
class Grant:
    client: str
    grant_id: str
    kind: str
    credits: int
    on: dt.date
    expires: dt.date | None = None


@dataclass
class Reversal:
    ticket: str
    reference: str
    credits: int
    on: dt.date


@dataclass
class Charge:
    export_id: str
    row: int
    key: str
    client: str
    at: dt.datetime
    lot: Lot | None = None  # None: overage
    reversed: bool = False


@dataclass
class Model:
    """Config and exports of one vendor with one contract [starts, ends)."""

    starts: dt.date
    ends: dt.date
    allocations: dict[tuple[str, dt.date], int]  # (client, effective month) -> credits
    users: dict[str, str]  # user -> client (no validity dates in the model)
    exports: list[Export]
    as_of: dt.date
    grants: list[Grant] = field(default_factory=list)
    reversals: list[Reversal] = field(default_factory=list)
    window_months: int = 12
    reset: str = "monthly"  # or "none": one lot per client for the contract
    pool_credits: int = 100
    cap_credits: int | None = None

    # -- rule 1 ---------------------------------------------------------------------------

    def lots(self) -> list[Lot]:
        out = []
        clients = sorted({c for c, _ in self.allocations})
        if self.reset == "monthly":
            month = month_start(self.starts)
            while month <= month_start(self.as_of) and month < self.ends:
                for client in clients:
                    effective = [m for c, m in self.allocations if c == client and m <= month]
                    opens = max(month, self.starts)
                    if effective and opens <= self.as_of:
                        credits = self.allocations[(client, max(effective))]
                        if credits > 0:
                            out.append(
                                Lot(
                                    f"{VENDOR}:{client}:baseline:{month:%Y-%m}",
                                    client,
                                    "baseline",
                                    credits,
                                    opens,
                                    min(next_month(month), self.ends),
                                )
                            )
                month = next_month(month)
        else:
            for client in clients:
                months = [m for c, m in self.allocations if c == client and m < self.ends]
                if not months:
                    continue
                opens = max(self.starts, min(months))
                in_force = [m for c, m in self.allocations if c == client and m <= opens]
                credits = self.allocations[(client, max(in_force))]
                if credits > 0 and opens <= self.as_of:
                    out.append(
                        Lot(
                            f"{VENDOR}:{client}:baseline:C",
                            client,
                            "baseline",
                            credits,
                            opens,
                            self.ends,
                        )
                    )
        for g in self.grants:
            if g.on > self.as_of:
                continue
            default = (
                add_months(midnight(g.on), 12).date()
                if g.kind in ("purchase", "earned")
                else next_month(g.on)
            )
            out.append(
                Lot(
                    f"{VENDOR}:{g.client}:{g.kind}:{g.grant_id}",
                    g.client,
                    g.kind,
                    g.credits,
                    g.on,
                    g.expires or default,
                )
            )
        return out

    # -- rules 2, 3 and 5, event by event ---------------------------------------------------

    def run(self) -> tuple[list[Lot], list[tuple[str, ...]], list[tuple[object, ...]]]:
        """Lots with their draws, movements (client, month, type, lot_id, credits, export,
        key) and refused reversals."""
        lots = self.lots()
        cutoff = midnight(self.as_of + dt.timedelta(days=1))
        charges: list[Charge] = []
        moves: list[tuple[str, ...]] = []
        last_charge: dict[str, dt.datetime] = {}
        events: list[tuple[dt.datetime, int, object]] = []
        for export in self.exports:
            if export.at < cutoff:
                events.extend((export.at, 1, (export, row)) for row in range(len(export.keys)))
        refused, applied = self._check_reversals()
        events.extend((midnight(r.on), 0, r) for r in applied)
        order = {
            e.export_id: i
            for i, e in enumerate(sorted(self.exports, key=lambda e: (e.at, e.export_id)))
        }

        def key(ev: tuple[dt.datetime, int, object]) -> tuple[object, ...]:
            at, kind, obj = ev
            if isinstance(obj, tuple):
                # Records of one export are charged in record key order (ledger.mark_charges).
                return (at, kind, order[obj[0].export_id], obj[0].keys[obj[1]], obj[1])
            assert isinstance(obj, Reversal)
            return (at, kind, obj.on, obj.ticket)

        for at, _, obj in sorted(events, key=key):
            month = month_start(at.date()).isoformat()
            if isinstance(obj, Reversal):
                for charge in self._undo(obj, charges):
                    if charge.lot is None:
                        moves.append((charge.client, month, "reverse", "pool", 1, obj.ticket))
                    elif charge.lot.is_open(at):
                        charge.lot.draws.append((at, -1))
                        moves.append(
                            (charge.client, month, "reverse", charge.lot.lot_id, 1, obj.ticket)
                        )
                    else:
                        moves.append(
                            (charge.client, month, "reverse", charge.lot.lot_id, 1, obj.ticket)
                        )
                        moves.append(
                            (charge.client, month, "forfeit", charge.lot.lot_id, 1, obj.ticket)
                        )
                continue
            export, row = obj
            client = self.users.get(export.user, "unassigned")
            record = export.keys[row]
            started = last_charge.get(record)
            if started is not None and at < add_months(started, self.window_months):
                moves.append((client, month, "reexport", "-", 0, export.export_id, record))
                continue
            last_charge[record] = at
            open_lots = [
                lot
                for lot in lots
                if lot.client == client and lot.is_open(at) and lot.left_before(cutoff) > 0
            ]
            charge = Charge(export.export_id, row, record, client, at)
            if open_lots:
                charge.lot = min(
                    open_lots, key=lambda lot: (lot.closes, BURN_RANK[lot.kind], lot.lot_id)
                )
                charge.lot.draws.append((at, 1))
                moves.append(
                    (client, month, "consume", charge.lot.lot_id, 1, export.export_id, record)
                )
            else:
                moves.append((client, month, "overage", "-", 1, export.export_id, record))
            charges.append(charge)
        for lot in lots:  # rule 4: what is left at expiry is lost
            left = lot.left_before(midnight(lot.closes))
            if lot.closes <= self.as_of and left > 0:
                last_day = month_start(lot.closes - dt.timedelta(days=1)).isoformat()
                moves.append((lot.client, last_day, "forfeit", lot.lot_id, left, "expiry"))
        return lots, moves, refused

    def _first_pass_charges(self) -> list[tuple[dt.datetime, str, str]]:
        """(time, export, record) of every charge, by rule 2 alone (no lots needed)."""
        cutoff = midnight(self.as_of + dt.timedelta(days=1))
        last: dict[str, dt.datetime] = {}
        out = []
        for e in sorted(self.exports, key=lambda e: (e.at, e.export_id)):
            if e.at >= cutoff:
                continue
            for k in e.keys:
                if k in last and e.at < add_months(last[k], self.window_months):
                    continue
                last[k] = e.at
                out.append((e.at, e.export_id, k))
        return out

    def _check_reversals(self) -> tuple[list[tuple[object, ...]], list[Reversal]]:
        """Which reversals apply (DOMAIN rule 5's refusals, in the pipeline's order)."""
        charges = self._first_pass_charges()
        by_export = Counter(export_id for _, export_id, _ in charges)
        by_record: dict[str, list[tuple[dt.datetime, str]]] = {}
        for at, export_id, record in charges:
            by_record.setdefault(record, []).append((at, export_id))
        exported_at = {e.export_id: e.at for e in self.exports}
        reversed_exports = {r.reference for r in self.reversals if r.reference in by_export}
        refused, candidates = [], []
        for row, r in enumerate(self.reversals, start=2):
            if r.reference in by_export:
                target, charged, last = (
                    r.reference,
                    by_export[r.reference],
                    exported_at[r.reference],
                )
            else:
                before = [c for c in by_record.get(r.reference, []) if c[0] < midnight(r.on)]
                if not before:
                    refused.append((row, "no match"))
                    continue
                at, export_id = max(before)
                if export_id in reversed_exports:
                    refused.append((row, "export reversed"))
                    continue
                target, charged, last = f"{r.reference}@{at}", 1, at
            candidates.append((row, r, target, charged, last))
        applied = []
        cumulative: Counter[str] = Counter()
        for row, r, target, charged, last in sorted(
            candidates, key=lambda c: (c[1].on, c[1].ticket, c[0])
        ):
            cumulative[target] += r.credits
            if midnight(r.on) <= last:
                refused.append((row, "before charge"))
            elif cumulative[target] > charged:
                refused.append((row, "too many"))
            elif r.on > self.as_of:
                refused.append((row, "after as-of"))
            else:
                applied.append(r)
        return sorted(refused, key=lambda x: x[0]), applied  # type: ignore[arg-type,return-value]

    def _undo(self, r: Reversal, charges: list[Charge]) -> list[Charge]:
        """The charges a reversal gives back: its target's most recent ones not yet undone."""
        if any(c.export_id == r.reference for c in charges):
            target = [c for c in charges if c.export_id == r.reference]
        else:
            mine = [c for c in charges if c.key == r.reference and c.at < midnight(r.on)]
            target = [max(mine, key=lambda c: c.at)]
        undone = []
        for charge in sorted(target, key=lambda c: (c.at, c.key, c.row), reverse=True):
            if len(undone) == r.credits:
                break
            if not charge.reversed:
                charge.reversed = True
                undone.append(charge)
        return undone

    # -- rule 9 -----------------------------------------------------------------------------

    def monthly_balances(self) -> dict[tuple[str, dt.date], dict[str, int]]:
        lots, moves, _ = self.run()
        cutoff = self.as_of + dt.timedelta(days=1)
        first: dict[str, dt.date] = {}
        for lot in lots:
            first[lot.client] = min(first.get(lot.client, lot.opens), month_start(lot.opens))
        for client, month, *_ in moves:
            m = dt.date.fromisoformat(month)
            first[client] = min(first.get(client, m), m)

        def flow(client: str, month: dt.date, kind: str, to_lot: bool | None = None) -> int:
            return sum(
                int(mv[4])
                for mv in moves
                if mv[0] == client
                and mv[1] == month.isoformat()
                and mv[2] == kind
                and (to_lot is None or (mv[3] != "pool") == to_lot)
            )

        out = {}
        for client, month in sorted(first.items()):
            while month <= month_start(self.as_of):
                end = next_month(month)
                edge = min(end, cutoff)
                mine = [lot for lot in lots if lot.client == client]

                def granted(kind: str, mine: list[Lot] = mine, month: dt.date = month) -> int:
                    return sum(
                        lot.credits
                        for lot in mine
                        if lot.kind == kind and month_start(lot.opens) == month
                    )

                row = {
                    "baseline_credits": granted("baseline"),
                    "gift_credits": granted("gift"),
                    "purchased_credits": granted("purchase"),
                    "earned_credits": granted("earned"),
                    "adjustment_credits": granted("adjustment"),
                    "opening_balance": sum(
                        lot.left_before(midnight(month))
                        for lot in mine
                        if lot.opens < month < lot.closes
                    ),
                    "consumed_credits": flow(client, month, "consume"),
                    "overage_credits": flow(client, month, "overage"),
                    "reversed_credits": flow(client, month, "reverse", to_lot=True),
                    "overage_reversed_credits": flow(client, month, "reverse", to_lot=False),
                    "forfeited_credits": flow(client, month, "forfeit"),
                    "free_reexports": sum(
                        1
                        for mv in moves
                        if mv[0] == client and mv[1] == month.isoformat() and mv[2] == "reexport"
                    ),
                    "closing_balance": sum(
                        lot.left_before(midnight(edge))
                        for lot in mine
                        if lot.opens < edge and (lot.closes > edge or lot.closes >= cutoff)
                    ),
                }
                row["available_credits"] = row["opening_balance"] + sum(
                    row[k]
                    for k in (
                        "baseline_credits",
                        "gift_credits",
                        "purchased_credits",
                        "earned_credits",
                        "adjustment_credits",
                    )
                )
                row["charged_credits"] = row["consumed_credits"] + row["overage_credits"]
                out[(client, month)] = row
                month = end
        return out

    # -- rules 6 and 12: use net of what reversals gave back ------------------------------

    def net_use(self) -> dict[tuple[str, dt.date], int]:
        """(client, month) -> credits charged less credits given back in the month, to a
        lot or off the overage: a refunded credit is unused, whatever it pays for next."""
        return {
            key: b["charged_credits"] - b["reversed_credits"] - b["overage_reversed_credits"]
            for key, b in self.monthly_balances().items()
        }

    def pool(self) -> dict[dt.date, tuple[int, int, int]]:
        """month -> (used, true-up credits, credits beyond the cap) of the one contract:
        per month when it resets monthly, to date when it does not."""
        use = self.net_use()
        months = sorted({m for _, m in use if month_start(self.starts) <= m < self.ends})
        out, running = {}, 0
        for month in months:
            in_month = sum(n for (_, m), n in use.items() if m == month)
            running = running + in_month if self.reset == "none" else in_month
            cap = self.cap_credits
            out[month] = (
                running,
                max(running - self.pool_credits, 0),
                max(running - cap, 0) if cap is not None else 0,
            )
        return out
