"""Lusha, added as a vendor of its own (schemas/headers/lusha.toml, its pandera model and
transforms/models/vendors/lusha.sql): 1 credit per revealed contact, a contact revealed
again is free, credits reset every month. Every figure worked out by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from schemas.inputs import declared_model
from tests.conftest import rows, run_pipeline, write_folder
from tests.test_incremental import differences, night, one, rebuilt_in_full
from transforms.statements import vendor_name

REVEALS = "Date,User,Contact ID,Full Name,Company,Email,Phone,Credits\n"
JANUARY = {
    "inbox/lusha/reveals/jan.csv": REVEALS
    + "2025-01-06 09:00:00,ann@agency.test,L1,Jane Roe,X,jane@x.test,,1\n"
    + "2025-01-06 09:05:00,ann@agency.test,L2,John Doe,X,john@x.test,,1\n"
    # L1 again: free; L2 by beta, which acme had revealed: free as well (cross-client)
    + "2025-01-08 10:00:00,ann@agency.test,L1,Jane Roe,X,jane@x.test,,0\n"
    + "2025-01-09 11:00:00,bo@agency.test,L2,John Doe,X,john@x.test,,0\n"
    + "2025-01-10 12:00:00,bo@agency.test,L3,Ann Lee,Y,ann@y.test,,1\n",
}
FEBRUARY = {
    "inbox/lusha/reveals/feb.csv": REVEALS
    + "2025-02-03 09:00:00,ann@agency.test,L4,A B,Z,a@z.test,,1\n"
    + "2025-02-03 09:01:00,ann@agency.test,L5,C D,Z,c@z.test,,1\n"
    + "2025-02-03 09:02:00,ann@agency.test,L7,E F,Z,e@z.test,,1\n"
    + "2025-02-03 09:03:00,ann@agency.test,L8,G H,Z,g@z.test,,1\n"
    + "2025-02-04 10:00:00,ann@agency.test,L1,Jane Roe,X,jane@x.test,,0\n"
    + "2025-02-05 10:00:00,bo@agency.test,L6,I J,Y,i@y.test,,1\n"
    # L3 again: free by the rules, yet Lusha took a credit for it
    + "2025-02-06 10:00:00,bo@agency.test,L3,Ann Lee,Y,ann@y.test,,1\n",
}
CONFIG = {
    "config/clients.csv": "client_id,client_name\nacme,Acme\nbeta,Beta\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
    "lusha,ann@agency.test,acme,,\nlusha,bo@agency.test,beta,,\n",
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,price_per_credit\n"
    "lusha,LU,2025-01-01,2026-01-01,20,monthly,true,,0.20\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    "lusha,acme,2025-01,3\nlusha,beta,2025-01,3\n",
}
AS_OF = dt.date(2025, 3, 10)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("lusha")
    data = write_folder(root / "d", {**CONFIG, **JANUARY, **FEBRUARY})
    con = run_pipeline(data, root / "w.duckdb", AS_OF)
    yield con
    con.close()


def test_a_revealed_contact_costs_one_credit_and_the_rest_is_forfeited_each_month(
    warehouse,  # type: ignore[no-untyped-def]
) -> None:
    got = [
        tuple(r.values())
        for r in rows(
            warehouse,
            "SELECT client_id, month::VARCHAR, available_credits, charged_credits, "
            "consumed_credits, overage_credits, forfeited_credits, closing_balance, "
            "free_reexports FROM monthly_balances WHERE vendor = 'lusha' ORDER BY ALL",
        )
    ]
    assert got == [
        # January: L1 and L2 are new (2 of 3), L1 again is free; the 1 left is forfeited
        ("acme", "2025-01-01", 3, 2, 2, 0, 1, 0, 1),
        # February starts at 3 again (nothing rolled over): L4, L5, L7, L8 = 4, 1 beyond the
        # lot is overage; L1 again is still free (revealed in January, inside the window)
        ("acme", "2025-02-01", 3, 4, 3, 1, 0, 0, 1),
        ("acme", "2025-03-01", 3, 0, 0, 0, 0, 3, 0),  # open month, as of 10 March
        # L3 new; L2, revealed by acme, free for beta; 3 - 1 = 2 forfeited
        ("beta", "2025-01-01", 3, 1, 1, 0, 2, 0, 1),
        # L6 new; L3 again free; 3 - 1 = 2 forfeited
        ("beta", "2025-02-01", 3, 1, 1, 0, 2, 0, 1),
        ("beta", "2025-03-01", 3, 0, 0, 0, 0, 3, 0),
    ]
    forfeits = rows(
        warehouse,
        "SELECT client_id, month::VARCHAR AS month, sum(forfeited_credits) AS lost "
        "FROM forfeitures WHERE vendor = 'lusha' GROUP BY ALL ORDER BY ALL",
    )
    # 1 + 0 for acme, 2 + 2 for beta: the March lots are still open
    assert [tuple(r.values()) for r in forfeits] == [
        ("acme", "2025-01-01", 1),
        ("beta", "2025-01-01", 2),
        ("beta", "2025-02-01", 2),
    ]


def test_re_reveals_are_free_and_a_charged_one_is_disputable(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = [
        tuple(r.values())
        for r in rows(
            warehouse,
            "SELECT record_key, kind, first_client_id, repeat_client_id, cross_client, "
            "charged_by_vendor, credits_disputable FROM duplicate_reexports "
            "WHERE vendor = 'lusha' ORDER BY repeat_exported_at",
        )
    ]
    assert got == [
        ("L1", "free_reexport", "acme", "acme", False, False, 0),
        ("L2", "free_reexport", "acme", "beta", True, False, 0),
        ("L1", "free_reexport", "acme", "acme", False, False, 0),
        # Lusha took 1 for revealing L3 again (its export says so): disputable
        ("L3", "charged_reexport", "beta", "beta", False, True, 1),
    ]
    (ticket,) = rows(warehouse, "SELECT * FROM disputes WHERE vendor = 'lusha'")
    # The ticket names the reveal as Lusha's support can find it: feb.csv's 7th reveal.
    assert (ticket["export_or_file"], ticket["record_ids"], ticket["credits_to_reverse"]) == (
        "inbox/lusha/reveals/feb.csv row 8",
        "L3",
        1,
    )
    # 2 + 4 + 1 + 1 = 8 contacts charged 1 credit each (consumed or overage)
    (charged,) = rows(
        warehouse,
        "SELECT sum(credits) AS credits FROM ledger_entries "
        "WHERE vendor = 'lusha' AND entry_type IN ('consume', 'overage')",
    )
    assert charged["credits"] == 8


def test_lusha_is_reconciled_against_its_own_export(warehouse) -> None:  # type: ignore[no-untyped-def]
    got = [
        tuple(r.values())
        for r in rows(
            warehouse,
            "SELECT user, month::VARCHAR, reported_credits, reported_from, computed_credits, "
            "variance, reason FROM vendor_reconciliation WHERE vendor = 'lusha' ORDER BY ALL",
        )
    ]
    ok = "reconciled: reported equals computed"
    assert got == [
        ("ann@agency.test", "2025-01-01", 2, "usage export", 2, 0, ok),  # 1 + 1 + 0
        ("ann@agency.test", "2025-02-01", 4, "usage export", 4, 0, ok),  # 1 + 1 + 1 + 1 + 0
        ("bo@agency.test", "2025-01-01", 1, "usage export", 1, 0, ok),  # 0 + 1
        # Lusha took 1 for L6 and 1 for L3 again; the rules charge L6 only
        ("bo@agency.test", "2025-02-01", 2, "usage export", 1, 1, "charged re-export: 1"),
    ]


def test_lusha_is_named_as_clients_know_it() -> None:
    assert vendor_name("lusha") == "Lusha"
    assert vendor_name("zoominfo") == "ZoomInfo"
    assert vendor_name("somevendor") == "somevendor"  # no adapter: its id


def test_a_lusha_night_is_added_and_agrees_with_a_full_rebuild(tmp_path: Path) -> None:
    data = write_folder(tmp_path / "d", {**CONFIG, **JANUARY})
    warehouse = tmp_path / "w.duckdb"
    assert night(data, warehouse, dt.date(2025, 1, 31), 12).startswith("full rebuild")
    write_folder(data, FEBRUARY)
    assert night(data, warehouse, AS_OF, 12).startswith("incremental")
    # L1 and L3 were charged on the first night: their February reveals are free
    assert one(
        warehouse,
        "SELECT record_key, first_source_file FROM duplicate_reexports "
        "WHERE vendor = 'lusha' AND month = '2025-02-01' ORDER BY ALL",
    ) == [("L1", "inbox/lusha/reveals/jan.csv"), ("L3", "inbox/lusha/reveals/jan.csv")]
    reference = rebuilt_in_full(data, warehouse, tmp_path / "full.duckdb", AS_OF)
    assert differences(warehouse, reference) == {}


def test_lusha_rows_its_declaration_refuses_are_quarantined(tmp_path: Path) -> None:
    """Lusha's model is declared in its header TOML ([inputs.reveals]): a required column,
    a bound and the date formats are checked like any hand-written model's."""
    files = {
        **CONFIG,
        **JANUARY,
        "inbox/lusha/reveals/bad.csv": REVEALS
        + "2025-01-12 09:00:00,ann@agency.test,L9,A,X,a@x.test,,-1\n"
        + "31/01/2025 09:00,ann@agency.test,L10,A,X,a@x.test,,1\n"
        + "2025-01-13 09:00:00,ann@agency.test,,A,X,a@x.test,,1\n"
        + "2025-01-14 09:00:00,ann@agency.test,L11,A,X,a@x.test,,1\n",
        "inbox/lusha/reveals/no-id.csv": "Date,User,Credits\n2025-01-12 09:00:00,ann@agency.test,1\n",
    }
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 1, 31)
    )
    got = [
        (r["file"].rsplit("/", 1)[1], r["row_number"], r["reason"].split(" (")[0])
        for r in rows(con, "SELECT * FROM quarantine WHERE vendor = 'lusha' ORDER BY ALL")
    ]
    assert got == [
        ("bad.csv", 2, "Credits must not be negative"),
        ("bad.csv", 3, 'Date: "31/01/2025 09:00" is not a date in an accepted format'),
        ("bad.csv", 4, "Contact ID is empty"),
        ("no-id.csv", 2, "file rejected: no 'Contact ID' column"),
    ]
    manifest = rows(
        con,
        "SELECT path, status, rows_read, rows_loaded, rows_quarantined FROM ingest_manifest "
        "WHERE path LIKE '%lusha%' ORDER BY 1",
    )
    # rows read = loaded + quarantined: 4 = 1 + 3, 5 = 5 + 0, 1 = 0 + 1
    assert [tuple(r.values())[1:] for r in manifest] == [
        ("loaded", 4, 1, 3),
        ("loaded", 5, 5, 0),
        ("rejected", 1, 0, 1),
    ]
    # January: L1, L2 as before and L11, the one good row of bad.csv: 3 for acme; L3 for beta
    charged = rows(
        con,
        "SELECT client_id, charged_credits FROM monthly_balances WHERE vendor = 'lusha' ORDER BY 1",
    )
    assert [tuple(r.values()) for r in charged] == [("acme", 3), ("beta", 1)]
    con.close()


def test_a_declared_input_with_an_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"x.toml: \[inputs.log\].columns.at: unknown type 'when'"):
        declared_model("Log", "x.toml: [inputs.log]", {"columns": {"at": {"type": "when"}}})
