"""Many agencies on one Prefect work pool: one config file, two deployments per agency.

    prefect server start                                    # or an existing server
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    creditrecon deploy-agencies agencies.toml --pool agencies
    prefect worker start --pool agencies --limit 1          # as many as there are cores to spare

`agencies.toml` lists each agency once:

    [[agency]]
    name = "northwind"                        # deployment name: letters, digits, - and _
    data = "/srv/northwind"                   # its data folder (config/ and inbox/)
    warehouse = "/srv/warehouses/northwind.duckdb"   # default DATA/warehouse/creditrecon.duckdb
    timezone = "America/New_York"             # when its night starts; default its reporting zone
    as_of = "2025-11-10"                      # a fixed "today", for trials; default: the run's day

Relative paths are read from the config file's folder. Every agency gets
`creditrecon-nightly/<name>` (02:00) and `creditrecon-month-end-close/<name>` (the 1st,
04:00) on the pool, at most one run of each at a time; a worker with `--limit 1` takes one
night at a time, so each night runs on whichever worker is free. The deployments name the
flows by module (`flows.nightly.nightly`), so a worker needs creditrecon installed and
nothing else: a process worker in this environment, or a Docker or Kubernetes pool whose
job template names an image with creditrecon in it (docs/scaling.md). An agency dropped
from the file has its deployments removed from the pool when the file is deployed again.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
KEYS = {"name", "data", "warehouse", "timezone", "as_of"}


class AgencyConfigError(ValueError):
    """A mistake in the agencies file, said in one line."""


@dataclass(frozen=True)
class Agency:
    name: str
    data: Path
    warehouse: Path
    timezone: str  # when its night starts: as configured, else its reporting time zone
    as_of: dt.date | None = None


def load_agencies(path: Path) -> list[Agency]:
    """The agencies of `path`, checked: every mistake is an AgencyConfigError naming it."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AgencyConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AgencyConfigError(f"{path}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise AgencyConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(raw) - {"agency"}
    if unknown:
        raise AgencyConfigError(
            f"{path}: unknown key {sorted(unknown)[0]!r}; agencies are [[agency]] tables"
        )
    entries = raw.get("agency")
    if not isinstance(entries, list) or not entries:
        raise AgencyConfigError(f"{path}: no [[agency]] tables")
    base = path.resolve().parent
    agencies = [_agency(path, base, i, entry) for i, entry in enumerate(entries, start=1)]

    seen: dict[str, Agency] = {}
    for agency in agencies:
        if agency.name in seen:
            raise AgencyConfigError(f"{path}: agency name {agency.name!r} is listed twice")
        seen[agency.name] = agency
    # Two agencies on one warehouse would overwrite each other's ledger every night.
    owner: dict[Path, str] = {}
    for agency in agencies:
        other = owner.setdefault(agency.warehouse, agency.name)
        if other != agency.name:
            raise AgencyConfigError(
                f"{path}: agencies {other!r} and {agency.name!r} share the warehouse "
                f"{agency.warehouse}"
            )
    return agencies


def _agency(path: Path, base: Path, number: int, entry: object) -> Agency:
    where = f"{path}: agency {number}"
    if not isinstance(entry, dict):
        raise AgencyConfigError(f"{where} is not a table")
    unknown = set(entry) - KEYS
    if unknown:
        raise AgencyConfigError(
            f"{where}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(KEYS))})"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise AgencyConfigError(
            f"{where}: name must be letters, digits, '-' and '_' (got {name!r})"
        )
    where = f"{path}: agency {name!r}"
    for key in ("data", "warehouse", "timezone"):
        if key in entry and not isinstance(entry[key], str):
            raise AgencyConfigError(f"{where}: {key} must be a string")
    if "data" not in entry:
        raise AgencyConfigError(f"{where}: no data folder")
    data = (base / entry["data"]).resolve()
    if not data.is_dir():
        raise AgencyConfigError(f"{where}: data folder {data} does not exist")
    if not (data / "config").is_dir():
        raise AgencyConfigError(f"{where}: data folder {data} has no config/ folder")
    warehouse = (
        (base / entry["warehouse"]).resolve()
        if "warehouse" in entry
        else data / "warehouse" / "creditrecon.duckdb"
    )
    if warehouse.is_dir():
        raise AgencyConfigError(f"{where}: warehouse {warehouse} is a folder, not a file")
    timezone = entry.get("timezone")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise AgencyConfigError(f"{where}: unknown time zone {timezone!r}") from None
    as_of = entry.get("as_of")
    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError:
            raise AgencyConfigError(
                f"{where}: as_of {as_of!r} is not a date like 2025-11-10"
            ) from None
    if as_of is not None and (isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date)):
        raise AgencyConfigError(f"{where}: as_of must be a date like 2025-11-10")
    reporting = _reporting_timezone(where, data)
    return Agency(name, data, warehouse, timezone or reporting, as_of)


