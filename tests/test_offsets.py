"""Times with a zone or offset are booked in the reporting time zone (DOMAIN rule 11,
docs/rules.md "Time"), end to end: each vendor's date formats, at month boundaries, under
America/New_York across both 2025 DST changes (9 March: 02:00 EST -> 03:00 EDT, 07:00 UTC;
2 November: 02:00 EDT -> 01:00 EST, 06:00 UTC). Every expected figure is worked out by hand
in the comments; before the change the offset was dropped and the wall time kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from schemas.parse import Field, header_config, parse_expr
from tests.conftest import rows, run_pipeline, write_folder

NEW_YORK = 'reporting_timezone = "America/New_York"\n'
LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)

# One contact per export (ID 1..12), so each export is one charge in its booked month.
ZOOMINFO = [
    # (export, Export Date as written, booked in New York)
    ("E01", "2025-03-01T04:30:00Z", "2025-02-28 23:30:00"),  # EST, UTC-5: still February
    ("E02", "2025-03-09T06:30:00Z", "2025-03-09 01:30:00"),  # before the spring change
    ("E03", "2025-03-09T07:30:00Z", "2025-03-09 03:30:00"),  # after it (EDT, UTC-4)
    ("E04", "04/01/2025 03:30 AM +00:00", "2025-03-31 23:30:00"),  # US format: March
    ("E05", "2025-11-01 03:30:00", "2025-11-01 03:30:00"),  # no offset: wall time as written
    ("E06", "2025-11-01T03:30:00Z", "2025-10-31 23:30:00"),  # EDT: October
    ("E07", "2025-11-02T05:30:00Z", "2025-11-02 01:30:00"),  # 01:30 EDT, first time round
    ("E08", "2025-11-02T06:30:00Z", "2025-11-02 01:30:00"),  # 01:30 EST, second time round
    ("E09", "2025-12-01 04:30:00+0000", "2025-11-30 23:30:00"),  # EST: November
    ("E10", "2025-11-30T23:30:00-05:00", "2025-11-30 23:30:00"),  # written in New York time
    ("E11", "11/30/2025 11:30:00 PM -08:00", "2025-12-01 02:30:00"),  # Pacific: December
    ("E12", "2025-12-01 00:30", "2025-12-01 00:30:00"),  # no offset: December
]


def folder(zone: str | None) -> dict[str, str]:
    files = {
        "config/clients.csv": "client_id,client_name\nacme,Acme\n",
        "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
        "zoominfo,zed@agency.test,acme,,\n6sense,ann@agency.test,acme,,\n"
        "apollo,ann@agency.test,acme,,\n",
        "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
        "overage_allowed,cap_credits,price_per_credit\n"
        "zoominfo,ZI,2025-01-01,2026-01-01,100,monthly,true,,\n"
        "6sense,SX,2025-01-01,2026-01-01,100,monthly,true,,\n"
        "apollo,AP,2025-01-01,2026-01-01,100,monthly,true,,\n",
        "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
        "zoominfo,acme,2025-01,10\n6sense,acme,2025-01,10\napollo,acme,2025-01,10\n",
        "inbox/zoominfo/downloads/l.csv": LISTING
        + "".join(f'{e},x,{e}.csv,zed@agency.test,"{at}",Contacts,1,1\n' for e, at, _ in ZOOMINFO),
        # 6sense's formats: ISO with Z, with fractions and an offset, US, plain
        "inbox/6sense/purchases/p.csv": "Purchase Date,Purchased By,Contact ID,Email Confidence,Credits Used\n"
        "2025-11-01T03:30:00Z,ann@agency.test,S1,A,1\n"  # 23:30 EDT 31 Oct: October
        "2025-11-01T04:00:00.000+01:00,ann@agency.test,S2,A,1\n"  # 03:00Z, 23:00 EDT: October
        "2025-11-01T03:30:00,ann@agency.test,S3,A,1\n"  # no offset: November
        "11/01/2025 03:30 AM,ann@agency.test,S4,A,1\n"  # no offset: November
        "2025-10-31T23:30:00-05:00,ann@agency.test,S5,A,1\n",  # 04:30Z, 00:30 EDT: November
        # Apollo's formats
        "inbox/apollo/usage/a.csv": "Date,Feature,Action,Description,Credits,Data requested,User\n"
        "2025-11-01T03:30:00.000Z,Search,Reveal,Email of A,1,Email,ann@agency.test\n"  # October
        '"Nov 01, 2025 03:30 AM",Search,Reveal,Email of B,1,Email,ann@agency.test\n'  # November
        "2025-11-01 00:30:00 UTC,Search,Reveal,Email of C,1,Email,ann@agency.test\n",  # October
    }
    for n, (e, _, _) in enumerate(ZOOMINFO, start=1):
        files[f"inbox/zoominfo/exports/{e}.csv"] = f"ZoomInfo Contact ID\n{n}\n"
    if zone:
        files["config/settings.toml"] = zone
    return files


def charged(con, vendor: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {
        str(r["month"])[:7]: r["charged_credits"]
        for r in rows(
            con,
            f"SELECT month, charged_credits FROM monthly_balances WHERE vendor = '{vendor}' "
            "AND charged_credits > 0 ORDER BY month",
        )
    }


@pytest.fixture(scope="module")
def new_york(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("ny")
    con = run_pipeline(
        write_folder(root / "d", folder(NEW_YORK)), root / "w.duckdb", dt.date(2025, 12, 15)
    )
    yield con
    con.close()


def test_zoominfo_times_are_booked_in_new_york(new_york) -> None:  # type: ignore[no-untyped-def]
    booked = {
        r["export_id"]: str(r["effective_at"])
        for r in rows(
            new_york,
            "SELECT export_id, effective_at FROM ledger_entries WHERE vendor = 'zoominfo' "
            "AND entry_type IN ('consume', 'overage')",
        )
    }
    assert booked == {e: at for e, _, at in ZOOMINFO}
    # February E01; March E02, E03, E04; October E06; November E05, E07, E08, E09, E10;
    # December E11, E12. Before the change: March E01-E03, April E04, November E05-E08,
    # December E09-E12.
    assert charged(new_york, "zoominfo") == {
        "2025-02": 1,
        "2025-03": 3,
        "2025-10": 1,
        "2025-11": 5,
        "2025-12": 2,
    }


def test_6sense_and_apollo_times_are_booked_in_new_york(new_york) -> None:  # type: ignore[no-untyped-def]
    assert charged(new_york, "6sense") == {"2025-10": 2, "2025-11": 3}
    assert charged(new_york, "apollo") == {"2025-10": 2, "2025-11": 1}
    # October's lot of 10 took 2, so 8 of it were forfeited at its expiry, 1 November.
    october = rows(
        new_york,
        "SELECT charged_credits, forfeited_credits, closing_balance FROM monthly_balances "
        "WHERE vendor = '6sense' AND month = '2025-10-01'",
    )
    assert october == [{"charged_credits": 2, "forfeited_credits": 8, "closing_balance": 0}]
    s2 = rows(
        new_york,
        "SELECT effective_at::VARCHAR AS at FROM ledger_entries WHERE record_key = 'S2'",
    )
    assert s2 == [{"at": "2025-10-31 23:00:00"}]


def test_a_time_with_an_offset_under_utc_is_the_utc_instant(tmp_path: Path) -> None:
    con = run_pipeline(
        write_folder(tmp_path / "d", folder(None)), tmp_path / "w.duckdb", dt.date(2025, 12, 15)
    )
    try:
        # UTC: E01-E03 in March (04:30, 06:30, 07:30 UTC), E04 1 April 03:30; E05-E08 in
        # November; E09 1 Dec 04:30, E10 1 Dec 04:30, E11 1 Dec 07:30, E12 1 Dec 00:30.
        assert charged(con, "zoominfo") == {"2025-03": 3, "2025-04": 1, "2025-11": 4, "2025-12": 4}
        # S5 is 04:30 UTC on 1 November; the others as written or already UTC.
        assert charged(con, "6sense") == {"2025-11": 5}
        assert charged(con, "apollo") == {"2025-11": 3}
    finally:
        con.close()


def test_an_offset_out_of_range_is_quarantined(tmp_path: Path) -> None:
    files = folder(NEW_YORK)
    files["inbox/zoominfo/downloads/l.csv"] = (
        LISTING + 'E01,x,E01.csv,zed@agency.test,"2025-03-01T04:30:00+25:00",Contacts,1,1\n'
    )
    con = run_pipeline(
        write_folder(tmp_path / "d", files), tmp_path / "w.duckdb", dt.date(2025, 12, 15)
    )
    try:
        reasons = [
            r["reason"]
            for r in rows(con, "SELECT reason FROM quarantine WHERE source = 'zoominfo_downloads'")
        ]
        assert len(reasons) == 1 and '"2025-03-01T04:30:00+25:00" is not a date' in reasons[0]
    finally:
        con.close()


@pytest.mark.parametrize(
    ("vendor", "fmt"),
    [
        (vendor, fmt)
        for vendor in ("zoominfo", "6sense", "apollo")
        for fmt in header_config(vendor)["formats"]["datetime"]
        if "%H" in fmt or "%I" in fmt
    ],
)
@pytest.mark.parametrize(
    ("suffix", "minutes"),
    [("", None), ("Z", 0), (" UTC", 0), ("-05:00", -300), ("+0530", 330), (" -04", -240)],
)
def test_every_vendor_time_format_reads_its_offset(
    vendor: str, fmt: str, suffix: str, minutes: int | None
) -> None:
    """Each datetime format a vendor's header file lists, with each way of writing a zone:
    the wall time as written, and the offset apart (converted when booked, above)."""
    wall = dt.datetime(2025, 11, 2, 1, 30, 0)
    text = wall.strftime(fmt.replace("%.f", ".000")) + suffix
    field = Field("at", "datetime", True)
    offset = Field("at_utc_offset", "utc_offset:at", False)
    formats = header_config(vendor)["formats"]
    got = pl.DataFrame({"t": [text]}).select(
        parse_expr(field, pl.col("t"), formats)[0].alias("at"),
        parse_expr(offset, pl.col("t"), formats)[0].alias("offset"),
    )
    assert got.row(0) == (wall, minutes), text


def test_a_store_made_before_offsets_gains_the_columns_empty(tmp_path: Path) -> None:
    import duckdb

    from transforms.ingest import open_store

    store = tmp_path / "w.ingest.duckdb"
    old = duckdb.connect(str(store))
    old.execute(
        "CREATE TABLE stg_sixsense_purchases (file_id VARCHAR NOT NULL, row_number BIGINT NOT "
        "NULL, purchased_at TIMESTAMP, purchased_by VARCHAR, contact_id VARCHAR, "
        "email_confidence VARCHAR, credits_used BIGINT)"
    )
    old.execute(
        "INSERT INTO stg_sixsense_purchases VALUES ('f', 2, '2025-11-01', 'a', 'C1', 'A', 1)"
    )
    old.close()
    con = open_store(store)
    try:
        assert con.sql(
            "SELECT contact_id, purchased_at_utc_offset FROM stg_sixsense_purchases"
        ).fetchall() == [("C1", None)]
    finally:
        con.close()
