"""The nightly run: ingest the inbox, rebuild the ledger and marts, publish the warehouse."""

from __future__ import annotations

import datetime as dt
import errno
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import State

from flows.summary import Summary, markdown, read_summary
from transforms import alerts
from transforms.build import RunParams, build, run_lock
from transforms.close import close_month
from transforms.ingest import IngestResult, ingest, ingest_store_path
from transforms.settings import Settings, load_settings
from transforms.statements import ClosingStatements, write_statements


@dataclass
class NightlyResult:
    warehouse: Path
    as_of: dt.date
    ingest: IngestResult
    table_rows: dict[str, int]
    built: str  # "incremental: ...", "full rebuild: <why>" or "nothing new ..."
    summary: Summary


@dataclass(frozen=True)
class Built:
    table_rows: dict[str, int]
    how: str


# Waiting does not bring back a missing file, a permission or free space.
PERMANENT = (errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EISDIR)


def _transient(task: object, task_run: object, state: State) -> bool:
    """Retry I/O errors only (a file still being copied in, a network share hiccup)."""
    try:
        state.result()
    except OSError as exc:
        return exc.errno not in PERMANENT
    except Exception:
        return False
    return False


# Retrying is safe because a file is staged in one transaction or not at all.
@task(retries=2, retry_delay_seconds=5, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def ingest_inbox(data: Path, store: Path) -> IngestResult:
    result = ingest(data, store)
    log = get_run_logger()
    log.info(
        "ingest: %d new files loaded, %d duplicates skipped, %d rejected, %d already ingested",
        result.count("loaded"),
        result.count("duplicate"),
        result.count("rejected"),
        result.count("unchanged"),
    )
    return result


@task(cache_policy=NO_CACHE)
def build_warehouse(
    store: Path,
    warehouse: Path,
    params: RunParams,
    current_config: dict[str, str | None],
    full_rebuild: bool = False,
) -> Built:
    log = get_run_logger()
    notes: list[str] = []

    def note(how: str) -> None:
        log.info("build: %s", how)
        notes.append(how)

    counts = build(
        store,
        warehouse,
        params,
        current_config,
        on_step=lambda step, seconds: log.info("build %s: %.1f s", step, seconds),
        incremental=not full_rebuild,
        on_note=note,
    )
    log.info("published %s: %s", warehouse, counts)
    return Built(counts, notes[0])


@flow(name="creditrecon-nightly", log_prints=True)
def nightly(
    data: Path, warehouse: Path, as_of: dt.date | None = None, full_rebuild: bool = False
) -> NightlyResult:
    """Ingest everything new under ``data`` and publish ``warehouse`` as of ``as_of``: the
    night's files added to the published warehouse when they only append to it, else (or
    with ``full_rebuild``) every mart rebuilt from all staged rows."""
    settings = load_settings(data)
    as_of_given = as_of is not None
    as_of = as_of or settings.today()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    params = _params(as_of, settings)
    with run_lock(warehouse):
        store = ingest_store_path(warehouse)
        ingested = ingest_inbox(data, store)
        built = build_warehouse(store, warehouse, params, ingested.current_config, full_rebuild)
        raised = raise_alerts(store, warehouse, as_of, settings)
    summary = record_summary(data, warehouse, as_of, built.how, ingested, as_of_given, raised)
    return NightlyResult(warehouse, as_of, ingested, built.table_rows, built.how, summary)


def _params(as_of: dt.date, settings: Settings) -> RunParams:
    run = f"{flow_run.get_flow_name()}/{flow_run.get_name()} ({flow_run.get_id()})"
    return RunParams(
        as_of,
        settings.reporting_timezone,
        settings.reexport_window_months,
        published_by=run,
        alert_rules=settings.alert_rules,
        run_at=dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
    )


@task(cache_policy=NO_CACHE)
def raise_alerts(
    store: Path, warehouse: Path, as_of: dt.date, settings: Settings
) -> alerts.AlertNight:
    """Keep the alerts the published warehouse raised, then deliver what is pending; a
    delivery that fails is a warning, and the alerts wait for the next night."""
    night = alerts.AlertNight(
        raised=alerts.record_raised(store, warehouse, settings.alert_delivery)
    )
    sent = alerts.deliver_pending(store, settings.alert_delivery, as_of)
    night.delivered, night.pending, night.warning = sent.delivered, sent.pending, sent.warning
    log = get_run_logger()
    for message in night.raised:
        log.info("alert: %s", message)
    if night.delivered:
        log.info("alerts: %d delivered to %s", night.delivered, settings.alert_delivery.target)
    return night


def record_summary(
    data: Path,
    warehouse: Path,
    as_of: dt.date,
    how: str,
    ingested: IngestResult,
    as_of_given: bool,
    raised: alerts.AlertNight | None = None,
) -> Summary:
    """Log each of the night's files with the published warehouse's counts (rows the rules
    quarantine count there, not only the rows that failed to parse), and keep the run
    summary as the flow run's Markdown artifact."""
    summary = read_summary(warehouse, as_of, how, data, as_of_given)
    if raised is not None:
        summary.alerts = raised
        if raised.warning:
            summary.notes.append(raised.warning)
    log = get_run_logger()
    night = {f.path: f.note for f in ingested.files if f.status != "unchanged"}
    for f in summary.files:
        if f.path in night:
            log.info(
                "%s %s: read %d, loaded %d, quarantined %d %s",
                f.status,
                f.path,
                f.read,
                f.loaded,
                f.quarantined,
                night[f.path],
            )
    for note in summary.notes:
        log.warning(note)
    create_markdown_artifact(
        markdown(summary), key="creditrecon-summary", description="What the run did"
    )
    return summary


def previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


@task(cache_policy=NO_CACHE)
def freeze_month(
    store: Path, warehouse: Path, month: dt.date, as_of: dt.date, settings: Settings
) -> bool:
    """Freeze the month and keep the statements it issues; whether they have PDFs."""
    issue = ClosingStatements(warehouse, month, settings.agency)
    close_month(store, warehouse, month, as_of, issue)
    log = get_run_logger()
    log.info("closed %s: its figures and statements are frozen", f"{month:%Y-%m}")
    if issue.why_no_pdf:
        log.warning("statements of %s issued without PDFs: %s", f"{month:%Y-%m}", issue.why_no_pdf)
    return not issue.why_no_pdf


@flow(name="creditrecon-month-end-close", log_prints=True)
def month_end_close(
    data: Path, warehouse: Path, month: dt.date | None = None, as_of: dt.date | None = None
) -> NightlyResult:
    """Close ``month`` (default: the month before ``as_of``): bring it up to date with a
    nightly run, freeze it, and publish the warehouse with the month closed."""
    settings = load_settings(data)
    as_of_given = as_of is not None
    as_of = as_of or settings.today()
    month = (month or previous_month(as_of)).replace(day=1)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    params = _params(as_of, settings)
    with run_lock(warehouse):
        store = ingest_store_path(warehouse)
        ingested = ingest_inbox(data, store)
        build_warehouse(store, warehouse, params, ingested.current_config)
        pdf = freeze_month(store, warehouse, month, as_of, settings)
        built = build_warehouse(store, warehouse, params, ingested.current_config)
        raised = raise_alerts(store, warehouse, as_of, settings)
    # The month's statements as issued, for account managers to send.
    folder = warehouse.with_name(warehouse.stem + "-statements")
    write_statements(warehouse, folder, month, settings.agency, pdf=pdf)
    summary = record_summary(data, warehouse, as_of, built.how, ingested, as_of_given, raised)
    return NightlyResult(warehouse, as_of, ingested, built.table_rows, built.how, summary)
