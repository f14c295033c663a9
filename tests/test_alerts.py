"""Alerts: each rule on a small scenario with figures worked by hand, raised once per period,
delivered to a real local HTTP receiver, and the demo's through the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest

from transforms import alerts
from transforms.pipeline import create_vendor_rules
from transforms.settings import AlertDelivery, AlertRules, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]
CREDITRECON = str(Path(sys.executable).parent / "creditrecon")


def marts(as_of: str, rules: AlertRules) -> duckdb.DuckDBPyConnection:
    """The tables the alerts model reads, empty, as of ``as_of``."""
    con = duckdb.connect()
    con.execute("SET VARIABLE as_of = ?::DATE", [as_of])
    alerts.set_rules(con, rules, dt.datetime(2025, 11, 10, 2, 0))
    create_vendor_rules(con)
    con.execute("""
        CREATE TABLE clients (client_id VARCHAR, client_name VARCHAR);
        INSERT INTO clients VALUES ('acme', 'Acme Corp'), ('unassigned', 'Unassigned');
        CREATE TABLE client_overconsumption (vendor VARCHAR, client_id VARCHAR, month DATE,
            allocation BIGINT, used BIGINT, contract_id VARCHAR);
        CREATE TABLE pace_forecast (vendor VARCHAR, client_id VARCHAR, month DATE,
            available_credits BIGINT, used_so_far BIGINT, credits_left BIGINT,
            days_elapsed BIGINT, projected_use BIGINT, projected_forfeit BIGINT,
            projected_overage BIGINT, daily_pace_needed DOUBLE);
        CREATE TABLE credit_lots (vendor VARCHAR, client_id VARCHAR, lot_id VARCHAR,
            lot_kind VARCHAR, credits BIGINT, effective_on DATE, expires_on DATE,
            credits_left BIGINT, status VARCHAR, source_ref VARCHAR);
        CREATE TABLE cfg_contracts (vendor VARCHAR, contract_id VARCHAR, starts_on DATE,
            ends_on DATE, pool_credits BIGINT, reset VARCHAR, cap_credits BIGINT);
        CREATE TABLE pool_overconsumption (vendor VARCHAR, contract_id VARCHAR, month DATE,
            used BIGINT);
    """)
    return con


def raised(con: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    alerts.alerts_mart(con)
    return con.sql(
        "SELECT alert_id, threshold, credits, value, projected_value, credits_at_risk, "
        "expires_on::VARCHAR, message FROM alerts ORDER BY alert_id"
    ).fetchall()


def test_use_of_the_months_credits_raises_its_highest_level_passed() -> None:
    con = marts("2025-11-10", AlertRules(use_percent=(50, 80, 100)))
    # 850 of 1,000 = 85%: past 50 and 80, not 100. Only 80 is raised (the most severe).
    con.execute(
        "INSERT INTO client_overconsumption VALUES "
        "('zoominfo', 'acme', '2025-11-01', 1000, 850, 'ZI'), "
        # a past month and an unassigned client never raise
        "('zoominfo', 'acme', '2025-10-01', 1000, 1000, 'ZI'), "
        "('zoominfo', 'unassigned', '2025-11-01', 0, 40, 'ZI')"
    )
    rows = raised(con)
    assert [r[:4] for r in rows] == [("credits_used:zoominfo:acme:2025-11-01:80", 80, 1000, 850)]
    assert (
        rows[0][7]
        == "Acme Corp has used 85% of its ZoomInfo credits for November 2025: 850 of 1,000."
    )


def test_projected_forfeit_and_overage_above_their_sizes() -> None:
    con = marts(
        "2025-11-10", AlertRules(projected_forfeit_credits=200, projected_overage_credits=100)
    )
    con.execute(
        "INSERT INTO pace_forecast VALUES "
        # 150 used in 10 days: 15 a day, 300 more in the 20 days left; 650 left - 300 = 350
        # to forfeit, above 200. 650 / 20 = 32.5 a day would use them.
        "('zoominfo', 'acme', '2025-11-01', 800, 150, 650, 10, 450, 350, 0, 32.5), "
        # 210 in 10 days: 210 / 10 x 30 = 630, 130 past its 500, above 100
        "('6sense', 'acme', '2025-11-01', 500, 210, 290, 10, 630, 0, 130, 14.5), "
        # 90 over is not above 100; 166 to forfeit is not above 200
        "('apollo', 'acme', '2025-11-01', 0, 30, 0, 10, 90, 166, 90, 0)"
    )
    rows = raised(con)
    assert [r[:7] for r in rows] == [
        ("projected_forfeit:zoominfo:acme:2025-11-01", 200, 650, 150, 450, 350, "2025-11-30"),
        ("projected_overage:6sense:acme:2025-11-01", 100, 500, 210, 630, 130, None),
    ]
    assert rows[0][7] == (
        "Acme Corp is on pace to forfeit 350 ZoomInfo credits at the end of November 2025: "
        "150 used in its first 10 days, 650 left, 32.5 a day needed to use them."
    )


def test_a_purchased_lot_expiring_with_credits_left() -> None:
    con = marts("2025-11-10", AlertRules(lot_expiry_days=(30, 7, 1)))
    con.execute(
        "INSERT INTO credit_lots VALUES "
        # expires 15 November: 15 - 10 = 5 days, within 30 and 7, not 1: raised at 7
        "('zoominfo', 'acme', 'p1', 'purchase', 500, '2024-11-15', '2025-11-15', 120, 'open', 'G-1'), "
        # 40 days away: not yet; empty: nothing to lose; a baseline: the forecast's business
        "('zoominfo', 'acme', 'p2', 'earned', 50, '2025-01-01', '2025-12-20', 50, 'open', 'G-2'), "
        "('zoominfo', 'acme', 'p3', 'purchase', 50, '2025-01-01', '2025-11-11', 0, 'open', 'G-3'), "
        "('zoominfo', 'acme', 'b', 'baseline', 50, '2025-11-01', '2025-12-01', 50, 'open', 'ZI')"
    )
    rows = raised(con)
    assert [r[:7] for r in rows] == [
        ("lot_expiring:zoominfo:p1:2024-11-15:7", 7, 500, 120, None, 120, "2025-11-15")
    ]
    assert rows[0][7] == (
        "Acme Corp: 120 ZoomInfo credits of its purchased lot G-1 expire in 5 days; "
        "the last day to use them is 14 November 2025."
    )


def test_a_pool_projected_past_its_contract_and_cap() -> None:
    con = marts("2025-11-10", AlertRules())
    con.execute("""
        INSERT INTO cfg_contracts VALUES
            ('zoominfo', 'ZI', '2025-01-01', '2026-01-01', 3000, 'monthly', 3500),
            ('6sense', '6S', '2025-09-01', '2026-09-01', 300, 'none', 340);
        INSERT INTO pool_overconsumption VALUES
            ('zoominfo', 'ZI', '2025-11-01', 1100), ('6sense', '6S', '2025-11-01', 250);
        INSERT INTO client_overconsumption VALUES
            ('zoominfo', 'acme', '2025-11-01', 3000, 1100, 'ZI'),
            ('6sense', 'acme', '2025-11-01', 0, 10, '6S');
    """)
    rows = raised(con)
    # ZoomInfo resets monthly: 1,100 in 10 days, 110 a day for the 20 days left: 3,300,
    # 300 past its 3,000, not past the 3,500 cap.
    # 6sense runs to 1 September 2026 without reset: 250 so far, and this month's 10 in
    # 10 days (1 a day) for the 294 days from 11 November to 31 August: 544, 244 past the
    # 300 and 204 past the 340 cap. (Credits used by acme, 1,100 of its 3,000, is 36%.)
    assert [r[:6] for r in rows] == [
        ("pool_past_cap:6sense:6S:2025-09-01", 340, 340, 250, 544, 204),
        ("pool_past_contract:6sense:6S:2025-09-01", 300, 300, 250, 544, 244),
        ("pool_past_contract:zoominfo:ZI:2025-11-01", 3000, 3000, 1100, 3300, 300),
    ]
    assert rows[2][7] == (
        "The ZoomInfo pool ZI is on pace to use 3,300 credits by 30 November 2025, "
        "300 past the 3,000 of its contract: 1,100 used so far."
    )


def store_with(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> tuple[Path, Path]:
    """The mart of ``con`` as a published warehouse, and an ingest store beside it."""
    warehouse, store = tmp_path / "w.duckdb", tmp_path / "w.ingest.duckdb"
    con.execute("ATTACH ? AS w", [str(warehouse)])
    con.execute("CREATE OR REPLACE TABLE w.alerts AS FROM alerts")
    con.execute("DETACH w")
    return warehouse, store


def test_an_alert_is_raised_once_per_period_and_level(tmp_path: Path) -> None:
    con = marts("2025-11-10", AlertRules(use_percent=(50, 80, 100)))
    con.execute(
        "INSERT INTO client_overconsumption VALUES ('zoominfo', 'acme', '2025-11-01', 1000, 600, 'ZI')"
    )
    alerts.alerts_mart(con)  # 600 of 1,000: 60%, past 50
    warehouse, store = store_with(tmp_path, con)
    assert len(alerts.record_raised(store, warehouse, AlertDelivery())) == 1

    def night(as_of: str, used: int) -> list[str]:
        con = marts(as_of, AlertRules(use_percent=(50, 80, 100)))
        con.execute("UPDATE client_overconsumption SET used = 0")
        con.execute(
            "INSERT INTO client_overconsumption VALUES ('zoominfo', 'acme', '2025-11-01', 1000, ?, 'ZI')",
            [used],
        )
        con.execute("ATTACH ? AS ingest (READ_ONLY)", [str(store)])
        alerts.alerts_mart(con)
        con.execute("DETACH ingest")
        store_with(tmp_path, con)
        return alerts.record_raised(store, warehouse, AlertDelivery())

    assert night("2025-11-10", 600) == []  # the same night again
    assert night("2025-11-12", 700) == []  # later, still past 50 only
    assert night("2025-11-14", 1000) == [  # 1,000 of 1,000: 100%, past 80 too, raised once
        "Acme Corp has used 100% of its ZoomInfo credits for November 2025: 1,000 of 1,000."
    ]
    assert night("2025-11-15", 900) == []  # back to 90%: 80 is no more severe than 100
    kept = (
        duckdb.connect(str(store))
        .sql("SELECT alert_id, first_raised_as_of::VARCHAR FROM raised_alerts ORDER BY 1")
        .fetchall()
    )
    assert kept == [
        ("credits_used:zoominfo:acme:2025-11-01:100", "2025-11-14"),
        ("credits_used:zoominfo:acme:2025-11-01:50", "2025-11-10"),
    ]


class Receiver:
    """A real local HTTP server that records what is posted; answers ``status``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, str]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_alerts_are_posted_to_the_webhook_and_kept_pending_when_it_fails(
    tmp_path: Path, receiver: Receiver
) -> None:
    con = marts("2025-11-10", AlertRules(use_percent=(50,)))
    con.execute(
        "INSERT INTO client_overconsumption VALUES ('zoominfo', 'acme', '2025-11-01', 1000, 600, 'ZI')"
    )
    alerts.alerts_mart(con)
    warehouse, store = store_with(tmp_path, con)
    hook = AlertDelivery(webhook_url=receiver.url)
    alerts.record_raised(store, warehouse, hook)
    receiver.status = 500  # the receiver is down tonight
    night = alerts.deliver_pending(store, hook, dt.date(2025, 11, 10))
    assert (night.delivered, night.pending) == (0, 1)
    assert night.warning == (
        "alerts: 1 not delivered to webhook 127.0.0.1:"
        f"{receiver.server.server_port} (HTTP 500 Internal Server Error); "
        "they stay pending and are sent again next night"
    )
    receiver.status = 200
    night = alerts.deliver_pending(store, hook, dt.date(2025, 11, 11))
    assert (night.delivered, night.pending, night.warning) == (1, 0, "")
    assert receiver.bodies[-1] == {
        "text": "creditrecon, as of 2025-11-11: 1 credit alert\n"
        "• Acme Corp has used 60% of its ZoomInfo credits for November 2025: 600 of 1,000."
    }
    assert len(receiver.bodies) == 2
    # Delivered: the next night sends nothing.
    alerts.deliver_pending(store, hook, dt.date(2025, 11, 12))
    assert len(receiver.bodies) == 2


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[alerts]\nuse_percent = [50, 0]\n", "alerts.use_percent"),
        ("[alerts]\nprojected_forfeit_credits = -1\n", "alerts.projected_forfeit_credits"),
        ("[alerts]\nprojected_overage_credits = 2.5\n", "alerts.projected_overage_credits"),
        ("[alerts]\nlot_expiry_days = 7\n", "alerts.lot_expiry_days"),
        ('[alerts]\nwebhook_url = "ftp://x"\n', "alerts.webhook_url"),
        ('[alerts]\nprefect_block = "no name"\n', "alerts.prefect_block"),
        ('[alerts]\nwebhok_url = "http://x"\n', "alerts.webhok_url"),
    ],
)
def test_a_bad_alert_setting_names_the_file_and_key(tmp_path: Path, toml: str, key: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.toml").write_text(toml)
    with pytest.raises(SettingsError) as exc:
        load_settings(tmp_path)
    line = str(exc.value)
    assert "\n" not in line and str(tmp_path / "config" / "settings.toml") in line and key in line


def test_the_demo_nightly_raises_northwinds_overage_and_harbor_views_forfeit_once(
    prefect_api: str, tmp_path: Path
) -> None:
    data = tmp_path / "demo"
    shutil.copytree(REPO / "data" / "demo", data, ignore=shutil.ignore_patterns("warehouse*"))
    env = {**os.environ, "COLUMNS": "200", "PREFECT_API_URL": prefect_api}

    def nightly() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CREDITRECON, "nightly", "--data", str(data), "--as-of", "2025-11-10"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )

    first = nightly()
    assert first.returncode == 0, first.stdout + first.stderr
    # Northwind: 210 used in 10 days, 630 by 30 November, 130 past its 500 (above 100).
    # Harbor View: 150 in 10 days, 15 a day for 20 more days = 300 of its 650 left: 350 to
    # forfeit (above 200). The 6sense pool has used 359 of its 300 (cap 340).
    assert "4 new alerts (alerts):" in first.stdout
    assert (
        "- Northwind Logistics is on pace to use 630 ZoomInfo credits in November 2025, 130 "
        "more than its 500: 210 used in its first 10 days." in first.stdout
    )
    assert (
        "- Harbor View Realty is on pace to forfeit 350 ZoomInfo credits at the end of "
        "November 2025: 150 used in its first 10 days, 650 left, 32.5 a day needed to use "
        "them." in first.stdout
    )
    assert first.stdout.count("- Northwind") == 1 and first.stdout.count("- Harbor View") == 1
    second = nightly()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "new alert" not in second.stdout
    con = duckdb.connect(str(data / "warehouse" / "creditrecon.duckdb"), read_only=True)
    assert con.sql(
        "SELECT rule, client_id, credits_at_risk FROM alerts WHERE client_id IS NOT NULL ORDER BY 1"
    ).fetchall() == [
        ("projected_forfeit", "harborview", 350),
        ("projected_overage", "northwind", 130),
    ]


def test_alerts_are_sent_through_a_prefect_notification_block(
    prefect_api: str, tmp_path: Path, receiver: Receiver
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name="alerts",
        url=receiver.url,
        json_data={"text": "{{body}}"},
        allow_private_urls=True,
    ).save("test-alerts", overwrite=True)
    con = marts("2025-11-10", AlertRules(use_percent=(50,)))
    con.execute(
        "INSERT INTO client_overconsumption VALUES "
        "('zoominfo', 'acme', '2025-11-01', 1000, 600, 'ZI')"
    )
    alerts.alerts_mart(con)
    warehouse, store = store_with(tmp_path, con)
    block = AlertDelivery(prefect_block="custom-webhook/test-alerts")
    alerts.record_raised(store, warehouse, block)
    night = alerts.deliver_pending(store, block, dt.date(2025, 11, 10))
    assert (night.delivered, night.warning) == (1, "")
    assert receiver.bodies == [
        {
            "text": "creditrecon, as of 2025-11-10: 1 credit alert\n"
            "• Acme Corp has used 60% of its ZoomInfo credits for November 2025: 600 of 1,000."
        }
    ]
