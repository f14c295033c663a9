"""Schedules: the nightly run and the month-end close, served by `creditrecon serve`.

    prefect server start                                    # terminal 1
    export PREFECT_API_URL=http://127.0.0.1:4200/api        # terminal 2
    creditrecon serve --data /srv/agency --warehouse /srv/warehouse/credits.duckdb

The nightly run starts at 02:00 in the agency's reporting time zone; on the 1st at 04:00
the month-end close freezes the month just ended. At most one run of each at a time (the
deployments' concurrency limit), and the warehouse lock keeps the two apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval, Schedule

from flows.nightly import month_end_close, nightly
from transforms.settings import load_settings

NIGHTLY_CRON = "0 2 * * *"
CLOSE_CRON = "0 4 1 * *"  # the 1st, after the night's run: closes the month just ended


def schedule_of(when: str, timezone: str) -> Schedule:
    """A cron expression, or a whole number of seconds for an interval (trials and tests)."""
    if when.isdigit():
        return Interval(int(when), timezone=timezone)
    return Cron(when, timezone=timezone)


def _scheduled(
    flow: Flow[Any, Any], name: str, when: str, data: Path, warehouse: Path, description: str
) -> RunnerDeployment:
    deployment = flow.to_deployment(
        name=name,
        schedules=[schedule_of(when, load_settings(data).reporting_timezone)],
        parameters={"data": str(data.resolve()), "warehouse": str(warehouse.resolve())},
        concurrency_limit=1,
        description=description,
        tags=["creditrecon"],
    )
    assert isinstance(deployment, RunnerDeployment)  # called outside an event loop: not a coroutine
    return deployment


def nightly_deployment(data: Path, warehouse: Path, when: str = NIGHTLY_CRON) -> RunnerDeployment:
    return _scheduled(
        nightly,
        "nightly",
        when,
        data,
        warehouse,
        "Ingest the inbox and publish the credits warehouse, as of today.",
    )


def close_deployment(data: Path, warehouse: Path, when: str = CLOSE_CRON) -> RunnerDeployment:
    return _scheduled(
        month_end_close,
        "month-end-close",
        when,
        data,
        warehouse,
        "Close the month just ended: its figures never change again.",
    )
