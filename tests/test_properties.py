"""Property tests: on random allocations, grants, users, exports and reversals, the
pipeline agrees with the plain-Python reference model on every ledger movement and every
monthly balance, and keeps the ledger's invariants (DOMAIN.md rules 1-5, 9, 10)."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import rows, run_pipeline, write_folder
from tests.reference_model import Export, Grant, Model, Reversal, next_month
from tests.test_monthly_balances import COLUMNS

CLIENTS = ["c1", "c2", "c3"]
USERS = {"u1@a.test": "c1", "u2@a.test": "c2", "u3@a.test": "c3"}
GHOST = "ghost@a.test"  # in no users.csv row -> unassigned
DAY0 = dt.date(2025, 1, 1)


def examples(n: int) -> settings:
    # Each example builds a real warehouse (about half a second).
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def days(lo: int, hi: int) -> st.SearchStrategy[dt.date]:
    return st.integers(lo, hi).map(lambda n: DAY0 + dt.timedelta(days=n))


@st.composite
def models(draw: st.DrawFn, reversals: bool = True) -> Model:
    starts = draw(st.sampled_from([dt.date(2025, 1, 1), dt.date(2025, 1, 15)]))
    ends = draw(st.sampled_from([dt.date(2025, 7, 1), dt.date(2025, 5, 20)]))
    clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=3, unique=True))
    allocations = {}
    for client in clients:
        for month in draw(st.lists(st.integers(1, 4), min_size=1, max_size=2, unique=True)):
            allocations[(client, dt.date(2025, month, 1))] = draw(
                st.sampled_from([0, 1, 2, 3, 5, 8])
            )
    grants = []
    for i in range(draw(st.integers(0, 4))):
        on = draw(days(0, 170))
        expires = draw(
            st.one_of(st.none(), st.integers(1, 90).map(lambda n, on=on: on + dt.timedelta(days=n)))
        )
        kind = draw(st.sampled_from(["gift", "purchase", "earned", "adjustment"]))
        grants.append(
            Grant(
                draw(st.sampled_from(clients)), f"G{i}", kind, draw(st.integers(1, 5)), on, expires
            )
        )
    exports = []
    users = [u for u, c in USERS.items() if c in clients]
    for i in range(draw(st.integers(0, 8))):
        at = dt.datetime.combine(draw(days(0, 180)), dt.time(draw(st.integers(0, 23))))
        user = draw(st.sampled_from([*users, *users, GHOST]))
        keys = draw(st.lists(st.integers(1, 12).map(str), max_size=6))
        exports.append(Export(f"E{i:02d}", user, at, keys))
    undo = []
    if reversals and exports:
        for i in range(draw(st.integers(0, 3))):
            # Mostly a real export or one of its records, shortly after it; sometimes noise.
            e = draw(st.sampled_from(exports))
            reference = draw(st.sampled_from([e.export_id, e.export_id, *e.keys[:1], "E99", "13"]))
            on = e.at.date() + dt.timedelta(days=draw(st.integers(1, 30)))
            undo.append(Reversal(f"T{i}", reference, draw(st.integers(1, 4)), on))
    return Model(
        starts=starts,
        ends=ends,
        allocations=allocations,
        users={u: c for u, c in USERS.items() if c in clients},
        exports=exports,
        as_of=draw(st.one_of(days(9, 195), days(150, 195))),
        grants=grants,
        reversals=undo,
        window_months=draw(st.integers(1, 3)),
        reset=draw(st.sampled_from(["monthly", "monthly", "none"])),
        pool_credits=draw(st.sampled_from([2, 5, 100])),
        cap_credits=draw(st.sampled_from([None, 3, 8])),
    )


def files(model: Model, shuffle: random.Random | None = None) -> dict[str, str]:
    def lines(items: list[str]) -> str:
        if shuffle:
            items = items[:]
            shuffle.shuffle(items)
        return "".join(items)

    out = {
        "config/clients.csv": "client_id,client_name\n"
        + "".join(f"{c},{c.upper()}\n" for c in CLIENTS),
        "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
        + "".join(f"zoominfo,{u},{c},,\n" for u, c in model.users.items()),
        "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
        "overage_allowed,cap_credits,price_per_credit\n"
        f"zoominfo,C,{model.starts},{model.ends},{model.pool_credits},{model.reset},true,"
        f"{model.cap_credits or ''},0.25\n",
        "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
        + "".join(f"zoominfo,{c},{m},{n}\n" for (c, m), n in model.allocations.items()),
        "config/grants.csv": "vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note\n"
        + "".join(
            f"zoominfo,{g.client},{g.grant_id},{g.kind},{g.credits},{g.on},{g.expires or ''},\n"
            for g in model.grants
        ),
        "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n"
        + "".join(
            f"zoominfo,{r.ticket},{r.reference},{r.credits},{r.on}\n" for r in model.reversals
        ),
    }
    for month in sorted({e.at.strftime("%Y-%m") for e in model.exports}):
        out[f"inbox/zoominfo/downloads/listing-{month}.csv"] = (
            "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
            + lines(
                [
                    f"{e.export_id},x,{e.export_id}.csv,{e.user},{e.at:%Y-%m-%d %H:%M:%S},Contacts,"
                    f"{len(e.keys)},{len(e.keys)}\n"
                    for e in model.exports
                    if e.at.strftime("%Y-%m") == month
                ]
            )
        )
    for e in model.exports:
        out[f"inbox/zoominfo/exports/{e.export_id}.csv"] = "ZoomInfo Contact ID\n" + lines(
            [f"{k}\n" for k in e.keys]
        )
    return out


@contextmanager
def built(
    model: Model, shuffle: random.Random | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    root = Path(tempfile.mkdtemp(prefix="prop-"))
    try:
        data = write_folder(root / "d", files(model, shuffle))
        con = run_pipeline(data, root / "w.duckdb", model.as_of, window=model.window_months)
        yield con
        con.close()
    finally:
        shutil.rmtree(root)


BALANCE_COLUMNS = [*COLUMNS, "overage_reversed_credits"]


def balances(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, dt.date], dict[str, int]]:
    return {
        (r["client_id"], r["month"]): {c: r[c] for c in BALANCE_COLUMNS}
        for r in rows(con, "SELECT * FROM monthly_balances")
    }


def movements(con: duckdb.DuckDBPyConnection) -> Counter[tuple[object, ...]]:
    """Charges record by record; reversals and forfeits summed per client, month and lot."""
    got: Counter[tuple[object, ...]] = Counter()
    for r in rows(con, "SELECT * FROM ledger_entries WHERE entry_type <> 'grant'"):
        lot = r["lot_id"] or ("pool" if r["entry_type"] == "reverse" else "-")
        if r["entry_type"] in ("consume", "overage", "reexport"):
            got[
                (
                    r["client_id"],
                    str(r["booking_month"]),
                    r["entry_type"],
                    lot,
                    r["export_id"],
                    r["record_key"],
                )
            ] += r["credits"]
        else:
            got[(r["client_id"], str(r["booking_month"]), r["entry_type"], lot)] += r["credits"]
    return +got


def expected_movements(model: Model) -> Counter[tuple[object, ...]]:
    _, moves, _ = model.run()
    want: Counter[tuple[object, ...]] = Counter()
    for mv in moves:
        client, month, kind, lot, credits = mv[:5]
        if kind in ("consume", "overage", "reexport"):
            want[(client, month, kind, lot, mv[5], mv[6])] += int(credits)
        else:
            want[(client, month, kind, lot)] += int(credits)
    return +want


@examples(50)
@given(models())
def test_pipeline_agrees_with_reference_model(model: Model) -> None:
    with built(model) as con:
        assert balances(con) == model.monthly_balances()
        assert movements(con) == expected_movements(model)
        refused = [
            r["row_number"]
            for r in rows(
                con, "SELECT row_number FROM quarantine WHERE source = 'reversals' ORDER BY 1"
            )
        ]
        assert refused == [row for row, _ in model.run()[2]]


@examples(40)
@given(models())
def test_reversals_reach_pool_and_client_figures(model: Model) -> None:
    """Pool use, true-up and cap breaches, and each client's use, net of every credit a
    reversal gave back (to a lot, spendable again, or off the overage)."""
    assume(model.reversals)
    with built(model) as con:
        pool = {
            r["month"]: (r["used"], r["true_up_credits"], r["beyond_cap_credits"])
            for r in rows(con, "SELECT * FROM pool_overconsumption")
        }
        assert pool == model.pool()
        for r in rows(con, "SELECT * FROM pool_overconsumption"):
            assert r["true_up_value"] == round(r["true_up_credits"] * 0.25, 2)
        used = {
            (r["client_id"], r["month"]): r["used"]
            for r in rows(con, "SELECT * FROM client_overconsumption")
        }
        assert used == model.net_use()


@examples(30)
@given(models())
def test_ledger_invariants(model: Model) -> None:
    with built(model) as con:
        for r in rows(con, "SELECT * FROM monthly_balances"):  # rule 10, here independently
            granted = sum(
                r[c]
                for c in (
                    "baseline_credits",
                    "gift_credits",
                    "purchased_credits",
                    "earned_credits",
                    "adjustment_credits",
                )
            )
            assert (
                r["opening_balance"]
                + granted
                + r["reversed_credits"]
                - r["consumed_credits"]
                - r["forfeited_credits"]
            ) == r["closing_balance"], r
            assert r["charged_credits"] == r["consumed_credits"] + r["overage_credits"]
        for lot in rows(con, "SELECT * FROM credit_lots"):
            assert 0 <= lot["credits_left"] <= lot["credits"]
            assert lot["credits"] + lot["reversed_credits"] == (
                lot["consumed_credits"] + lot["forfeited_credits"] + lot["credits_left"]
            )
            if lot["status"] == "expired":  # nothing rolls over from a lot, monthly or not
                assert lot["credits_left"] == 0
        outside = rows(
            con,
            """
            SELECT e.entry_id FROM ledger_entries e JOIN credit_lots l USING (lot_id)
            WHERE e.entry_type = 'consume'
              AND NOT (l.effective_on::TIMESTAMP <= e.effective_at AND e.effective_at < l.expires_on::TIMESTAMP)
        """,
        )
        assert outside == []
        # No lot is drawn while an earlier lot in burn order still had credits just before.
        skipped = rows(
            con,
            """
            WITH draws AS (
                SELECT e.client_id, e.effective_at, l.lot_id, l.expires_on, l.lot_kind
                FROM ledger_entries e JOIN credit_lots l USING (lot_id) WHERE e.entry_type = 'consume'
            ),
            rank AS (SELECT lot_id, CASE lot_kind WHEN 'gift' THEN 1 WHEN 'baseline' THEN 2
                     WHEN 'earned' THEN 3 WHEN 'purchase' THEN 4 ELSE 5 END AS r FROM credit_lots)
            SELECT d.lot_id, other.lot_id AS earlier
            FROM draws d
            JOIN credit_lots other ON other.client_id = d.client_id AND other.lot_id <> d.lot_id
             AND other.effective_on::TIMESTAMP <= d.effective_at AND d.effective_at < other.expires_on::TIMESTAMP
            JOIN rank ro ON ro.lot_id = other.lot_id JOIN rank rd ON rd.lot_id = d.lot_id
            WHERE (other.expires_on, ro.r, other.lot_id) < (d.expires_on, rd.r, d.lot_id)
              AND (SELECT sum(balance_effect) FROM ledger_entries x
                   WHERE x.lot_id = other.lot_id AND x.effective_at <= d.effective_at) > 0
        """,
        )
        assert skipped == []
        for f in rows(con, "SELECT * FROM ingest_manifest"):
            assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"]


@examples(15)
@given(models(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(model: Model, rnd: random.Random) -> None:
    with built(model) as a, built(model, shuffle=rnd) as b:
        assert balances(a) == balances(b)
        lots = "SELECT lot_id, consumed_credits, forfeited_credits, credits_left FROM credit_lots ORDER BY ALL"
        assert a.sql(lots).fetchall() == b.sql(lots).fetchall()


def marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """The marts' rows; ingest times (recorded_at) differ between folders by design."""
    return {
        "monthly_balances": con.sql("SELECT * FROM monthly_balances ORDER BY ALL").fetchall(),
        "credit_lots": con.sql("SELECT * FROM credit_lots ORDER BY ALL").fetchall(),
        "forfeitures": con.sql("SELECT * FROM forfeitures ORDER BY ALL").fetchall(),
        "ledger_entries": con.sql(
            "SELECT * EXCLUDE (recorded_at) FROM ledger_entries ORDER BY ALL"
        ).fetchall(),
    }


