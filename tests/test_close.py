"""Month-end close (DOMAIN rule 8): a closed month never changes; data that arrives late for
it is booked, marked as late, in the first open month."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from tests.conftest import rows, run_pipeline, write_folder
from tests.test_monthly_balances import SCENARIO
from transforms.close import close_month
from transforms.ingest import ingest_store_path

BALANCE = (
    "baseline_credits, opening_balance, available_credits, charged_credits, consumed_credits, "
    "overage_credits, forfeited_credits, closing_balance, free_reexports, late_charged_credits, is_closed"
)


def balances(warehouse: Path) -> dict[tuple[str, str], tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            (c, str(m)): tuple(rest)
            for c, m, *rest in con.sql(
                f"SELECT client_id, month, {BALANCE} FROM monthly_balances WHERE vendor = 'zoominfo'"
            ).fetchall()
        }
    finally:
        con.close()


def close(warehouse: Path, month: str, as_of: dt.date, data: Path) -> None:
    close_month(
        ingest_store_path(warehouse), warehouse, dt.date.fromisoformat(month + "-01"), as_of
    )
    run_pipeline(data, warehouse, as_of).close()


@pytest.fixture()
def closed_february(tmp_path: Path) -> tuple[Path, Path]:
    """January and February closed on 2 March, before e5.csv (bob's export of 20 Feb) came."""
    data = write_folder(
        tmp_path / "d", {k: v for k, v in SCENARIO.items() if not k.endswith("e5.csv")}
    )
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, dt.date(2025, 3, 2)).close()
    close(warehouse, "2025-01", dt.date(2025, 3, 2), data)
    close(warehouse, "2025-02", dt.date(2025, 3, 2), data)
    return data, warehouse


def test_late_data_is_booked_in_the_first_open_month(closed_february: tuple[Path, Path]) -> None:
    data, warehouse = closed_february
    frozen = balances(warehouse)
    assert frozen[("acme", "2025-02-01")][-1] is True
    # acme's February baseline expired with its 5 credits unused, as far as anyone knew
    assert frozen[("acme", "2025-02-01")][6] == 5

    write_folder(data, {"inbox/zoominfo/exports/e5.csv": SCENARIO["inbox/zoominfo/exports/e5.csv"]})
    run_pipeline(data, warehouse, dt.date(2025, 3, 10)).close()
    now = balances(warehouse)
    for key in [k for k in frozen if k[1] in ("2025-01-01", "2025-02-01")]:
        assert now[key] == frozen[key], key  # closed months never change
    # March: its own charge (1) plus February's late export: 5 drawn from February's
    # baseline (so 5 fewer forfeited: -5) and 1 overage; 102 re-exported free.
    # base open avail charged consumed over forf close free late closed
    assert now[("acme", "2025-03-01")] == (4, 0, 4, 7, 6, 1, -5, 3, 2, 6, False)

    con = duckdb.connect(str(warehouse), read_only=True)
    late = rows(
        con,
        "SELECT entry_type, count(*) AS n, sum(credits) AS credits FROM ledger_entries "
        "WHERE late_for_month = '2025-02-01' GROUP BY ALL ORDER BY 1",
    )
    con.close()
    assert late == [
        {"entry_type": "consume", "n": 5, "credits": 5},
        {"entry_type": "forfeit", "n": 1, "credits": -5},
        {"entry_type": "overage", "n": 1, "credits": 1},
        {"entry_type": "reexport", "n": 1, "credits": 0},
    ]

    # Running again books nothing twice; closing March freezes the late entries with it,
    # and April does not book them again.
    run_pipeline(data, warehouse, dt.date(2025, 3, 10)).close()
    assert balances(warehouse) == now
    close(warehouse, "2025-03", dt.date(2025, 4, 2), data)
    april = balances(warehouse)
    assert april[("acme", "2025-03-01")] == (4, 0, 4, 7, 6, 1, -5, 3, 2, 6, True)
    assert april[("acme", "2025-04-01")][3] == 0  # nothing charged, nothing late in April


def test_months_close_in_order_and_only_once_ended(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", SCENARIO)
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, dt.date(2025, 3, 10)).close()
    store = ingest_store_path(warehouse)
    with pytest.raises(ValueError, match="close 2025-01 first"):
        close_month(store, warehouse, dt.date(2025, 2, 1), dt.date(2025, 3, 10))
    with pytest.raises(ValueError, match="2025-03 has not ended by the as-of date 2025-03-10"):
        close_month(store, warehouse, dt.date(2025, 3, 1), dt.date(2025, 3, 10))
    close_month(store, warehouse, dt.date(2025, 1, 1), dt.date(2025, 3, 10))
    with pytest.raises(ValueError, match="2025-01 is already closed"):
        close_month(store, warehouse, dt.date(2025, 1, 1), dt.date(2025, 3, 10))
