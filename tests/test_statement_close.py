"""Final and provisional statements (DOMAIN rule 8): the close issues each client's statement
and keeps it with its sha256; rendered again after late files and config changes, a closed
month's statement is byte for byte the one issued, and what came late is explained in the
first open month's. `creditrecon statements --pdf` run as a subprocess prints the same pages
to PDF with the system's Chromium, or says in one line how to install it."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, rows, run_pipeline
from tests.pdf_text import page_count, words
from transforms.close import close_month
from transforms.ingest import ingest_store_path
from transforms.settings import load_settings
from transforms.statements import ClosingStatements, write_statements

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs Chromium (.ci/run installs it)"
)
AS_OF = dt.date(2025, 11, 10)
OCTOBER, NOVEMBER = dt.date(2025, 10, 1), dt.date(2025, 11, 1)
CREDITRECON = str(Path(sys.executable).with_name("creditrecon"))
# Five records never exported before, exported by Bluepoint's user on 30 October.
LATE_IDS = [f"13999900{i:02d}" for i in range(1, 6)]
LATE_LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
    "EXP-251030-09,bluepoint late,bluepoint_contacts_2025-10-30.csv,"
    "melissa.ortiz@brightpath.agency,2025-10-30 16:00:00,Contacts,5,5\n"
)
LATE_EXPORT = "ZoomInfo Contact ID,ZoomInfo Company ID,First Name\n" + "".join(
    f"{i},400000001,A\n" for i in LATE_IDS
)
# A 1x1 PNG: the agency's logo.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005fe02fea7d6a4"
    "3f0000000049454e44ae426082"
)


def close(data: Path, warehouse: Path, month: dt.date) -> None:
    """What `creditrecon close` does, without Prefect: bring the warehouse up to date,
    freeze the month keeping the statements it issues, publish."""
    run_pipeline(data, warehouse, AS_OF).close()
    issue = ClosingStatements(warehouse, month, load_settings(data).agency)
    close_month(ingest_store_path(warehouse), warehouse, month, AS_OF, issue)
    run_pipeline(data, warehouse, AS_OF).close()


@pytest.fixture(scope="module")
def closed_october(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo with an agency name, contact and logo, August to October closed as of
    10 November: (data folder, warehouse)."""
    root = tmp_path_factory.mktemp("closed")
    data = root / "demo"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    (data / "config" / "logo.png").write_bytes(PNG)
    # The demo's own [agency], with a PNG logo in place of its SVG one.
    settings = data / "config" / "settings.toml"
    settings.write_text(
        '[agency]\nname = "Brightpath Agency"\ncontact = "accounts@brightpath.agency"\n'
        'logo = "config/logo.png"\n'
    )
    warehouse = root / "w" / "w.duckdb"
    for month in ("2025-08", "2025-09", "2025-10"):
        close(data, warehouse, dt.date.fromisoformat(month + "-01"))
    return data, warehouse


def issued(warehouse: Path) -> dict[str, tuple[str, str, dt.datetime]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            c: (f, s, at)
            for c, f, s, at in con.execute(
                "SELECT client_id, file_name, sha256, closed_at FROM closed_statements "
                "WHERE month = ?",
                [OCTOBER],
            ).fetchall()
        }
    finally:
        con.close()


