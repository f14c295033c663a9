"""Client statements opened in a real headless Chromium: the page renders with no network,
its numbers equal the warehouse's, the chart is drawn, and no other client shows."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, rows, run_pipeline
from transforms.statements import FIELDS, write_statements

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Locally without Chromium these skip; in CI (which installs it) a missing browser fails.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs Chromium (.ci/run installs it)"
)
KEYS = [k for k, _ in FIELDS]


@pytest.fixture(scope="module")
def october(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    root = tmp_path_factory.mktemp("statements")
    con = run_pipeline(REPO / "data" / "demo", root / "w.duckdb", dt.date(2025, 11, 10))
    write_statements(root / "w.duckdb", root / "out", dt.date(2025, 10, 1))
    yield con, root / "out" / "2025-10"
    con.close()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


def warehouse_figures(con: duckdb.DuckDBPyConnection, client: str) -> dict[str, int]:
    (row,) = rows(
        con, f"SELECT * FROM monthly_balances WHERE client_id = '{client}' AND month = '2025-10-01'"
    )
    return {k: row[k] for k in KEYS if k in row}


def test_statement_page_shows_the_warehouse_figures_and_a_chart(october, browser) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((folder / "bluepoint.html").as_uri())
    shown = {
        el.get_attribute("data-field"): int(el.inner_text())
        for el in page.query_selector_all("[data-field]")
    }
    expected = warehouse_figures(con, "bluepoint")
    assert {k: shown[k] for k in expected} == expected
    assert (shown["baseline_credits"], shown["gift_credits"], shown["forfeited_credits"]) == (
        1000,
        400,
        90,
    )
    text = page.inner_text("body")
    assert "one-time gift of 400 credits" in text
    assert "90 credits were unused at month end and are forfeited" in text
    # The chart is drawn: one bar each for available and used per month, with real height.
    heights = page.eval_on_selector_all(
        "svg.chart rect.bar", "bars => bars.map(b => b.getBBox().height)"
    )
    assert len(heights) == 6 and all(h > 0 for h in heights)
    assert page.eval_on_selector("svg.chart", "s => s.getBoundingClientRect().width") > 300
    # Self-contained: nothing fetched but the page itself; no other client on it.
    assert [u for u in requests if not u.startswith("file://")] == []
    for other in ("Harbor View", "Northwind", "Crestline", "harborview", "northwind", "crestline"):
        assert other not in page.content()
    page.close()


def test_overview_page_covers_every_client(october, browser) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    page = browser.new_page()
    page.goto((folder / "index.html").as_uri())
    shown = {
        r.get_attribute("data-client"): int(
            r.query_selector("[data-field=charged_credits]").inner_text()
        )
        for r in page.query_selector_all("tr[data-client]")
    }
    expected = dict(
        con.sql(
            "SELECT client_id, charged_credits FROM monthly_balances WHERE month = '2025-10-01'"
        ).fetchall()
    )
    assert shown == expected
    page.click("a[href='bluepoint.html']")
    assert page.title() == "Bluepoint: credit statement, October 2025"
    page.close()


def test_statement_csv_holds_the_same_figures(october) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    header, line = (folder / "bluepoint.csv").read_text().splitlines()
    got = dict(zip(header.split(","), line.split(","), strict=True))
    expected = warehouse_figures(con, "bluepoint")
    assert {k: int(got[k]) for k in expected} == expected
    assert got["client_name"] == "Bluepoint"


def test_csv_cells_cannot_run_as_formulas(tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    clients = data / "config" / "clients.csv"
    clients.write_text(
        clients.read_text().replace(
            "bluepoint,Bluepoint", 'bluepoint,"=HYPERLINK(""http://x.test"")"'
        )
    )
    run_pipeline(data, tmp_path / "w.duckdb", dt.date(2025, 11, 10)).close()
    write_statements(tmp_path / "w.duckdb", tmp_path / "out", dt.date(2025, 10, 1))
    line = (tmp_path / "out" / "2025-10" / "bluepoint.csv").read_text().splitlines()[1]
    assert line.startswith('bluepoint,"\'=HYPERLINK(""http://x.test"")"')
