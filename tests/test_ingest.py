"""Input files as people really drop them: each one is loaded or quarantined with a reason,
and rows read = rows loaded + rows quarantined, file by file."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.inputs import SOURCE_BY_NAME
from schemas.parse import FileRejected, map_headers, normalise_header
from tests.conftest import rows
from transforms import ingest as ingest_module
from transforms.ingest import ingest

LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)
CONFIG = {
    "config/clients.csv": "client_id,client_name\nacme,Acme\n",
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\nzoominfo,a@x.test,acme,,\n",
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
    "overage_allowed,cap_credits,price_per_credit\nzoominfo,Z,2025-01-01,2026-01-01,10,monthly,true,,\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\nzoominfo,acme,2025-01,5\n",
}


def drop(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in {**CONFIG, **files}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def ingested(tmp_path: Path, files: dict[str, bytes | str]) -> duckdb.DuckDBPyConnection:
    store = tmp_path / "w.ingest.duckdb"
    ingest(drop(tmp_path / "data", files), store)
    con = duckdb.connect(str(store), read_only=True)
    for f in rows(con, "SELECT * FROM ingest_files WHERE status = 'loaded'"):
        assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"], f
    return con


def quarantined(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    return [
        (r["row_number"], r["reason"])
        for r in rows(con, "SELECT row_number, reason FROM ingest_quarantine ORDER BY row_number")
    ]


def test_headers_match_whatever_the_case_spacing_or_bom() -> None:
    assert normalise_header("\ufeffMobile_Phone ") == "mobile phone"
    headers = [
        "\ufeffexport id",
        "EXPORT NAME",
        "File  Name",
        "Exported-By",
        "Export Date",
        "Export Type",
        "Records",
        "Credits Used",
    ]
    assert map_headers(SOURCE_BY_NAME["zoominfo_downloads"], headers)["exported_at"] == 4


def test_a_missing_required_header_rejects_the_file_with_the_headers_found() -> None:
    with pytest.raises(
        FileRejected,
        match="no 'Exported By', 'Export Date', 'Export Type', 'Records', 'Credits Used' columns",
    ):
        map_headers(SOURCE_BY_NAME["zoominfo_downloads"], ["Export ID", "File Name"])


def test_two_columns_meaning_the_same_thing_reject_the_file() -> None:
    with pytest.raises(
        FileRejected, match="'ZoomInfo Contact ID', 'contact id' all mean contact_id"
    ):
        map_headers(
            SOURCE_BY_NAME["zoominfo_exports"],
            ["ZoomInfo Contact ID", "Mobile phone", "contact id"],
        )
    # Columns the rules do not read may repeat: they are not read at all.
    found = map_headers(
        SOURCE_BY_NAME["zoominfo_exports"], ["ZoomInfo Contact ID", "Mobile phone", "Mobile Phone"]
    )
    assert found == {"contact_id": 0}


def test_excel_ids_are_read_back_only_when_no_digit_was_lost(tmp_path: Path) -> None:
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/exports/x.csv": "ZoomInfo Contact ID,Mobile Phone\n"
            "1.300000001E+9,1.6175550123E+10\n"  # every digit kept: 1300000001
            "1300000002.0,\n"  # float with .0
            " 1300000003 ,\n"  # stray spaces
            "1.3E+09,\n"  # 1.3E+09 could be any of 10^8 IDs
            "1300000004.5,\n"  # not a whole number
            "AB-77,\n",  # non-numeric IDs stay as they are
        },
    )
    ids = [
        r["contact_id"]
        for r in rows(con, "SELECT contact_id FROM stg_zoominfo_exports ORDER BY row_number")
    ]
    assert ids == ["1300000001", "1300000002", "1300000003", "AB-77"]
    assert [n for n, _ in quarantined(con)] == [5, 6]
    assert all("cannot be recovered" in r for _, r in quarantined(con))


def test_us_12_hour_dates_load_and_day_first_dates_are_quarantined(tmp_path: Path) -> None:
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/downloads/l.csv": LISTING
            + "E1,a,a.csv,a@x.test,11/04/2025 02:15 PM,Contacts,1,1\n"
            + "E2,b,b.csv,a@x.test,2025-11-04 14:15:00,Contacts,1,1\n"
            + "E3,c,c.csv,a@x.test,31/10/2025 17:40,Contacts,1,1\n"
            + "E4,d,d.csv,a@x.test,2025-13-01,Contacts,1,1\n",
        },
    )
    got = rows(con, "SELECT export_id, exported_at FROM stg_zoominfo_downloads ORDER BY export_id")
    assert got == [
        {"export_id": "E1", "exported_at": dt.datetime(2025, 11, 4, 14, 15)},
        {"export_id": "E2", "exported_at": dt.datetime(2025, 11, 4, 14, 15)},
    ]
    reasons = quarantined(con)
    assert [n for n, _ in reasons] == [4, 5]
    assert reasons[0][1].startswith(
        'Export Date: "31/10/2025 17:40" is not a date in an accepted format'
    )


def test_every_problem_of_a_row_is_named(tmp_path: Path) -> None:
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/downloads/l.csv": LISTING + "E1,a,a.csv,,yesterday,Widgets,-3,2.5\n",
        },
    )
    ((_, reason),) = quarantined(con)
    assert reason == (
        "Exported By is empty; "
        'Export Date: "yesterday" is not a date in an accepted format '
        "(e.g. 2025-11-04 14:15:00, 2025-11-04 14:15, 2025-11-04T14:15:00, 11/04/2025 02:15 PM); "
        "Export Type must be one of ['contacts', 'companies'] (got 'widgets'); "
        "Records must not be negative (got '-3'); "
        'Credits Used: "2.5" is not a whole number'
    )


def test_bom_cp1252_and_semicolons(tmp_path: Path) -> None:
    cp1252 = "Export ID;Export Name;File Name;Exported By;Export Date;Export Type;Records;Credits Used\r\n"
    cp1252 += "E1;Café – list;a.csv;a@x.test;2025-11-04 10:00:00;Contacts;1;1\r\n"
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/downloads/bom.csv": b"\xef\xbb\xbf"
            + LISTING.encode()
            + b"E0,x,z.csv,a@x.test,2025-11-03 10:00:00,Contacts,1,1\n",
            "inbox/zoominfo/downloads/excel.csv": cp1252.encode("cp1252"),
        },
    )
    got = rows(con, "SELECT export_id, export_name FROM stg_zoominfo_downloads ORDER BY export_id")
    assert got == [
        {"export_id": "E0", "export_name": "x"},
        {"export_id": "E1", "export_name": "Café – list"},
    ]
    files = {r["path"]: r for r in rows(con, "SELECT * FROM ingest_files")}
    assert files["inbox/zoominfo/downloads/excel.csv"]["encoding"] == "cp1252"
    assert files["inbox/zoominfo/downloads/excel.csv"]["delimiter"] == ";"
    assert files["inbox/zoominfo/downloads/bom.csv"]["encoding"] == "utf-8-sig"


def test_an_exports_contact_details_are_neither_read_nor_kept(tmp_path: Path) -> None:
    export = (
        "ZoomInfo Contact ID,Email Address,Mobile phone,Job Title,ZoomInfo Company ID\n"
        "101,ann@acme.test,+1 617 555 0101,CFO,9001\n"
        "1.3E+09,bob@acme.test,+1 617 555 0102,CTO,9002\n"  # quarantined: digits lost
    )
    con = ingested(tmp_path, {"inbox/zoominfo/exports/x.csv": export})
    columns = [
        c for (c,) in con.sql("SELECT column_name FROM (DESCRIBE stg_zoominfo_exports)").fetchall()
    ]
    assert columns == ["file_id", "row_number", "contact_id", "company_id"]
    assert rows(con, "SELECT contact_id, company_id FROM stg_zoominfo_exports") == [
        {"contact_id": "101", "company_id": "9001"}
    ]
    # The quarantined row shows the columns that were read, not the contact's details.
    ((raw,),) = con.sql("SELECT raw_row FROM ingest_quarantine").fetchall()
    assert raw == '{"ZoomInfo Contact ID":"1.3E+09","ZoomInfo Company ID":"9002"}'
    con.close()
    store = duckdb.connect(str(tmp_path / "w.ingest.duckdb"))
    text = " ".join(
        str(v)
        for t in ("stg_zoominfo_exports", "ingest_quarantine", "ingest_files")
        for r in store.sql(f"FROM {t}").fetchall()
        for v in r
        if isinstance(v, str)  # not the modification time, whose digits may hold a 555
    )
    assert "acme.test" not in text and "555" not in text and "CFO" not in text
    # A store made when the model kept them loses them the next time it is opened.
    store.execute("ALTER TABLE stg_zoominfo_exports ADD COLUMN email VARCHAR")
    store.close()
    ingest(tmp_path / "data", tmp_path / "w.ingest.duckdb")
    store = duckdb.connect(str(tmp_path / "w.ingest.duckdb"), read_only=True)
    assert "email" not in [
        c
        for (c,) in store.sql("SELECT column_name FROM (DESCRIBE stg_zoominfo_exports)").fetchall()
    ]


def test_broken_csv_rows_are_quarantined_with_their_text(tmp_path: Path) -> None:
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/exports/x.csv": "ZoomInfo Contact ID,Email Address\n"
            "101,a@x\n"
            "102,b@x,extra\n"  # one column too many
            "103\n"  # cut short
            "104,d@x\n"
            '105,"e@x',  # truncated last line inside a quote
        },
    )
    assert [r["contact_id"] for r in rows(con, "SELECT contact_id FROM stg_zoominfo_exports")] == [
        "101",
        "104",
    ]
    got = rows(con, "SELECT row_number, raw_row, reason FROM ingest_quarantine ORDER BY row_number")
    assert [(r["row_number"], r["raw_row"].strip()) for r in got] == [
        (3, "102,b@x,extra"),
        (4, "103"),
        (6, '105,"e@x'),
    ]
    assert "more columns than the header" in got[0]["reason"]


def test_empty_header_only_and_headerless_files(tmp_path: Path) -> None:
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/usage/empty.csv": b"",
            "inbox/zoominfo/usage/header.csv": "User,Period,Monthly Credits Used\n",
            "inbox/zoominfo/usage/wrong.csv": "Name,Credits\nbob,4\nann,5\n",
        },
    )
    files = {r["path"].rsplit("/", 1)[1]: r for r in rows(con, "SELECT * FROM ingest_files")}
    assert files["empty.csv"]["status"] == "rejected"
    assert files["empty.csv"]["error"] == "file is empty (not even a header row)"
    assert (files["header.csv"]["status"], files["header.csv"]["rows_read"]) == ("loaded", 0)
    assert (files["wrong.csv"]["rows_read"], files["wrong.csv"]["rows_quarantined"]) == (2, 2)
    assert "no 'Period', 'Monthly Credits Used' columns" in files["wrong.csv"]["error"]


def test_same_bytes_under_another_name_are_not_loaded_twice(tmp_path: Path) -> None:
    body = "ZoomInfo Contact ID\n101\n102\n"
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/exports/x.csv": body,
            "inbox/zoominfo/exports/x (1).csv": body,
        },
    )
    files = rows(
        con,
        "SELECT path, status, duplicate_of FROM ingest_files WHERE source = 'zoominfo_exports' ORDER BY path",
    )
    assert files == [
        {
            "path": "inbox/zoominfo/exports/x (1).csv",
            "status": "duplicate",
            "duplicate_of": "inbox/zoominfo/exports/x.csv",
        },
        {"path": "inbox/zoominfo/exports/x.csv", "status": "loaded", "duplicate_of": None},
    ]
    assert rows(con, "SELECT count(*) AS n FROM stg_zoominfo_exports") == [{"n": 2}]


def test_a_listing_file_name_cannot_point_outside_the_exports_folder(tmp_path: Path) -> None:
    con = ingested(
        tmp_path,
        {
            "inbox/zoominfo/downloads/l.csv": LISTING
            + "E1,a,../../../etc/passwd,a@x.test,2025-11-04 10:00:00,Contacts,1,1\n"
            + "E2,b,C:\\Users\\me\\b.csv,a@x.test,2025-11-04 10:00:00,Contacts,1,1\n",
        },
    )
    names = [
        r["file_name"]
        for r in rows(con, "SELECT file_name FROM stg_zoominfo_downloads ORDER BY export_id")
    ]
    assert names == ["passwd", "b.csv"]


def test_missing_required_config_is_a_clear_error(tmp_path: Path) -> None:
    data = drop(tmp_path / "data", {})
    (data / "config" / "allocations.csv").unlink()
    with pytest.raises(FileNotFoundError, match="allocations.csv is missing"):
        ingest(data, tmp_path / "w.ingest.duckdb")


def test_parse_is_columnar_on_a_large_file(tmp_path: Path) -> None:
    """200k rows go through the same path (no per-row Python): a smoke test of scale."""
    n = 200_000
    frame = pl.DataFrame({"ZoomInfo Contact ID": [str(1_300_000_000 + i) for i in range(n)]})
    path = tmp_path / "data" / "inbox" / "zoominfo" / "exports" / "big.csv"
    drop(tmp_path / "data", {})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    ingest(tmp_path / "data", tmp_path / "w.ingest.duckdb")
    con = duckdb.connect(str(tmp_path / "w.ingest.duckdb"), read_only=True)
    assert rows(con, "SELECT count(*) AS n, max(row_number) AS last FROM stg_zoominfo_exports") == [
        {"n": n, "last": n + 1}
    ]


# Lines of a malformed export listing: good rows, short and long rows, an unclosed quote,
# a stray quote, a quoted newline, blank lines, a stray carriage return.
LISTING_LINES = [
    "L{n},x,f{n}.csv,a@x.test,2025-01-0{d} 10:00:00,Contacts,1,1",
    "L{n},x,f{n}.csv,a@x.test",
    "L{n},x,f{n}.csv,a@x.test,2025-01-0{d} 10:00:00,Contacts,1,1,extra",
    'L{n},"open quote,f{n}.csv,a@x.test,2025-01-0{d} 10:00:00,Contacts,1,1',
    'L{n},5" screen,f{n}.csv,a@x.test,2025-01-0{d} 10:00:00,Contacts,1,1',
    'L{n},"two\nlines",f{n}.csv,a@x.test,2025-01-0{d} 10:00:00,Contacts,1,1',
    "",
    "L{n},x,f{n}.csv,a@x.test,2025-01-0{d} 10:00:00,Contacts,1,1\r",
]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(range(len(LISTING_LINES))), max_size=6),
            st.booleans(),  # ends with a newline
        ),
        min_size=2,
        max_size=12,
    )
)
def test_a_night_of_many_files_gives_each_file_what_it_gives_alone(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[list[int], bool]]
) -> None:
    """Files of one layout are staged in batches; a malformed file must not take rows of
    another with it, nor lose its own (DuckDB reading many files in one scan did)."""
    texts = {}
    for i, (kinds, newline) in enumerate(files):
        lines = [LISTING_LINES[k].format(n=i * 10 + j, d=1 + j % 9) for j, k in enumerate(kinds)]
        text = LISTING + "\n".join(lines) + ("\n" if newline else "")
        if text not in texts.values():  # the same bytes twice would be a duplicate
            texts[f"inbox/zoominfo/downloads/l{i:02d}.csv"] = text
    query = (
        "SELECT f.path, f.status, f.rows_read, f.rows_loaded, f.rows_quarantined, "
        "list(q.row_number ORDER BY q.row_number) FILTER (WHERE q.row_number IS NOT NULL), "
        "(SELECT list(s.export_id ORDER BY s.row_number) FROM stg_zoominfo_downloads s "
        " WHERE s.file_id = f.file_id) "
        "FROM ingest_files f LEFT JOIN ingest_quarantine q USING (file_id) "
        "WHERE f.source = 'zoominfo_downloads' GROUP BY ALL ORDER BY f.path"
    )
    together = ingested(tmp_path_factory.mktemp("together"), texts).sql(query).fetchall()
    alone = []
    for path, text in texts.items():
        con = ingested(tmp_path_factory.mktemp("alone"), {path: text})
        alone += con.sql(query).fetchall()
    assert together == alone
    for _path, _status, read, loaded, quarantined, _rows, _ids in together:
        assert read == loaded + quarantined


ROW_OK = "L1,x,a.csv,a@x.test,2025-01-02 10:00:00,Contacts,1,1\n"


def test_a_file_seen_before_is_not_read_again_unless_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Path, size and modification time unchanged: the file is not hashed again (years of
    inbox files are not re-read every night). Any change of time or bytes: it is."""
    listing = "inbox/zoominfo/downloads/d.csv"
    data = drop(tmp_path / "data", {listing: LISTING + ROW_OK})
    store = tmp_path / "w.ingest.duckdb"
    ingest(data, store)

    read: list[str] = []
    real = ingest_module.fingerprint

    def counting(path: Path) -> ingest_module.Fingerprint:
        read.append(path.relative_to(data).as_posix())
        return real(path)

    monkeypatch.setattr(ingest_module, "fingerprint", counting)
    assert {f.status for f in ingest(data, store).files} == {"unchanged"}
    assert read == []

    # Touched, same bytes: read once, still the same file; then not read again.
    path = data / listing
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    assert {f.status for f in ingest(data, store).files} == {"unchanged"}
    assert read == [listing]
    ingest(data, store)
    assert read == [listing]

    # Rewritten in place with new bytes of the same size: loaded as new content.
    path.write_text(LISTING + ROW_OK.replace("L1,", "L2,"))
    os.utime(path, ns=(later + 10**9, later + 10**9))
    by_path = {f.path: f.status for f in ingest(data, store).files}
    assert by_path[listing] == "loaded"