def test_a_closed_statement_is_the_one_issued_whatever_comes_later(
    closed_october: tuple[Path, Path], tmp_path: Path
) -> None:
    data, warehouse = closed_october
    kept = issued(warehouse)
    assert sorted(kept) == ["bluepoint", "crestline", "harborview", "northwind"]
    first = write_statements(warehouse, tmp_path / "first", OCTOBER, load_settings(data).agency)
    bluepoint = (tmp_path / "first" / "2025-10" / "bluepoint.html").read_text()
    for client, (name, sha, _) in kept.items():
        html = tmp_path / "first" / "2025-10" / name
        assert hashlib.sha256(html.read_bytes()).hexdigest() == sha, client
    closed_on = kept["bluepoint"][2]
    assert f"Final, closed on {closed_on.day} {closed_on:%B %Y}" in bluepoint
    assert "Brightpath Agency" in bluepoint and "data:image/png;base64," in bluepoint

    # Later: a file for October arrives, the client is renamed, a grant is added for
    # November, the agency changes its name.
    exports = data / "inbox" / "zoominfo"
    (exports / "exports" / "bluepoint_contacts_2025-10-30.csv").write_text(LATE_EXPORT)
    (exports / "downloads" / "zoominfo_downloads_2025-10-late.csv").write_text(LATE_LISTING)
    clients = data / "config" / "clients.csv"
    clients.write_text(
        clients.read_text().replace("bluepoint,Bluepoint", "bluepoint,Bluepoint Group")
    )
    grants = data / "config" / "grants.csv"
    grants.write_text(
        grants.read_text() + "zoominfo,bluepoint,G-2025-11-BP,gift,50,2025-11-01,,November gift\n"
    )
    settings = data / "config" / "settings.toml"
    settings.write_text(settings.read_text().replace("Brightpath Agency", "Brightpath Partners"))
    con = run_pipeline(data, warehouse, dt.date(2025, 11, 12))
    november = rows(
        con,
        "SELECT available_credits, charged_credits, forfeited_credits, closing_balance, "
        "late_charged_credits FROM monthly_balances "
        "WHERE client_id = 'bluepoint' AND vendor = 'zoominfo' AND month = '2025-11-01'",
    )
    con.close()
    # November before: 1,000 available, 278 charged, 0 forfeited, 722 left. Now: + the
    # 50 gift (1,050; 772 left); + the 5 late records, drawn from October's lots that had
    # 90 left (charged 283, forfeited -5: the 5 were counted as forfeited in October), so
    # the late charge leaves November's balance as it was.
    assert november == [
        {
            "available_credits": 1050,
            "charged_credits": 283,
            "forfeited_credits": -5,
            "closing_balance": 772,
            "late_charged_credits": 5,
        }
    ]

    again = write_statements(warehouse, tmp_path / "again", OCTOBER, load_settings(data).agency)
    assert [p.name for p in again] == [p.name for p in first]
    for a, b in zip(first, again, strict=True):
        if a.name != "index.html":  # the agency's own overview says as of when it was made
            assert a.read_bytes() == b.read_bytes(), a.name  # byte for byte, CSV too
    assert issued(warehouse) == kept

    write_statements(warehouse, tmp_path / "again", NOVEMBER, load_settings(data).agency)
    page = (tmp_path / "again" / "2025-11" / "bluepoint.html").read_text()
    assert "Bluepoint Group: credit statement, November 2025" in page
    assert "Brightpath Partners" in page
    assert "Provisional: figures to date (as of 12 November 2025)" in page
    assert (
        "5 of the credits used this month are for exports made in October 2025, which reached "
        f"us after October was closed on {closed_on.day} {closed_on:%B %Y}" in page
    )
    assert "5 of them came from October&#39;s credits that had been counted as forfeited" in page
    assert "EXP-251030-09" in page  # the late export in the usage appendix


def test_a_month_ended_but_not_closed_is_provisional(tmp_path: Path) -> None:
    run_pipeline(REPO / "data" / "demo", tmp_path / "w.duckdb", AS_OF).close()
    write_statements(tmp_path / "w.duckdb", tmp_path / "out", OCTOBER)
    page = (tmp_path / "out" / "2025-10" / "crestline.html").read_text()
    assert "Provisional: the month has ended but is not closed yet" in page
    assert "Final" not in page


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CREDITRECON, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


@needs_chromium
def test_statements_pdf_final_and_provisional(closed_october: tuple[Path, Path]) -> None:
    data, warehouse = closed_october
    out = warehouse.parent / "pdf"
    for month, words_expected in (
        ("2025-10", "Final,closedon"),
        ("2025-11", "Provisional:figurestodate"),
    ):
        done = run("statements", month, "--data", str(data), "--warehouse", str(warehouse),
                   "--out", str(out), "--pdf")  # fmt: skip
        assert done.returncode == 0, done.stderr
        names = load_names(warehouse)
        for client in ("bluepoint", "crestline", "harborview", "northwind"):
            pdf = (out / month / f"{client}.pdf").read_bytes()
            assert pdf.startswith(b"%PDF-")
            text = words(pdf)
            # October's as issued (before any rename the other test makes), November's now.
            name = names[client] if month == "2025-11" else ISSUED_NAMES[client]
            assert f"{name}:creditstatement,".replace(" ", "") in text, (client, text[:200])
            assert words_expected in text, (client, text[:200])
            assert 1 <= page_count(pdf) <= 4, client


ISSUED_NAMES = {
    "bluepoint": "Bluepoint",
    "crestline": "Crestline Dental",
    "harborview": "Harbor View Realty",
    "northwind": "Northwind Logistics",
}


