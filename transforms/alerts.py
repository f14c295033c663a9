"""Alerts before credits are lost or run over: raised by the build, kept in the ingest store,
delivered after the warehouse is published.

- The build (step ``alerts``, models/alerts/alerts.sql) evaluates the rules as of the run's
  date and publishes the ``alerts`` mart: every alert raised before (the store's
  ``raised_alerts``, as raised) and those this night raises, stamped with the run's start.
- ``record_raised``, once the warehouse is published, keeps the night's new alerts in the
  store, as the ledger keeps ``recorded_at``: a night run again, or a later night where the
  condition still holds, finds them there and raises nothing new.
- ``deliver_pending`` sends what was raised and not yet delivered (to a Slack-compatible
  webhook, or a Prefect notification block) in one message. A failure leaves them pending
  for the next night and is one warning line; it never fails the night.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from transforms.settings import AlertDelivery, AlertRules

MODELS = Path(__file__).parent / "models"

# The mart's columns as the store keeps them (the mart adds still_holds).
ALERT_COLUMNS = """
    alert_id VARCHAR NOT NULL, rule VARCHAR NOT NULL, vendor VARCHAR NOT NULL,
    client_id VARCHAR, contract_id VARCHAR, lot_id VARCHAR, period_start DATE NOT NULL,
    period_end DATE NOT NULL, threshold BIGINT NOT NULL, threshold_unit VARCHAR NOT NULL,
    credits BIGINT, value BIGINT, projected_value BIGINT, credits_at_risk BIGINT,
    expires_on DATE, message VARCHAR NOT NULL, first_raised_as_of DATE NOT NULL,
    first_raised_at TIMESTAMP