def _reporting_timezone(where: str, data: Path) -> str:
    """The agency's reporting time zone, its settings checked now rather than at 02:00."""
    from transforms.settings import load_settings

    try:
        return load_settings(data).reporting_timezone
    # A broken settings.toml (unknown key, misspelt zone, bad TOML) says what is wrong.
    except (ValueError, KeyError, TypeError, OSError) as exc:
        reason = exc.args[0] if exc.args else exc
        raise AgencyConfigError(f"{where}: {data / 'config' / 'settings.toml'}: {reason}") from None


def ensure_process_pool(pool: str) -> str:
    """Create `pool` as a process work pool unless it exists; return its type (an
    operator's Docker or Kubernetes pool of that name is used as it is)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(pool).type
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=pool,
                    type=ProcessWorker.type,
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
            return ProcessWorker.type


def agency_deployments(agency: Agency) -> list[Any]:
    """The nightly run and the month-end close of one agency, as RunnerDeployments."""
    # Prefect is imported only here and below: checking the file needs none of it.
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.deployments import CLOSE_CRON, NIGHTLY_CRON
    from flows.nightly import month_end_close, nightly

    parameters: dict[str, Any] = {"data": str(agency.data), "warehouse": str(agency.warehouse)}
    if agency.as_of is not None:
        parameters["as_of"] = agency.as_of.isoformat()
    return [
        flow.to_deployment(
            name=agency.name,
            schedules=[Cron(cron, timezone=agency.timezone)],
            parameters=parameters,
            concurrency_limit=1,
            description=f"{what} for {agency.name} ({agency.data}).",
            tags=["creditrecon", f"agency:{agency.name}"],
            # By module, not file: a worker (or an image) with creditrecon installed runs it.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for flow, cron, what in (
            (nightly, NIGHTLY_CRON, "Ingest the inbox and publish the credits warehouse"),
            (month_end_close, CLOSE_CRON, "Close the month just ended"),
        )
    ]


def register_agencies(agencies: list[Agency], pool: str) -> tuple[list[str], list[str]]:
    """Register every agency's deployments on `pool` (created as a process pool if
    missing), and remove from it the deployments of agencies the file no longer lists:
    the names registered and the names removed, `flow/deployment`."""
    # Every agency is checked before anything is registered: a half-registered set helps nobody.
    deployments = [d for agency in agencies for d in agency_deployments(agency)]
    ensure_process_pool(pool)
    names = []
    for deployment in deployments:
        deployment.apply(work_pool_name=pool)
        names.append(f"{deployment.flow_name}/{deployment.name}")
    return names, remove_dropped_agencies(pool, {agency.name for agency in agencies})


def remove_dropped_agencies(pool: str, listed: set[str]) -> list[str]:
    """Delete the creditrecon deployments on `pool` whose agency is not in `listed`, so a
    dropped agency's nights stop (its data and warehouse are left as they are). Only
    deployments this command made (tagged creditrecon and agency:<name>) are touched."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterTags,
        WorkPoolFilter,
        WorkPoolFilterName,
    )

    removed = []
    with get_client(sync_client=True) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=["creditrecon"])),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        )
        flow_names: dict[Any, str] = {}
        for deployment in found:
            tags = deployment.tags
            agencies = [t.removeprefix("agency:") for t in tags if t.startswith("agency:")]
            if len(agencies) != 1 or agencies[0] in listed:
                continue
            if deployment.flow_id not in flow_names:
                flow_names[deployment.flow_id] = client.read_flow(deployment.flow_id).name
            client.delete_deployment(deployment.id)
            removed.append(f"{flow_names[deployment.flow_id]}/{deployment.name}")
    return sorted(removed)
