"""What a client owes (docs/rules.md, Money [13]): each billing policy, a cap of included
credits, a markup rounded half up, a purchased block at its own price and at the
contract's, a closed month's lines frozen at the close whatever comes later, the money on
the statement (HTML and PDF), billing.csv rows that cannot be used, and the demo's
Northwind. The commands run as a subprocess, as a user runs them, on a Prefect server."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO
from tests.pdf_text import words
from transforms.build import RunParams, build
from transforms.config_errors import ConfigError
from transforms.ingest import ingest, ingest_store_path

CREDITRECON = str(Path(sys.executable).with_name("creditrecon"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="needs Chromium (.ci/run installs it)"
)
AS_OF = "2025-11-10"
OCTOBER, NOVEMBER = dt.date(2025, 10, 1), dt.date(2025, 11, 1)
CLIENTS = ["atcost", "markup", "capped", "incl", "nopolicy", "buyer"]
LISTING = (
    "Export ID,Export Name,File Name,Exported By,Export Date,Export Type,Records,Credits Used\n"
)
# Every client has 10 ZoomInfo credits a month from October, at $0.45 a credit.
CONFIG = {
    "config/clients.csv": "client_id,client_name\n"
    + "".join(f"{c},{c.title()}\n" for c in CLIENTS),
    "config/users.csv": "vendor,user,client_id,valid_from,valid_to\n"
    + "".join(f"zoominfo,{c}@agency.test,{c},2025-01-01,\n" for c in CLIENTS),
    "config/contracts.csv": "vendor,contract_id,starts_on,ends_on,pool_credits,reset,"
    "overage_allowed,cap_credits,price_per_credit\n"
    "zoominfo,ZI,2025-01-01,2026-01-01,1000,monthly,true,,0.45\n",
    "config/allocations.csv": "vendor,client_id,effective_month,monthly_credits\n"
    + "".join(f"zoominfo,{c},2025-10,10\n" for c in CLIENTS),
    # buyer's block has its own price; markup's November block the contract's. A price on a
    # gift is a mistake: the gift is quarantined (capped keeps its 10 credits).
    "config/grants.csv": "vendor,client_id,grant_id,kind,credits,effective_on,expires_on,note,"
    "price_per_credit\n"
    "zoominfo,buyer,P-1,purchase,100,2025-10-01,,block,0.30\n"
    "zoominfo,markup,P-2,purchase,50,2025-11-01,,block,\n"
    "zoominfo,capped,G-1,gift,5,2025-10-01,,gift,0.10\n",
    "config/reversals.csv": "vendor,ticket,reference,credits,reversed_on\n",
    # markup: its ZoomInfo row beats its row for every vendor. nopolicy has no row.
    "config/billing.csv": "client_id,vendor,policy,markup_percent,included_credits\n"
    "atcost,,at_cost,,\n"
    "markup,,at_cost,,\n"
    "markup,zoominfo,cost_plus,10,\n"
    "capped,,included,20,2\n"
    "incl,zoominfo,included,,5\n"
    "buyer,,at_cost,,\n",
}


def exports(client: str, day: str, n: int, first: int) -> dict[str, str]:
    """A listing and export file of ``n`` records never exported before (ids from
    ``first``), by the client's user on ``day``."""
    name = f"{client}_{day}.csv"
    ids = [str(1_300_000_000 + first + i) for i in range(n)]
    return {
        f"inbox/zoominfo/downloads/{client}_{day}.csv": LISTING
        + f"E-{client}-{day},{client},{name},{client}@agency.test,{day} 10:00:00,Contacts,{n},{n}\n",
        f"inbox/zoominfo/exports/{name}": "ZoomInfo Contact ID,Email Address\n"
        + "".join(f"{i},x@x.test\n" for i in ids),
    }


def scenario(root: Path) -> Path:
    """October: atcost, markup, capped, incl and nopolicy each export 13 records against
    their 10 credits (3 beyond them); buyer 5, within its own."""
    files = dict(CONFIG)
    for i, client in enumerate(CLIENTS):
        files |= exports(client, "2025-10-15", 5 if client == "buyer" else 13, 1000 * i)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CREDITRECON, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def lines(warehouse: Path, month: dt.date) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        got = con.execute(
            "SELECT client_id, line_no, line_kind, credits, unit_price, amount, arithmetic, policy "
            "FROM invoice_lines WHERE month = ? ORDER BY client_id, line_no",
            [month],
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[object, ...]]] = {}
    for client, *rest in got:
        out.setdefault(client, []).append(tuple(rest))
    return out


