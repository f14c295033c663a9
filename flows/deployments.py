"""Schedules: the nightly run as a Prefect deployment, served by `creditrecon serve`.

    prefect server start                                    # terminal 1
    export PREFECT_API_URL=http://127.0.0.1:4200/api        # terminal 2
    creditrecon serve --data /srv/agency --warehouse /srv/warehouse/credits.duckdb

The run starts at 02:00 in the agency's reporting time zone. At most one run at a time
(the deployment's concurrency limit, and the warehouse lock behind it).
"""

from __future__ import annotations

from pathlib import Path

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.nightly import nightly
from transforms.settings import load_settings

NIGHTLY_CRON = "0 2 * * *"


def nightly_deployment(data: Path, warehouse: Path) -> RunnerDeployment:
    timezone = load_settings(data).reporting_timezone
    deployment = nightly.to_deployment(
        name="nightly",
        schedules=[Cron(NIGHTLY_CRON, timezone=timezone)],
        parameters={"data": str(data.resolve()), "warehouse": str(warehouse.resolve())},
        concurrency_limit=1,
        description="Ingest the inbox and publish the credits warehouse, as of today.",
        tags=["creditrecon"],
    )
    assert isinstance(deployment, RunnerDeployment)  # called outside an event loop: not a coroutine
    return deployment
