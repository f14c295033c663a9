"""creditrecon: reconcile shared data-vendor credits per client.

Runs the nightly job, closes months, writes client statements and serves the schedules.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from transforms.build import AuditFailed, RunLocked

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Logs and CI capture output: keep tables readable there rather than 80 columns wide.
console = Console(width=None if sys.stdout.isatty() else 130)

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def default_warehouse(data: Path) -> Path:
    return data / "warehouse" / "creditrecon.duckdb"


DEMO_WAREHOUSE = default_warehouse(DEMO)


# Options shared by the commands that run a flow.
DataOption = Annotated[Path, typer.Option(help="Data folder (config/ and inbox/).")]
WarehouseOption = Annotated[
    Path | None,
    typer.Option(help="DuckDB file to publish [default: DATA/warehouse/creditrecon.duckdb]."),
]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="The run's today, YYYY-MM-DD [default: today].")
]
FLOW_ERRORS = (RunLocked, AuditFailed, FileNotFoundError, ValueError)


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2025-11-10") from None


FullRebuildOption = Annotated[
    bool,
    typer.Option(
        "--full-rebuild",
        help="Rebuild every mart from all staged rows, even when the night's files could "
        "be added to the published warehouse.",
    ),
]


@app.command()
def nightly(
    data: DataOption = DEMO,
    warehouse: WarehouseOption = None,
    as_of: AsOfOption = None,
    full_rebuild: FullRebuildOption = False,
) -> None:
    """Ingest new files, update the ledger and publish the warehouse (a Prefect flow run)."""
    from flows.nightly import nightly as nightly_flow  # Prefect is slow to import

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    target = (warehouse or default_warehouse(data)).resolve()
    try:
        result = nightly_flow(data.resolve(), target, _date(as_of), full_rebuild)
    except FLOW_ERRORS as exc:
        console.print(f"[red]creditrecon nightly failed:[/red] {exc}")
        raise typer.Exit(1) from None
    _report(result.warehouse, result.as_of, result.ingest, result.built)


def _report(warehouse: Path, as_of: dt.date, ingested: object, built: str) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    files = Table(title="Input files", title_justify="left")
    for col in ("file", "status", "read", "loaded", "quarantined"):
        files.add_column(
            col, justify="right" if col in ("read", "loaded", "quarantined") else "left"
        )
    for path, status, read, loaded, quarantined in con.sql(
        "SELECT path, status, rows_read, rows_loaded, rows_quarantined FROM ingest_manifest "
        "WHERE status <> 'superseded' ORDER BY source, path"
    ).fetchall():
        style = "yellow" if quarantined or status != "loaded" else ""
        files.add_row(path, status, str(read), str(loaded), str(quarantined), style=style)
    console.print(files)

    totals = con.execute(
        "SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
        "coalesce(sum(rows_quarantined), 0), count(*) FILTER (WHERE status = 'duplicate') "
        "FROM ingest_manifest WHERE status <> 'superseded'"
    ).fetchall()[0]
    console.print(
        f"{totals[0]} files, {totals[1]} rows read: {totals[2]} loaded, {totals[3]} quarantined; "
        f"{totals[4]} duplicate files skipped."
    )
    reasons = con.sql(
        "SELECT regexp_replace(regexp_replace(reason, '\"[^\"]*\"', '\"...\"', 'g'), "
        "' \\(e\\.g\\. [^)]*\\)', '', 'g') AS r, count(*) "
        "FROM quarantine GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 8"
    ).fetchall()
    for reason, n in reasons:
        console.print(f"  quarantined {n:>5} x {reason}")
    console.print(f"Warehouse: {built}.")

    month = as_of.replace(day=1)
    summary = Table(title=f"Clients, {month:%B %Y} as of {as_of}", title_justify="left")
    for col in (
        "vendor",
        "client",
        "available",
        "charged",
        "overage",
        "remaining",
        "forfeited",
        "free re-exports",
        "pace: month-end use",
        "to forfeit",
        "over",
        "needed a day",
    ):
        summary.add_column(col, justify="left" if col in ("vendor", "client") else "right")
    for row in con.sql(
        "SELECT b.vendor, b.client_id, b.available_credits, b.charged_credits, "
        "b.overage_credits, b.closing_balance, b.forfeited_credits, b.free_reexports, "
        "p.projected_use, p.projected_forfeit, p.projected_overage, p.daily_pace_needed "
        "FROM monthly_balances b LEFT JOIN pace_forecast p USING (vendor, client_id, month) "
        "WHERE b.month = ? AND b.available_credits + b.charged_credits + b.closing_balance "
        "+ b.forfeited_credits + b.free_reexports > 0 ORDER BY b.vendor, b.client_id",
        params=[month],
    ).fetchall():
        style = "red" if row[4] or row[10] else ("yellow" if row[9] else "")
        summary.add_row(*["" if v is None else str(v) for v in row], style=style)
    console.print(summary)
    off, disputable = con.execute(
        "SELECT (SELECT count(*) FROM vendor_reconciliation WHERE variance <> 0 "
        "OR reason NOT LIKE 'reconciled%'), (SELECT coalesce(sum(credits_to_reverse), 0) "
        "FROM disputes)"
    ).fetchall()[0]
    console.print(
        f"Vendor reconciliation: {off} vendor-user-months with a difference or a flag "
        f"(vendor_reconciliation); {disputable} credits to dispute "
        f"(disputes, {warehouse.stem}-disputes/)."
    )
    console.print(f"Warehouse: {warehouse}")
    con.close()


@app.command()
def close(
    month: Annotated[str, typer.Argument(help="Month to close, YYYY-MM.")],
    data: DataOption = DEMO,
    warehouse: WarehouseOption = None,
    as_of: AsOfOption = None,
) -> None:
    """Close a month for good; later data for it is booked in the first open month."""
    from flows.nightly import month_end_close

    try:
        first = dt.date.fromisoformat(month + "-01")
    except ValueError:
        raise typer.BadParameter(f"{month!r} is not a month like 2025-10") from None
    target = (warehouse or default_warehouse(data)).resolve()
    try:
        result = month_end_close(data.resolve(), target, first, _date(as_of))
    except FLOW_ERRORS as exc:
        console.print(f"[red]creditrecon close failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"Closed {first:%B %Y}.")
    _report(result.warehouse, result.as_of, result.ingest, result.built)


@app.command()
def statements(
    month: Annotated[str, typer.Argument(help="Month, YYYY-MM.")],
    warehouse: Annotated[Path, typer.Option(help="Published warehouse file.")] = DEMO_WAREHOUSE,
    out: Annotated[
        Path | None, typer.Option(help="Folder [default: beside the warehouse, <name>-statements].")
    ] = None,
) -> None:
    """Write each client's statement for a month (HTML and CSV) and an agency overview."""
    from transforms.statements import write_statements

    try:
        first = dt.date.fromisoformat(month + "-01")
    except ValueError:
        raise typer.BadParameter(f"{month!r} is not a month like 2025-10") from None
    if not warehouse.exists():
        raise typer.BadParameter(f"{warehouse} does not exist; run `creditrecon nightly` first")
    folder = out or warehouse.with_name(warehouse.stem + "-statements")
    written = write_statements(warehouse, folder, first)
    console.print(f"{len(written)} files in {folder / f'{first:%Y-%m}'} (open index.html).")