"""
STORE_DDL = f"""
CREATE TABLE IF NOT EXISTS raised_alerts (
    {ALERT_COLUMNS},
    delivery VARCHAR NOT NULL,         -- pending | delivered | not sent (no target set)
    delivered_at TIMESTAMP,            -- UTC
    delivered_to VARCHAR,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR,
    PRIMARY KEY (alert_id)
);
"""
MART_COLUMNS = [part.split()[0] for part in ALERT_COLUMNS.split(",")]

# A receiver that does not answer in this long is taken as down for the night.
TIMEOUT_SECONDS = 10


def set_rules(
    con: duckdb.DuckDBPyConnection, rules: AlertRules, run_at: dt.datetime | None
) -> None:
    """The rules' thresholds and the run's start, as variables the model reads."""
    con.execute("SET VARIABLE alert_use_percent = ?::INTEGER[]", [list(rules.use_percent)])
    con.execute("SET VARIABLE alert_expiry_days = ?::INTEGER[]", [list(rules.lot_expiry_days)])
    con.execute("SET VARIABLE alert_forfeit_credits = ?::BIGINT", [rules.projected_forfeit_credits])
    con.execute("SET VARIABLE alert_overage_credits = ?::BIGINT", [rules.projected_overage_credits])
    con.execute("SET VARIABLE alert_run_at = ?::TIMESTAMP", [run_at])


def alerts_mart(con: duckdb.DuckDBPyConnection) -> int:
    """The published alerts mart: what earlier nights raised (none before the first record)
    and what this night raises."""
    has = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'ingest' "
        "AND table_name = 'raised_alerts'"
    ).fetchall()[0][0]
    if has:
        con.execute(
            f"CREATE TEMP TABLE raised_before AS SELECT {', '.join(MART_COLUMNS)} "
            "FROM ingest.raised_alerts"
        )
    else:
        con.execute(f"CREATE TEMP TABLE raised_before ({ALERT_COLUMNS})")
    con.execute((MODELS / "alerts" / "alerts.sql").read_text())
    con.execute("DROP TABLE raised_before")
    return 1


@dataclass
class AlertNight:
    """What a night did with alerts: raised (messages), and how delivery went."""

    raised: list[str] = field(default_factory=list)
    delivered: int = 0
    pending: int = 0
    warning: str = ""


def record_raised(store: Path, warehouse: Path, delivery: AlertDelivery) -> list[str]:
    """Keep in the store the alerts the published warehouse raised and the store does not
    hold yet (pending delivery, or 'not sent' without a target). Returns their messages."""
    con = duckdb.connect(str(store))
    try:
        con.execute(STORE_DDL)
        con.execute("ATTACH ? AS published (READ_ONLY)", [str(warehouse)])
        has = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'published' "
            "AND table_name = 'alerts'"
        ).fetchall()[0][0]
        if not has:
            return []
        columns = ", ".join(MART_COLUMNS)
        state = "pending" if delivery.target else "not sent"
        con.execute("BEGIN TRANSACTION")
        new = con.execute(
            "SELECT message FROM published.alerts a WHERE NOT EXISTS "
            "(SELECT 1 FROM raised_alerts r WHERE r.alert_id = a.alert_id) "
            "ORDER BY first_raised_as_of, rule, vendor, alert_id"
        ).fetchall()
        con.execute(
            f"INSERT INTO raised_alerts ({columns}, delivery) "
            f"SELECT {columns}, ? FROM published.alerts a WHERE NOT EXISTS "
            f"(SELECT 1 FROM raised_alerts r WHERE r.alert_id = a.alert_id)",
            [state],
        )
        con.execute("COMMIT")
        return [m for (m,) in new]
    finally:
        con.close()


def message_text(messages: list[str], as_of: dt.date) -> str:
    n = len(messages)
    head = f"creditrecon, as of {as_of}: {n} credit alert{'s' if n != 1 else ''}"
    return "\n".join([head, *(f"• {m}" for m in messages)])


def post_webhook(url: str, text: str) -> None:
    """POST ``{"text": ...}`` (Slack's incoming-webhook form); raises on anything but 2xx."""
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")


def notify_block(name: str, text: str) -> None:
    """Send through a Prefect notification block saved on the Prefect server."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    block = Block.load(name)
    if not isinstance(block, NotificationBlock):
        raise ValueError(f"{name} is not a notification block")
    with block.raise_on_failure():
        block.notify(text, subject="creditrecon credit alerts")  # type: ignore[unused-coroutine]


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def deliver_pending(store: Path, delivery: AlertDelivery, as_of: dt.date) -> AlertNight:
    """Send every pending alert in one message; mark them delivered, or keep them pending
    with the error (the next night tries again)."""
    night = AlertNight()
    con = duckdb.connect(str(store))
    try:
        con.execute(STORE_DDL)
        if delivery.target:
            # Alerts raised while no target was set stay unsent: a new webhook is not
            # flooded with the past.
            pending = con.execute(
                "SELECT alert_id, message FROM raised_alerts WHERE delivery = 'pending' "
                "ORDER BY first_raised_as_of, rule, vendor, alert_id"
            ).fetchall()
        else:
            pending = []
        if not pending:
            return night
        text = message_text([m for _, m in pending], as_of)
        ids = [a for a, _ in pending]
        try:
            if delivery.webhook_url:
                post_webhook(delivery.webhook_url, text)
            else:
                notify_block(delivery.prefect_block, text)
        except Exception as exc:  # any failure to deliver: pending, never a failed night
            reason = _why(exc)
            con.execute(
                "UPDATE raised_alerts SET attempts = attempts + 1, last_error = ? "
                "WHERE alert_id IN (SELECT unnest(?::VARCHAR[]))",
                [reason, ids],
            )
            night.pending = len(ids)
            night.warning = (
                f"alerts: {len(ids)} not delivered to {delivery.target} ({reason}); "
                "they stay pending and are sent again next night"
            )
            return night
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        con.execute(
            "UPDATE raised_alerts SET delivery = 'delivered', delivered_at = ?, "
            "delivered_to = ?, attempts = attempts + 1, last_error = NULL "
            "WHERE alert_id IN (SELECT unnest(?::VARCHAR[]))",
            [now, delivery.target, ids],
        )
        night.delivered = len(ids)
        return night
    finally:
        con.close()
