"""Client statements opened in a real headless Chromium: the page renders with no network,
its numbers equal the warehouse's, the chart is drawn with an axis, values and month names,
no other client shows; it fits a phone, a laptop and an A4 page; the overview has a total
per vendor and fits a landscape page; what a client owes shows with its arithmetic."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO, rows, run_pipeline
from tests.pdf_text import page_count, words
from transforms.statements import ALWAYS_SHOWN, FIELDS, write_statements

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Locally without Chromium these skip; in CI (which installs it) a missing browser fails.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs Chromium (.ci/run installs it)"
)
KEYS = [k for k, _ in FIELDS]
CLIENTS = ("bluepoint", "crestline", "harborview", "northwind")
PHONE, LAPTOP = {"width": 390, "height": 844}, {"width": 1366, "height": 768}


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


def warehouse_figures(
    con: duckdb.DuckDBPyConnection, client: str, vendor: str = "zoominfo"
) -> dict[str, int]:
    (row,) = rows(
        con,
        f"SELECT * FROM monthly_balances WHERE client_id = '{client}' AND month = '2025-10-01' "
        f"AND vendor = '{vendor}'",
    )
    return {k: row[k] for k in KEYS if k in row}


def test_statement_page_shows_the_warehouse_figures_and_a_chart(october, browser) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((folder / "bluepoint.html").as_uri())
    shown = {
        el.get_attribute("data-field"): int(el.get_attribute("data-value"))
        for el in page.query_selector_all("[data-field]")
    }
    expected = warehouse_figures(con, "bluepoint")
    # Every figure shown is the warehouse's; the ones left out are 0 and not always asked.
    assert {k: expected[k] for k in shown if k in expected} == {
        k: v for k, v in shown.items() if k in expected
    }
    assert all(expected[k] == 0 and k not in ALWAYS_SHOWN for k in set(expected) - set(shown))
    assert (shown["baseline_credits"], shown["gift_credits"], shown["forfeited_credits"]) == (
        1000,
        400,
        90,
    )
    assert "purchased_credits" not in shown and "overage_credits" not in shown  # both 0
    text = page.inner_text("body")
    assert "Standard monthly allocation\t1,000" in text  # thousands separated
    assert "one-time gift of 400 credits" in text
    assert "90 credits were unused at month end and are forfeited" in text
    assert "Provisional: the month has ended but is not closed yet" in text
    # The chart: Aug, Sep, Oct (the months that exist), each with available, used and
    # forfeited bars, October's gift stacked on its allocation: 3 + 3 + 4 bars.
    bars = page.eval_on_selector_all(
        "svg.chart rect.bar",
        "bs => bs.map(b => [b.dataset.month, b.classList[1], +b.dataset.value, b.getBBox().height])",
    )
    assert [(m, c, v) for m, c, v, _ in bars] == [
        ("2025-08", "available", 1000),
        ("2025-08", "used", 850),
        ("2025-08", "forfeited", 150),
        ("2025-09", "available", 1000),
        ("2025-09", "used", 920),
        ("2025-09", "forfeited", 80),
        ("2025-10", "available", 1000),
        ("2025-10", "gift", 400),
        ("2025-10", "used", 1310),
        ("2025-10", "forfeited", 90),
    ]
    assert all(h > 0 for *_, h in bars)
    months = page.eval_on_selector_all("svg.chart text.month", "ts => ts.map(t => t.textContent)")
    assert months == ["Aug", "Sep", "Oct"]
    values = page.eval_on_selector_all("svg.chart text.value", "ts => ts.map(t => t.textContent)")
    assert values[-3:] == ["1,400", "1,310", "90"]  # October: 1,000 + 400 gift, used, lost
    ticks = page.eval_on_selector_all("svg.chart text.tick", "ts => ts.map(t => t.textContent)")
    assert ticks == ["0", "500", "1,000", "1,500"]
    assert page.eval_on_selector("svg.chart", "s => s.getBoundingClientRect().width") > 300
    # Self-contained: nothing fetched but the page itself; no other client on it.
    assert [u for u in requests if not u.startswith("file://")] == []
    for other in ("Harbor View", "Northwind", "Crestline", "harborview", "northwind", "crestline"):
        assert other not in page.content()
    page.close()


def test_usage_appendix_adds_up_to_what_was_charged(october, browser) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    page = browser.new_page()
    page.goto((folder / "northwind.html").as_uri())
    for vendor in ("zoominfo", "6sense"):
        charged = warehouse_figures(con, "northwind", vendor)["charged_credits"]
        for table in ("by-user", "by-export"):
            credits = page.eval_on_selector_all(
                f"table.{table}[data-vendor='{vendor}'] [data-credits]",
                "cs => cs.map(c => +c.dataset.credits)",
            )
            assert sum(credits) == charged, (vendor, table)
    # ZoomInfo's two October exports: 173 + 367 = 540 credits.
    exports = page.eval_on_selector_all(
        "table.by-export[data-vendor='zoominfo'] td.id", "ts => ts.map(t => t.textContent)"
    )
    assert exports == ["EXP-251006-01", "EXP-251020-01"]
    page.close()


def test_free_reexports_another_client_paid_for_are_worded_as_such(october) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    # Harbor View's 20 free re-exports in October: 8 of records another client had paid for
    # (duplicate_reexports, cross_client), 12 of its own.
    (n,) = con.sql(
        "SELECT count(*) FROM duplicate_reexports WHERE repeat_client_id = 'harborview' "
        "AND kind = 'free_reexport' AND cross_client AND month = '2025-10-01'"
    ).fetchall()[0]
    page = (folder / "harborview.html").read_text()
    assert n == 8
    assert (
        "8 records cost you nothing because another client of the agency had already paid" in page
    )
    assert "12 records you exported again cost nothing" in page


@pytest.mark.parametrize("client", [*CLIENTS, "index"])
def test_pages_fit_a_phone_and_a_laptop(october, browser, client: str) -> None:  # type: ignore[no-untyped-def]
    _, folder = october
    for size in (PHONE, LAPTOP):
        page = browser.new_page(viewport=size)
        page.goto((folder / f"{client}.html").as_uri())
        # No sideways scrolling of the page (wide tables scroll inside their own box).
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], size
        if client != "index":
            width = page.eval_on_selector("svg.chart", "s => s.getBoundingClientRect().width")
            assert width <= size["width"]
        page.close()


def test_overview_page_covers_every_client_with_totals(october, browser) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    page = browser.new_page()
    page.goto((folder / "index.html").as_uri())
    shown = {
        (r.get_attribute("data-vendor"), r.get_attribute("data-client")): int(
            r.query_selector("[data-field=charged_credits]").get_attribute("data-value")
        )
        for r in page.query_selector_all("tr[data-client]")
    }
    columns = {
        c for (c,) in con.sql("SELECT column_name FROM (DESCRIBE monthly_balances)").fetchall()
    }
    fields = ", ".join(k for k, _ in FIELDS if k in columns)
    rows = con.sql(
        f"SELECT vendor, client_id, charged_credits, {fields} FROM monthly_balances "
        "WHERE month = '2025-10-01'"
    ).fetchall()
    # Exports by nobody in users.csv are shown where there were some (ZoomInfo's 35);
    # an all-zero 'unassigned' row for another vendor is left out.
    hidden = {(v, c) for v, c, _, *f in rows if c == "unassigned" and not any(f)}
    expected = {(v, c): n for v, c, n, *_ in rows if (v, c) not in hidden}
    assert shown == expected
    totals = {
        r.get_attribute("data-vendor-total"): int(
            r.query_selector("[data-total=charged_credits]").get_attribute("data-value")
        )
        for r in page.query_selector_all("tr.total")
    }
    # ZoomInfo in October: 1,310 + 180 + 700 + 540 + 35 unassigned = 2,765.
    assert totals["zoominfo"] == 2765
    assert totals == {v: sum(n for (w, _), n in expected.items() if w == v) for v in totals}
    # Printed landscape on A4 (277 mm wide inside 10 mm margins: 1,047 CSS px), it fits.
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 1047, "height": 700})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1047
    pdf = page.pdf(prefer_css_page_size=True)
    assert page_count(pdf) == 1
    assert b"/MediaBox [0 0 841.91998 594.95996]" in pdf  # landscape A4 in points
    page.goto((folder / "index.html").as_uri())
    page.click("a[href='bluepoint.html']")
    assert page.title() == "Bluepoint: credit statement, October 2025"
    page.close()


def test_a_reversal_is_on_the_statement_so_its_figures_add_up(october) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    # Northwind's 6sense October: 110 available, 120 used, 9 beyond its credits, and the
    # vendor gave 1 back: 110 - 120 + 9 + 1 = 0 remaining.
    f = warehouse_figures(con, "northwind", "6sense")
    assert (f["available_credits"], f["charged_credits"], f["overage_credits"]) == (110, 120, 9)
    assert (f["reversed_credits"], f["closing_balance"]) == (1, 0)
    page = (folder / "northwind.html").read_text()
    assert 'data-field="reversed_credits" data-value="1"' in page
    assert "The vendor reversed 1 of the credits it charged" in page
    header, *lines = (folder / "northwind.csv").read_text().splitlines()
    assert "reversed_credits" in header.split(",")


def test_an_all_zero_unassigned_row_is_left_out_of_the_overview(october, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    con, folder = october
    # November (to the 10th): no export by anybody outside users.csv, so ZoomInfo's
    # 'unassigned' row is all zeros and the overview leaves it out; October's 35 show.
    (nov,) = rows(
        con,
        "SELECT charged_credits, overage_credits FROM monthly_balances "
        "WHERE client_id = 'unassigned' AND vendor = 'zoominfo' AND month = '2025-11-01'",
    )
    assert (nov["charged_credits"], nov["overage_credits"]) == (0, 0)
    write_statements(folder.parent.parent / "w.duckdb", tmp_path, dt.date(2025, 11, 1))
    assert 'data-client="unassigned"' not in (tmp_path / "2025-11" / "index.html").read_text()
    assert 'data-client="unassigned"' in (folder / "index.html").read_text()


def test_each_statement_prints_on_its_own_a4_pages(october, browser) -> None:  # type: ignore[no-untyped-def]
    _, folder = october
    pages = {}
    for client in CLIENTS:
        page = browser.new_page()
        page.goto((folder / f"{client}.html").as_uri())
        page.emulate_media(media="print")
        pdf = page.pdf(prefer_css_page_size=True, print_background=True)
        pages[client] = page_count(pdf)
        assert b"/MediaBox [0 0 594.95996 841.91998]" in pdf  # portrait A4
        assert "Provisional:themonthhasended" in words(pdf)
        page.close()
    # One vendor's figures and chart on the first page, the usage appendix from the next:
    # Bluepoint (ZoomInfo only) takes 2 pages; the others, with two vendors or a long
    # list of 6sense days, no more than 4.
    assert pages["bluepoint"] == 2
    assert all(2 <= n <= 4 for n in pages.values()), pages


def test_what_the_client_owes_shows_with_its_arithmetic(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    """invoice_lines is replaced by hand here, in a copy of a demo warehouse, keeping the
    shape the money mart publishes: two lines for Northwind, none for Bluepoint (the mart's
    own figures: tests/test_money.py)."""
    warehouse = tmp_path / "w.duckdb"
    run_pipeline(REPO / "data" / "demo", warehouse, dt.date(2025, 11, 10)).close()
    con = duckdb.connect(str(warehouse))
    con.execute("""
        CREATE OR REPLACE TABLE invoice_lines (
            vendor VARCHAR, client_id VARCHAR, month DATE, line_no INTEGER, line_kind VARCHAR,
            description VARCHAR, credits BIGINT, unit_price DECIMAL(12,4),
            amount DECIMAL(14,2), currency VARCHAR, arithmetic VARCHAR, policy VARCHAR)
    """)
    con.execute("""
        INSERT INTO invoice_lines VALUES
        ('zoominfo', 'northwind', '2025-10-01', 1, 'overage', 'ZoomInfo overage', 40, 0.4950,
         19.80, 'USD', '40 credits × 0.4950 USD (cost 0.45 + 10%) = 19.80 USD', 'cost_plus'),
        ('6sense', 'northwind', '2025-10-01', 2, 'purchase', '6sense block of 1,200 credits',
         1200, 1.0000, 1200.00, 'USD', '1,200 credits × 1.0000 USD = 1,200.00 USD', 'at_cost'),
        ('zoominfo', 'northwind', '2025-09-01', 1, 'overage', 'ZoomInfo overage', 120, 0.4950,
         59.40, 'USD', '120 credits × 0.4950 USD = 59.40 USD', 'cost_plus')
    """)
    con.close()
    write_statements(warehouse, tmp_path / "out", dt.date(2025, 10, 1))
    page = browser.new_page()
    page.goto((tmp_path / "out" / "2025-10" / "northwind.html").as_uri())
    text = page.inner_text("section.money")
    assert text.startswith("What you owe for October 2025")
    assert "40 credits × 0.4950 USD (cost 0.45 + 10%) = 19.80 USD" in text
    assert "1,200.00 USD" in text
    # Total: 19.80 + 1,200.00 = 1,219.80 (September's line is another month's).
    total = page.inner_text("section.money tr.total[data-currency=USD]")
    assert total.split("\t") == ["Total", "1,219.80 USD"]
    assert "59.40" not in text
    page.goto((tmp_path / "out" / "2025-10" / "bluepoint.html").as_uri())
    assert page.query_selector("section.money") is None
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


def test_agency_text_is_shown_as_text(october, tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    from transforms.settings import Agency

    con, folder = october
    warehouse = folder.parent.parent / "w.duckdb"
    agency = Agency('<script>alert("x")</script> & Co', "<b>mail</b>@agency.test")
    write_statements(warehouse, tmp_path, dt.date(2025, 10, 1), agency)
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto((tmp_path / "2025-10" / "bluepoint.html").as_uri())
    assert page.inner_text("header.agency .name") == '<script>alert("x")</script> & Co'
    assert page.inner_text("header.agency .contact") == "<b>mail</b>@agency.test"
    assert dialogs == [] and page.query_selector("header b") is None
    page.close()