# Trials and tests only: a schedule that fires soon (a cron expression or every N seconds).
ScheduleOption = Annotated[str | None, typer.Option(hidden=True)]


@app.command()
def serve(
    data: DataOption = DEMO,
    warehouse: WarehouseOption = None,
    nightly_schedule: ScheduleOption = None,
    close_schedule: ScheduleOption = None,
) -> None:
    """Serve the nightly run (02:00) and the month-end close (the 1st, 04:00)."""
    from prefect import serve as prefect_serve

    from flows.deployments import CLOSE_CRON, NIGHTLY_CRON, close_deployment, nightly_deployment

    target = warehouse or default_warehouse(data)
    prefect_serve(
        nightly_deployment(data, target, nightly_schedule or NIGHTLY_CRON),
        close_deployment(data, target, close_schedule or CLOSE_CRON),
    )


@app.command("deploy-agencies")
def deploy_agencies(
    config: Annotated[Path, typer.Argument(help="Agencies file (TOML, one [[agency]] each).")],
    pool: Annotated[
        str, typer.Option(help="Prefect work pool (created as a process pool if missing).")
    ],
) -> None:
    """Register every agency's nightly run and month-end close on one Prefect work pool."""
    import httpx
    from rich.markup import escape

    from flows.agencies import AgencyConfigError, load_agencies, register_agencies

    try:
        agencies = load_agencies(config)
    except AgencyConfigError as exc:
        console.print(
            f"[red]creditrecon deploy-agencies failed:[/red] {escape(str(exc))}", soft_wrap=True
        )
        raise typer.Exit(1) from None
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        console.print(
            "[red]creditrecon deploy-agencies failed:[/red] PREFECT_API_URL is not set: "
            "point it at the Prefect server the workers poll",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    try:
        names = register_agencies(agencies, pool)
    except AgencyConfigError as exc:
        console.print(
            f"[red]creditrecon deploy-agencies failed:[/red] {escape(str(exc))}", soft_wrap=True
        )
        raise typer.Exit(1) from None
    except httpx.HTTPStatusError as exc:
        console.print(
            f"[red]creditrecon deploy-agencies failed:[/red] Prefect API at "
            f"{PREFECT_API_URL.value()} refused it ({escape(str(exc).splitlines()[0])})",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    except (OSError, httpx.HTTPError) as exc:
        console.print(
            f"[red]creditrecon deploy-agencies failed:[/red] Prefect API at "
            f"{PREFECT_API_URL.value()} cannot be reached ({escape(str(exc))})",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    for name in names:
        console.print(f"deployed {name} on pool {pool}")
    console.print(
        f"{len(agencies)} agencies on pool {pool}; start workers with "
        f"`prefect worker start --pool {pool} --limit 1`."
    )


@app.command()
def dictionary(
    warehouse: Annotated[Path, typer.Option(help="Published warehouse file.")] = DEMO_WAREHOUSE,
) -> None:
    """Print the data dictionary (Markdown) from the warehouse's own comments."""
    from transforms.build import data_dictionary

    if not warehouse.exists():
        raise typer.BadParameter(f"{warehouse} does not exist; run `creditrecon nightly` first")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        typer.echo(data_dictionary(con))
    finally:
        con.close()


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="Folder to write (config/ and inbox/).")],
    records: Annotated[int, typer.Option(help="Export rows in total.")] = 100_000,
    clients: Annotated[int, typer.Option(help="Clients.")] = 20,
    months: Annotated[int, typer.Option(help="Months of history.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    narrow: Annotated[
        bool, typer.Option("--narrow", help="Export files with only the record IDs.")
    ] = False,
) -> None:
    """Write a synthetic data folder of any size, laid out like a real one."""
    from flows.synthetic import generate as write

    counts = write(out, records=records, clients=clients, months=months, seed=seed, narrow=narrow)
    console.print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    app()