@examples(10)
@given(models(reversals=False))
def test_month_by_month_equals_all_at_once_and_replay_changes_nothing(model: Model) -> None:
    root = Path(tempfile.mkdtemp(prefix="prop-"))
    try:
        everything = files(model)
        once = run_pipeline(
            write_folder(root / "once", everything),
            root / "once.duckdb",
            model.as_of,
            window=model.window_months,
        )
        expected = marts(once)
        once.close()
        data = write_folder(
            root / "nightly", {k: v for k, v in everything.items() if "inbox" not in k}
        )
        month = DAY0
        while month <= model.as_of:
            end = min(next_month(month) - dt.timedelta(days=1), model.as_of)
            arrived = {e.export_id for e in model.exports if e.at.date() <= end}
            month_files = {
                k: v
                for k, v in everything.items()
                if "inbox" in k
                and (
                    any(f"/{x}.csv" in k for x in arrived) or k.endswith(f"listing-{end:%Y-%m}.csv")
                )
            }
            write_folder(data, month_files)
            run_pipeline(data, root / "nightly.duckdb", end, window=model.window_months).close()
            month = end + dt.timedelta(days=1)
        for _ in range(2):  # the last night, replayed
            con = run_pipeline(
                data, root / "nightly.duckdb", model.as_of, window=model.window_months
            )
            got = marts(con)
            con.close()
            assert got == expected
    finally:
        shutil.rmtree(root)