def load_names(warehouse: Path) -> dict[str, str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return dict(con.sql("SELECT client_id, client_name FROM clients").fetchall())
    finally:
        con.close()


@needs_chromium
def test_the_close_issues_pdfs_it_keeps(closed_october: tuple[Path, Path], tmp_path: Path) -> None:
    """The PDF written for a closed month is the one the close printed, byte for byte."""
    data, warehouse = closed_october
    con = duckdb.connect(str(warehouse), read_only=True)
    kept = dict(
        con.execute(
            "SELECT client_id, pdf_sha256 FROM closed_statements WHERE month = ?", [OCTOBER]
        ).fetchall()
    )
    con.close()
    assert all(kept.values())
    write_statements(warehouse, tmp_path, OCTOBER, pdf=True)
    for client, sha in kept.items():
        assert (
            hashlib.sha256((tmp_path / "2025-10" / f"{client}.pdf").read_bytes()).hexdigest() == sha
        )


def test_without_chromium_pdf_is_one_line(tmp_path: Path) -> None:
    run_pipeline(REPO / "data" / "demo", tmp_path / "w.duckdb", AS_OF).close()
    env = {k: v for k, v in os.environ.items() if k not in ("CREDITRECON_CHROMIUM", "PATH")} | {
        "PATH": str(Path(sys.executable).parent)
    }
    done = run("statements", "2025-10", "--warehouse", str(tmp_path / "w.duckdb"), "--pdf", env=env)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("creditrecon statements: PDF statements need Chromium")
    assert "apt-get install chromium" in done.stderr


def test_a_logo_outside_the_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    (tmp_path / "secret.png").write_bytes(PNG)
    (data / "config" / "link.png").symlink_to(tmp_path / "secret.png")
    run_pipeline(data, tmp_path / "w.duckdb", AS_OF).close()
    for logo, words_expected in (
        ("../secret.png", "is outside the data folder"),
        (str(tmp_path / "secret.png"), "is outside the data folder"),
        ("config/clients.csv", "is not an image file"),
        ("config/none.png", "is not a regular file in the data folder"),
        ("config/link.png", "is outside the data folder"),  # a link to ../secret.png
    ):
        (data / "config" / "settings.toml").write_text(f'[agency]\nlogo = "{logo}"\n')
        done = run(
            "statements", "2025-10", "--data", str(data), "--warehouse", str(tmp_path / "w.duckdb")
        )
        assert done.returncode == 1, done.stdout
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"agency.logo = '{logo}' {words_expected}" in done.stderr, done.stderr
    (data / "config" / "settings.toml").write_text('[agency]\nname = "A"\nfax = "1"\n')
    done = run(
        "statements", "2025-10", "--data", str(data), "--warehouse", str(tmp_path / "w.duckdb")
    )
    assert done.returncode == 1 and "unknown settings ['agency.fax']" in done.stderr
    (data / "config" / "settings.toml").write_text("[agency]\nname = 3\n")
    done = run(
        "statements", "2025-10", "--data", str(data), "--warehouse", str(tmp_path / "w.duckdb")
    )
    assert done.returncode == 1 and done.stderr.endswith(
        "agency.name = 3 must be one line of text\n"
    )


@needs_chromium
def test_the_demo_closed_gives_final_pdfs_and_november_provisional_ones(
    prefect_api: str, tmp_path: Path
) -> None:
    """The demo as README tells it, every command a subprocess on a Prefect server: the
    nightly, the close of August, September and October, then the statements with PDFs."""
    data = tmp_path / "demo"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    warehouse = tmp_path / "w" / "creditrecon.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    where = ["--data", str(data), "--warehouse", str(warehouse)]
    done = run("nightly", *where, "--as-of", "2025-11-10", env=env)
    assert done.returncode == 0, done.stderr
    for month in ("2025-08", "2025-09", "2025-10"):
        done = run("close", month, *where, "--as-of", "2025-11-10", env=env)
        assert done.returncode == 0, done.stderr
        assert "Its final statements:" in done.stdout and "PDFs need" not in done.stdout
    out = warehouse.parent / "creditrecon-statements"
    closed_pdfs = {c: (out / "2025-10" / f"{c}.pdf").read_bytes() for c in ISSUED_NAMES}
    for month, status in (("2025-10", "Final,closedon"), ("2025-11", "Provisional:figurestodate")):
        done = run("statements", month, *where, "--pdf")
        assert done.returncode == 0, done.stderr
        con = duckdb.connect(str(warehouse), read_only=True)
        charged = con.execute(
            "SELECT client_id, vendor, charged_credits FROM monthly_balances WHERE month = ? "
            "AND client_id <> 'unassigned'",
            [dt.date.fromisoformat(month + "-01")],
        ).fetchall()
        con.close()
        for client, vendor, n in charged:
            text = words((out / month / f"{client}.pdf").read_bytes())
            assert status in text, client
            assert f"Used(charged){n:,}" in text, (client, vendor, n)
    # The close's own PDFs are the ones written again.
    assert {c: (out / "2025-10" / f"{c}.pdf").read_bytes() for c in ISSUED_NAMES} == closed_pdfs


def test_a_close_without_a_working_chromium_issues_html_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Chromium (August), or one that cannot start (September: /bin/true): the month
    closes all the same, its statements kept without PDFs, and the reason is given."""
    data = tmp_path / "demo"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(data, warehouse, AS_OF).close()
    for month, binary, why in (
        (dt.date(2025, 8, 1), str(tmp_path / "no-chromium"), "need Chromium, which was not found"),
        (dt.date(2025, 9, 1), shutil.which("true") or "/bin/true", "could not print"),
    ):
        monkeypatch.setenv("CREDITRECON_CHROMIUM", binary)
        issue = ClosingStatements(warehouse, month, None)
        close_month(ingest_store_path(warehouse), warehouse, month, AS_OF, issue)
        assert why in issue.why_no_pdf, issue.why_no_pdf
        run_pipeline(data, warehouse, AS_OF).close()
    con = duckdb.connect(str(warehouse), read_only=True)
    kept = con.sql(
        "SELECT month::VARCHAR, count(*), count(pdf), count(sha256) FROM closed_statements "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()
    assert kept == [("2025-08-01", 4, 0, 4), ("2025-09-01", 4, 0, 4)]