# October as billed: (line_no, kind, credits, unit price, amount, arithmetic, policy).
OCTOBER_LINES = {
    # 3 x 0.45 = 1.35
    "atcost": [(1, "overage", 3, Decimal("0.4500"), Decimal("1.35"),
                "3 credits × $0.4500 = $1.35", "at_cost")],
    # 3 x 0.45 x 1.10 = 1.485, half up: 1.49 (half to even would say 1.48)
    "markup": [(1, "overage", 3, Decimal("0.4500"), Decimal("1.49"),
                "3 credits × $0.4500 × 1.1 = $1.49", "cost_plus")],
    # 3 beyond its own: the first 2 included, the third at 0.45 x 1.20 = 0.54
    "capped": [(1, "overage_included", 2, Decimal("0.4500"), Decimal("0.00"),
                "2 credits included = $0.00", "included"),
               (2, "overage", 1, Decimal("0.4500"), Decimal("0.54"),
                "1 credit × $0.4500 × 1.2 = $0.54", "included")],
    # 3 beyond its own, all within the 5 included
    "incl": [(1, "overage_included", 3, Decimal("0.4500"), Decimal("0.00"),
              "3 credits included = $0.00", "included")],
    # its block at its own price: 100 x 0.30 = 30.00
    "buyer": [(1, "purchase", 100, Decimal("0.3000"), Decimal("30.00"),
               "100 credits × $0.3000 = $30.00", "at_cost")],
}  # fmt: skip