@examples(15)
@given(models(reversals=False), st.sampled_from(CLIENTS), days(0, 170), st.integers(1, 5))
def test_a_charge_and_its_full_reversal_leave_balances_as_they_were(
    model: Model, client: str, day: dt.date, n: int
) -> None:
    user = next((u for u, c in model.users.items() if c == client), None)
    assume(user is not None and day + dt.timedelta(days=1) <= model.as_of)
    # Nothing else happens to this client between the charge and its reversal.
    assume(
        not any(
            model.users.get(e.user) == client and day <= e.at.date() <= day + dt.timedelta(days=1)
            for e in model.exports
        )
    )
    charged = Model(
        **{
            **model.__dict__,
            "exports": [
                *model.exports,
                Export(
                    "EX", user, dt.datetime.combine(day, dt.time(10)), [f"new{i}" for i in range(n)]
                ),
            ],
            "reversals": [Reversal("TX", "EX", n, day + dt.timedelta(days=1))],
        }
    )
    with built(model) as a, built(charged) as b:
        # From the reversal's month on (before it, the credits were spent). The charge may
        # give the client its first ledger month: compare non-zero closings.
        q = (
            f"SELECT month, closing_balance FROM monthly_balances WHERE client_id = '{client}' "
            f"AND closing_balance <> 0 AND month >= '{(day + dt.timedelta(days=1)).replace(day=1)}' ORDER BY month"
        )
        assert a.sql(q).fetchall() == b.sql(q).fetchall()
        lost = f"SELECT coalesce(sum(forfeited_credits), 0) FROM monthly_balances WHERE client_id = '{client}'"
        assert a.sql(lost).fetchall() == b.sql(lost).fetchall()
