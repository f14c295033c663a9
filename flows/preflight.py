"""What a run checks before Prefect starts, so a mistake is answered in about a second with
one line naming the file, option or month. Imports nothing heavy (no Prefect, polars or
DuckDB at module level)."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from transforms.settings import Settings, load_settings

# The configuration a run cannot do without (schemas/inputs.py marks them required).
REQUIRED_CONFIG = ("clients.csv", "users.csv", "contracts.csv", "allocations.csv")
# Below this much free space beside the warehouse a run would fail half-way: refuse first.
MIN_FREE_BYTES = 64 << 20
# An as-of this far past the last contract's end (or before the first one starts) is a typo.
PLAUSIBLE_MONTHS_AFTER_CONTRACTS = 12
FORCE_AS_OF = "--as-of-anyway"


class Refused(Exception):
    """A mistake the user can fix; the message says what and where, in one line. ``code``
    is the exit status: 2 for a wrong argument, 1 for the state of files."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def prepare_prefect() -> None:
    """Settings Prefect reads when imported: a temporary server gets a generous start-up wait
    on a busy machine, sends no telemetry, and its log stays off the terminal (the command
    prints its own summary; the log goes to the Prefect API). A value the user set wins."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def server_hint(exc: BaseException) -> str | None:
    """One line for a Prefect API that cannot be reached, or None for any other error."""
    text = f"{type(exc).__name__}: {exc}"
    if "ephemeral Prefect API server" in text or "temporary server" in text.lower():
        wait = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        return (
            f"the temporary Prefect server did not start within {wait} s; raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with "
            "`prefect server start` and set PREFECT_API_URL"
        )
    from flows import temporary_server

    url = os.environ.get("PREFECT_API_URL")
    if temporary_server.started is not None and url == temporary_server.started.api_url:
        url = None  # the server this command started, not the user's
    if "Failed to reach API" not in text and "ConnectError" not in text:
        return None
    if url:
        return (
            f"cannot reach the Prefect API at {url} (PREFECT_API_URL): start the server, "
            "or unset PREFECT_API_URL to run with a temporary one"
        )
    return (
        "the temporary Prefect server stopped answering; run again, or start one with "
        "`prefect server start` and set PREFECT_API_URL"
    )


def disk_hint(exc: BaseException) -> str | None:
    """One line for a full disk, wherever the write failed (Python or DuckDB)."""
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in str(exc):
        return f"no space left on the device ({exc}); free some space and run again"
    return None


@dataclass(frozen=True)
class Checked:
    settings: Settings
    as_of: dt.date | None  # None: today, decided when the run starts


def check_run(
    data: Path, warehouse: Path, as_of: dt.date | None, as_of_anyway: bool = False
) -> Checked:
    """Everything about a run that can be wrong before it starts."""
    if not data.is_dir():
        raise Refused(f"--data: {data} is not a folder", 2)
    # Only what is absent: a folder, link or pipe in a file's place is refused by the config
    # checks, which name what it is.
    missing = [name for name in REQUIRED_CONFIG if not os.path.lexists(data / "config" / name)]
    if missing:
        raise Refused(
            f"{data / 'config' / missing[0]} is missing (required configuration"
            + (f"; also missing: {', '.join(missing[1:])}" if missing[1:] else "")
            + ")"
        )
    settings = load_settings(data)
    _check_warehouse_folder(warehouse)
    from transforms.publish import check_not_running  # DuckDB: only for the commands that run

    check_not_running(warehouse)
    if as_of is not None and not as_of_anyway:
        check_as_of(data, settings, as_of)
    return Checked(settings, as_of)


def _check_warehouse_folder(warehouse: Path) -> None:
    if warehouse.is_dir():
        raise Refused(f"--warehouse: {warehouse} is a folder; give the DuckDB file to publish")
    folder = warehouse.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise Refused(f"--warehouse: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise Refused(
            f"--warehouse: cannot write in {existing} (permission denied); the run writes the "
            "warehouse, its lock and its scratch files there"
        )
    if warehouse.exists() and not os.access(warehouse, os.R_OK):
        raise Refused(f"--warehouse: {warehouse} cannot be read (permission denied)")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise Refused(
            f"--warehouse: only {free >> 20} MB free on the disk of {existing}; "
            f"a run needs at least {MIN_FREE_BYTES >> 20} MB"
        )


def contract_span(data: Path) -> tuple[dt.date, dt.date] | None:
    """First start and last (exclusive) end in config/contracts.csv, or None if it cannot
    be read plainly (the run's own validation then says why)."""
    try:
        with open(data / "config" / "contracts.csv", newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        starts = [dt.date.fromisoformat(r["starts_on"].strip()[:10]) for r in rows]
        ends = [dt.date.fromisoformat(r["ends_on"].strip()[:10]) for r in rows]
    except (OSError, KeyError, ValueError, AttributeError, UnicodeDecodeError, csv.Error):
        return None
    if not starts:
        return None
    return min(starts), max(ends)


def add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    return day.replace(year=total // 12, month=total % 12 + 1, day=1)


def check_as_of(data: Path, settings: Settings, as_of: dt.date) -> None:
    """Refuse an --as-of later than today in the reporting time zone, or outside the
    contracts' span (before the first starts, or more than 12 months after the last ends)."""
    today = settings.today()
    if as_of > today:
        raise Refused(
            f"--as-of {as_of} is after today ({today} in {settings.reporting_timezone}); "
            f"pass {FORCE_AS_OF} if you mean it"
        )
    span = contract_span(data)
    if span is None:
        return
    first, last_end = span
    if as_of < first:
        raise Refused(
            f"--as-of {as_of} is before the first contract starts ({first}, "
            f"{data / 'config' / 'contracts.csv'}); pass {FORCE_AS_OF} if you mean it"
        )
    if as_of >= add_months(last_end, PLAUSIBLE_MONTHS_AFTER_CONTRACTS):
        raise Refused(
            f"--as-of {as_of} is more than {PLAUSIBLE_MONTHS_AFTER_CONTRACTS} months after the "
            f"last contract ends ({last_end}, {data / 'config' / 'contracts.csv'}); "
            f"pass {FORCE_AS_OF} if you mean it"
        )


def month_end(month: dt.date) -> dt.date:
    """The first day after ``month``."""
    return add_months(month, 1)


def check_close(warehouse: Path, month: dt.date, as_of: dt.date) -> None:
    """Refuse closing a month that has not ended, is closed, or follows an open month, from
    what the published warehouse says (read-only; the flow checks again under its lock)."""
    if as_of < month_end(month):
        raise Refused(
            f"{month:%Y-%m} has not ended by the as-of date {as_of}; "
            f"close it on or after {month_end(month)}"
        )
    if not warehouse.exists():
        return
    import duckdb

    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return  # the run rebuilds what it cannot read
    try:
        closed, earlier_open = con.execute(
            "SELECT bool_or(is_closed AND month = ?), min(month) FILTER "
            "(WHERE month < ? AND NOT is_closed) FROM monthly_balances",
            [month, month],
        ).fetchall()[0]
    except duckdb.Error:
        return
    finally:
        con.close()
    if closed:
        raise Refused(f"{month:%Y-%m} is already closed")
    if earlier_open is not None:
        raise Refused(f"close {earlier_open:%Y-%m} first: months close in order")