@pytest.fixture(scope="module")
def billed(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("money")
    data = scenario(root / "agency")
    warehouse = root / "w" / "w.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    done = run("nightly", "--data", str(data), "--warehouse", str(warehouse), "--as-of", AS_OF,
               env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return data, warehouse, env


def test_each_policy_bills_what_its_rule_says(billed) -> None:  # type: ignore[no-untyped-def]
    _, warehouse, _ = billed
    assert lines(warehouse, OCTOBER) == OCTOBER_LINES  # nopolicy has no lines
    # markup's November block at the contract's price, with its markup: 50 x 0.45 x 1.1 = 24.75
    assert lines(warehouse, NOVEMBER) == {
        "markup": [(1, "purchase", 50, Decimal("0.4500"), Decimal("24.75"),
                    "50 credits × $0.4500 × 1.1 = $24.75", "cost_plus")],
    }  # fmt: skip
    con = duckdb.connect(str(warehouse), read_only=True)
    (reason,) = con.execute(
        "SELECT reason FROM quarantine WHERE file = 'config/grants.csv' AND row_number = 4"
    ).fetchall()[0]
    con.close()
    assert "price_per_credit is for purchase grants only (this one is gift)" in reason


def test_the_statement_csv_says_what_is_owed_per_vendor(billed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data, warehouse, env = billed
    out = tmp_path / "statements"
    done = run("statements", "2025-10", "--data", str(data), "--warehouse", str(warehouse),
               "--out", str(out), env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    def due(client: str) -> tuple[str, str]:
        header, row = (out / "2025-10" / f"{client}.csv").read_text().splitlines()
        got = dict(zip(header.split(","), row.split(","), strict=True))
        return got["amount_due"], got["currency"]

    # The sums of OCTOBER_LINES: 0.00 + 0.54; 1.485 rounded half up; the block's 30.00.
    assert due("capped") == ("0.54", "USD")
    assert due("markup") == ("1.49", "USD")
    assert due("incl") == ("0.00", "USD")
    assert due("buyer") == ("30.00", "USD")
    assert due("nopolicy") == ("", "")  # no billing.csv row: not billed


@needs_chromium
def test_a_closed_month_keeps_its_money_and_the_statement_shows_it(billed) -> None:  # type: ignore[no-untyped-def]
    """Close October, then a late file, a new markup and a new price for buyer's block:
    October's lines stay as billed, the late overage is billed in November."""
    data, warehouse, env = billed
    where = ["--data", str(data), "--warehouse", str(warehouse)]
    done = run("close", "2025-10", *where, "--as-of", AS_OF, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    done = run("statements", "2025-10", *where, "--pdf", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = warehouse.parent / "w-statements" / "2025-10"
    html = (folder / "capped.html").read_text()
    assert "What you owe for October 2025" in html
    assert "2 credits included = $0.00" in html and "1 credit × $0.4500 × 1.2 = $0.54" in html
    text = words((folder / "capped.pdf").read_bytes())
    # 0.00 + 0.54 = 0.54
    assert "WhatyouoweforOctober2025" in text
    assert "2creditsincluded=$0.00" in text and "1credit×$0.4500×1.2=$0.54" in text
    assert "Total0.54USD" in text
    assert "Total1.49USD" in words((folder / "markup.pdf").read_bytes())
    assert "Whatyouowe" not in words((folder / "nopolicy.pdf").read_bytes())

    (data / "config" / "billing.csv").write_text(
        CONFIG["config/billing.csv"].replace("atcost,,at_cost,,", "atcost,,cost_plus,100,")
    )
    # buyer's block repriced, and a block for buyer dated in October, after its close
    (data / "config" / "grants.csv").write_text(
        CONFIG["config/grants.csv"].replace("block,0.30", "block,0.90")
        + "zoominfo,buyer,P-3,purchase,20,2025-10-20,,late block,0.25\n"
    )
    for rel, text_ in exports("atcost", "2025-10-30", 2, 90_000).items():
        (data / rel).write_text(text_)
    done = run("nightly", *where, "--as-of", AS_OF, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines(warehouse, OCTOBER) == OCTOBER_LINES
    # The 2 late credits are November's overage, at the new policy: 2 x 0.45 x 2 = 1.80
    assert lines(warehouse, NOVEMBER)["atcost"] == [
        (1, "overage", 2, Decimal("0.4500"), Decimal("1.80"),
         "2 credits × $0.4500 × 2 = $1.80", "cost_plus"),
    ]  # fmt: skip
    # The late block is billed in November, marked late: 20 x 0.25 = 5.00
    ((_, kind, credits, price, amount, arithmetic, policy),) = lines(warehouse, NOVEMBER)["buyer"]
    assert (kind, credits, price, amount, policy) == (
        "purchase",
        20,
        Decimal("0.2500"),
        Decimal("5.00"),
        "at_cost",
    )
    assert arithmetic == "20 credits × $0.2500 = $5.00"
    con = duckdb.connect(str(warehouse), read_only=True)
    (description,) = con.execute(
        "SELECT description FROM invoice_lines WHERE client_id = 'buyer' AND month = ?",
        [NOVEMBER],
    ).fetchall()[0]
    con.close()
    assert (
        description
        == "ZoomInfo: purchased block P-3 of 20 credits (late, for October 2025), at cost"
    )
    # The issued statement is written again as it was.
    done = run("statements", "2025-10", *where, "--pdf", env=env)
    assert done.returncode == 0
    assert "1 credit × $0.4500 × 1.2 = $0.54" in (folder / "capped.html").read_text()
    assert "Total1.35USD" in words((folder / "atcost.pdf").read_bytes())


BILLING_HEAD = "client_id,vendor,policy,markup_percent,included_credits\n"
BAD_BILLING = [
    ("ghost,,at_cost,,", "row 2: client_id 'ghost' is not in clients.csv"),
    ("atcost,zoominfoo,at_cost,,", "row 2: vendor 'zoominfoo' is not one of"),
    ("atcost,,cost_plus,,", "row 2: policy cost_plus needs a markup_percent"),
    ("atcost,,included,10,", "row 2: policy included needs included_credits"),
    ("atcost,,at_cost,5,", "row 2: policy at_cost takes no markup_percent"),
    ("atcost,,cost_plus,5,100", "row 2: included_credits is for policy included only"),
    ("atcost,,cost_plus,15%,", 'row 2: markup_percent: "15%" is not a number'),
    ("atcost,,retail,,", "row 2: policy must be one of"),
    ("atcost,,at_cost,,\n ATCOST ,,cost_plus,5,", "row 3: row 2 already sets the policy of atcost"),
    ("atcost,,cost_plus,-5,", "row 2: markup_percent must not be negative"),
    ("atcost,,cost_plus,10000.5,", "row 2: markup_percent 10000.5 is more than 10000"),
    (
        "atcost,,cost_plus,99999999999999999999999,",
        "row 2: markup_percent 1e+23 is more than 10000",
    ),
]


@pytest.mark.parametrize(("row", "error"), BAD_BILLING, ids=[e for _, e in BAD_BILLING])
def test_a_billing_row_that_cannot_be_used_stops_the_run(
    row: str, error: str, tmp_path: Path
) -> None:
    data = scenario(tmp_path / "agency")
    (data / "config" / "billing.csv").write_text(BILLING_HEAD + row + "\n")
    warehouse = tmp_path / "w" / "w.duckdb"
    store = ingest_store_path(warehouse)
    with pytest.raises(ConfigError) as raised:
        result = ingest(data, store)
        build(store, warehouse, RunParams(dt.date(2025, 11, 10)), result.current_config)
    said = str(raised.value)
    assert said.startswith("config/billing.csv: ") and error in said, said
    assert "\n" not in said and said.endswith("nothing was published")
    assert not warehouse.exists()


def test_a_contract_without_a_price_cannot_be_billed_from_the_command(
    prefect_api: str, tmp_path: Path
) -> None:
    data = scenario(tmp_path / "agency")
    contracts = data / "config" / "contracts.csv"
    contracts.write_text(contracts.read_text().replace(",0.45", ","))
    env = {**os.environ, "PREFECT_API_URL": prefect_api,
           "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}  # fmt: skip
    done = run("nightly", "--data", str(data), "--as-of", AS_OF, env=env)
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())
    assert "Traceback" not in said
    assert (
        "config/billing.csv: row 2: zoominfo contract ZI has no price_per_credit in "
        "contracts.csv to bill from" in said
    ), said
    assert not (data / "warehouse" / "creditrecon.duckdb").exists()


@needs_chromium
def test_the_demo_bills_northwinds_october_overage(prefect_api: str, tmp_path: Path) -> None:
    """The demo as README tells it: the nightly, the close of August to October, then
    October's statements as PDFs; Northwind's shows what invoice_lines says it owes."""
    data = tmp_path / "demo"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    warehouse = tmp_path / "w" / "creditrecon.duckdb"
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    where = ["--data", str(data), "--warehouse", str(warehouse)]
    done = run("nightly", *where, "--as-of", AS_OF, env=env)
    assert done.returncode == 0, done.stderr
    for month in ("2025-08", "2025-09", "2025-10"):
        done = run("close", month, *where, "--as-of", AS_OF, env=env)
        assert done.returncode == 0, done.stderr
    done = run("statements", "2025-10", *where, "--pdf", env=env)
    assert done.returncode == 0, done.stderr
    # Northwind is billed at cost plus 10%: 40 ZoomInfo credits beyond its 500,
    # 40 x 0.45 x 1.1 = 19.80; 9 6sense credits beyond its own, 9 x 0.90 x 1.1 = 8.91;
    # total 19.80 + 8.91 = 28.71.
    got = lines(warehouse, OCTOBER)
    assert got == {
        "northwind": [
            (1, "overage", 9, Decimal("0.9000"), Decimal("8.91"),
             "9 credits × $0.9000 × 1.1 = $8.91", "cost_plus"),
            (2, "overage", 40, Decimal("0.4500"), Decimal("19.80"),
             "40 credits × $0.4500 × 1.1 = $19.80", "cost_plus"),
        ]
    }  # fmt: skip
    text = words((warehouse.parent / "creditrecon-statements" / "2025-10" / "northwind.pdf")
                 .read_bytes())  # fmt: skip
    assert "Final,closedon" in text
    for _, _, _, _, amount, arithmetic, _ in got["northwind"]:
        assert arithmetic.replace(" ", "") in text
        assert f"{amount}USD" in text
    assert "Total28.71USD" in text
    # September's, frozen at its close: 120 x 0.45 x 1.1 = 59.40
    assert [
        (k, c, a) for _, k, c, _, a, _, _ in lines(warehouse, dt.date(2025, 9, 1))["northwind"]
    ] == [("overage", 120, Decimal("59.40"))]


@pytest.mark.parametrize("kind", ["link", "folder"])
def test_a_billing_file_that_is_a_link_or_a_folder_stops_the_run(kind: str, tmp_path: Path) -> None:
    data = scenario(tmp_path / "agency")
    billing = data / "config" / "billing.csv"
    billing.unlink()
    if kind == "link":  # another agency's policies must not be read
        (tmp_path / "elsewhere.csv").write_text(CONFIG["config/billing.csv"])
        billing.symlink_to(tmp_path / "elsewhere.csv")
    else:
        billing.mkdir()
    warehouse = tmp_path / "w" / "w.duckdb"
    store = ingest_store_path(warehouse)
    with pytest.raises(ConfigError) as raised:
        result = ingest(data, store)
        build(store, warehouse, RunParams(dt.date(2025, 11, 10)), result.current_config)
    said = str(raised.value)
    assert said.startswith("config/billing.csv") and "\n" not in said, said
    assert not warehouse.exists()
