"""creditrecon: reconcile shared data-vendor credits per client.

Runs the nightly job, closes months, writes client statements and serves the schedules.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.preflight import (
    FORCE_AS_OF,
    Refused,
    check_close,
    check_run,
    disk_hint,
    prepare_prefect,
    server_hint,
)
from flows.temporary_server import start_temporary_server
from transforms.settings import SettingsError

if TYPE_CHECKING:
    from flows.summary import Summary

# Before anything imports Prefect (its settings are read once, at import).
prepare_prefect()


class Commands(typer.Typer):
    """The command line, whose usage mistakes (an unknown option or command, a missing
    argument, an option value of the wrong type) end in one line on stderr naming it, exit 2,
    as every other mistake does: no usage box, no traceback."""

    def __call__(self, *args: object, **kwargs: object) -> None:
        try:
            code = super().__call__(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # typer's own click errors derive from it
            # A bare `creditrecon` has had its help printed already.
            if type(exc).__name__ != "NoArgsIsHelpError":
                message = " ".join(exc.format_message().split())
                typer.echo(f"{self._where(exc)}: {message}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("creditrecon: aborted", err=True)
            code = 1
        # Without standalone mode a command's Exit comes back as its code; success as None.
        sys.exit(code if isinstance(code, int) else 0)

    def _where(self, exc: Exception) -> str:
        """`creditrecon <command>` the mistake was made in, as far as it can be told."""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and ctx.parent is not None:
            return str(ctx.command_path)
        names = {
            c.name or c.callback.__name__.replace("_", "-")
            for c in self.registered_commands
            if c.callback
        }
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        return f"creditrecon {command}" if command in names else "creditrecon"


app = Commands(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)
# Logs and CI capture output: there, never cut a line (client names stay whole).
console = Console(width=None if sys.stdout.isatty() else 10_000)

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
    str | None,
    typer.Option(
        "--as-of",
        help="The run's today, YYYY-MM-DD [default: today]. Refused after today or far "
        f"outside the contracts, unless {FORCE_AS_OF}.",
    ),
]
AsOfAnywayOption = Annotated[
    bool,
    typer.Option(
        FORCE_AS_OF, help="Run as of --as-of even if it is after today or far from the data."
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="List every input file, not only the problems.")
]


def fail(command: str, message: str, code: int = 1) -> typer.Exit:
    """One line on stderr naming the problem; the caller raises the returned Exit."""
    typer.echo(f"creditrecon {command}: {message}", err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def one_line(command: str) -> Iterator[None]:
    """A mistake (or a Prefect API that cannot be reached) ends in one line and exit 1."""
    import duckdb

    from transforms.build import AuditFailed, RunLocked

    try:
        yield
    except Refused as exc:
        raise fail(command, str(exc), exc.code) from None
    except (RunLocked, AuditFailed, SettingsError, FileNotFoundError) as exc:
        raise fail(command, str(exc)) from None
    except ValueError as exc:  # the close's own checks, under the lock
        raise fail(command, str(exc)) from None
    except (OSError, duckdb.IOException, duckdb.PermissionException) as exc:
        raise fail(command, disk_hint(exc) or str(exc)) from None
    except Exception as exc:
        hint = server_hint(exc) or disk_hint(exc)
        if hint is None:
            raise
        raise fail(command, hint) from None


def _date(value: str | None, command: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(command, f"--as-of: {value!r} is not a date like 2025-11-10", 2) from None


def _month(value: str, command: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value + "-01")
    except ValueError:
        raise fail(command, f"{value!r} is not a month like 2025-10", 2) from None


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
    as_of_anyway: AsOfAnywayOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Ingest new files, update the ledger and publish the warehouse (a Prefect flow run)."""
    target = (warehouse or default_warehouse(data)).resolve()
    day = _date(as_of, "nightly")
    with one_line("nightly"):
        check_run(data, target, day, as_of_anyway)
        server = start_temporary_server()  # it starts while Prefect is imported
        from flows.nightly import nightly as nightly_flow  # Prefect is slow to import

        if server:
            server.wait()
        result = nightly_flow(data.resolve(), target, day, full_rebuild)
    _report(result.summary, verbose)


def _report(s: Summary, verbose: bool = False) -> None:
    from flows.summary import alert_lines

    if s.nothing_new:
        console.print(s.nothing_new_line())
        if s.alerts.warning:  # alerts that could not be delivered again
            console.print(f"[yellow]{s.alerts.warning}[/yellow]", markup=True)
        return
    shown = [f for f in s.files if verbose or f.problem]
    files = Table(
        title="Input files" if verbose else "Input files with a problem", title_justify="left"
    )
    for col in ("file", "status", "read", "loaded", "quarantined"):
        files.add_column(
            col, justify="right" if col in ("read", "loaded", "quarantined") else "left"
        )
    for f in shown:
        style = "yellow" if f.problem else ""
        files.add_row(f.path, f.status, str(f.read), str(f.loaded), str(f.quarantined), style=style)
    if shown:
        console.print(files)
    if not verbose:
        rest = len(s.files) - len(shown)
        console.print(f"{rest} other files loaded with every row (--verbose lists them).")
    n, read, loaded, quarantined, duplicates = s.totals
    console.print(
        f"{n} files, {read} rows read: {loaded} loaded, {quarantined} quarantined; "
        f"{duplicates} duplicate files skipped."
    )
    for reason, count in s.reasons:
        console.print(f"  quarantined {count:>5} x {reason}")
    console.print(f"Warehouse: {s.built}.")
    for note in s.notes:
        console.print(f"[yellow]{note}[/yellow]")

    summary = Table(title=f"Clients, {s.month:%B %Y} as of {s.as_of}", title_justify="left")
    from flows.summary import CLIENT_COLUMNS

    for col in CLIENT_COLUMNS:
        summary.add_column(
            col,
            justify="left" if col in ("vendor", "client") else "right",
            no_wrap=col == "client",
        )
    for row in s.clients:
        style = "red" if row[4] or row[10] else ("yellow" if row[9] else "")
        summary.add_row(*["" if v is None else str(v) for v in row], style=style)
    console.print(summary)
    console.print(s.reconciliation)
    for line in alert_lines(s):
        console.print(line, markup=False)
    console.print(f"Warehouse: {s.warehouse}")


@app.command()
def close(
    month: Annotated[str, typer.Argument(help="Month to close, YYYY-MM.")],
    data: DataOption = DEMO,
    warehouse: WarehouseOption = None,
    as_of: AsOfOption = None,
    as_of_anyway: AsOfAnywayOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Close a month for good; later data for it is booked in the first open month."""
    first = _month(month, "close")
    target = (warehouse or default_warehouse(data)).resolve()
    day = _date(as_of, "close")
    with one_line("close"):
        checked = check_run(data, target, day, as_of_anyway)
        check_close(target, first, day or checked.settings.today())
        server = start_temporary_server()
        from flows.nightly import month_end_close

        if server:
            server.wait()
        result = month_end_close(data.resolve(), target, first, day)
    folder = target.with_name(target.stem + "-statements") / f"{first:%Y-%m}"
    pdfs = len(list(folder.glob("*.pdf")))
    console.print(
        f"Closed {first:%B %Y}. Its final statements: {folder}"
        + ("" if pdfs else " (HTML and CSV only: PDFs need Chromium, see the run's log)")
    )
    _report(result.summary, verbose)


@app.command()
def status(data: DataOption = DEMO, warehouse: WarehouseOption = None) -> None:
    """What is published: as of when, built how and by which run, what waits in quarantine."""
    target = (warehouse or default_warehouse(data)).resolve()
    if not target.exists():
        raise fail("status", f"nothing is published at {target} yet; run `creditrecon nightly`")
    with one_line("status"):
        _status(target)


def _status(target: Path) -> None:
    import duckdb

    con = duckdb.connect(str(target), read_only=True)
    try:
        info = con.sql("SELECT * FROM run_info").fetchall()[0]
        columns = [c for (c,) in con.sql("SELECT column_name FROM (DESCRIBE run_info)").fetchall()]
        run = dict(zip(columns, info, strict=True))
        files, read, loaded, quarantined, last = con.sql(
            "SELECT count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined), "
            "max(ingested_at) FROM ingest_manifest WHERE status <> 'superseded'"
        ).fetchall()[0]
        reasons = con.sql(
            "SELECT source, regexp_replace(regexp_replace(reason, '\"[^\"]*\"', '\"...\"', 'g'), "
            "' \\(e\\.g\\. [^)]*\\)', '', 'g') AS r, count(*) "
            "FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 12"
        ).fetchall()
        problem_files = con.sql(
            "SELECT path, status, rows_quarantined FROM ingest_manifest "
            "WHERE status <> 'superseded' AND (rows_quarantined > 0 OR status NOT IN "
            "('loaded', 'unchanged')) ORDER BY path"
        ).fetchall()
        has_alerts = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'alerts'"
        ).fetchall()[0][0]
        alerts = (
            con.sql(
                "SELECT message FROM alerts WHERE still_holds ORDER BY rule, alert_id"
            ).fetchall()
            if has_alerts
            else []
        )
    finally:
        con.close()
    published = dt.datetime.fromtimestamp(target.stat().st_mtime, dt.UTC)
    closed = ", ".join(m[:7] for m in _json_list(run.get("closed_months"))) or "none"
    console.print(f"Published: {target}, at {published:%Y-%m-%d %H:%M:%S} UTC")
    console.print(
        f"As of: {run['as_of']} ({run['reporting_timezone']}), re-export window "
        f"{run['reexport_window_months']} months; closed months: {closed}"
    )
    console.print(f"Built: {run['build']}")
    console.print(f"By: {run.get('published_by') or 'a run outside Prefect'}")
    console.print(
        f"Inputs: {files} files, {read} rows read: {loaded} loaded, {quarantined} quarantined; "
        f"last file ingested {last:%Y-%m-%d %H:%M:%S} UTC"
    )
    if alerts:
        console.print(f"Alerts: {len(alerts)} standing (the alerts table):")
        for (message,) in alerts:
            console.print(f"  - {message}", markup=False, highlight=False)
    else:
        console.print("Alerts: none standing.")
    if not reasons:
        console.print("Quarantine: empty.")
        return
    console.print(f"Quarantine: {quarantined} rows wait (the quarantine table):")
    for source, reason, n in reasons:
        console.print(f"  {n:>5} x {source}: {reason}")
    for path, file_status, n in problem_files:
        console.print(f"  {path}: {file_status}, {n} rows quarantined")


def _json_list(text: object) -> list[str]:
    import json

    return [str(m) for m in json.loads(str(text))] if text else []


@app.command()
def statements(
    month: Annotated[str, typer.Argument(help="Month, YYYY-MM.")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="Data folder whose config/settings.toml names the agency [default: data/demo "
            "when --warehouse is not given either]."
        ),
    ] = None,
    warehouse: Annotated[
        Path | None,
        typer.Option(help="Published warehouse file [default: DATA/warehouse/creditrecon.duckdb]."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder [default: beside the warehouse, <name>-statements].")
    ] = None,
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also a PDF of each statement (needs Chromium).")
    ] = False,
) -> None:
    """Write each client's statement for a month (HTML, CSV, PDF) and an agency overview.
    A closed month's statements are written as its close issued them."""
    from transforms.settings import Agency, load_settings
    from transforms.statement_pdf import ChromiumMissing, chromium
    from transforms.statements import write_statements

    first = _month(month, "statements")
    if data is None and warehouse is None:
        data = DEMO
    target = warehouse or default_warehouse(data or DEMO)
    if not target.exists():
        raise fail("statements", f"{target} does not exist; run `creditrecon nightly` first")
    if data is not None and not data.is_dir():
        raise fail("statements", f"--data {data} is not a folder")
    try:
        agency = load_settings(data).agency if data is not None else Agency()
        if pdf:
            chromium()
    except (SettingsError, ChromiumMissing) as exc:
        raise fail("statements", str(exc)) from None
    folder = out or target.with_name(target.stem + "-statements")
    with one_line("statements"):
        try:
            written = write_statements(target, folder, first, agency, pdf=pdf)
        except ChromiumMissing as exc:  # a browser there but unable to print
            raise fail("statements", str(exc)) from None
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
    target = warehouse or default_warehouse(data)
    with one_line("serve"):
        check_run(data, target.resolve(), None)
    from prefect import serve as prefect_serve

    from flows.deployments import CLOSE_CRON, NIGHTLY_CRON, close_deployment, nightly_deployment

    # Prefect's runner stops gracefully on SIGTERM (cancelling the runs it started, so none
    # is left "Running" on the server); a bare SIGINT would tear it down without that.
    signal.signal(signal.SIGINT, lambda *_: signal.raise_signal(signal.SIGTERM))
    prefect_serve(
        nightly_deployment(data, target, nightly_schedule or NIGHTLY_CRON),
        close_deployment(data, target, close_schedule or CLOSE_CRON),
    )
    console.print(
        "creditrecon serve: stopped; any run it had started is cancelled, leaving the published "
        "warehouse as it was, and the schedules wait until `creditrecon serve` runs again",
        soft_wrap=True,
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
        names, removed = register_agencies(agencies, pool)
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
    for name in removed:
        console.print(f"removed {name} from pool {pool}: its agency is no longer listed")
    console.print(
        f"{len(agencies)} agencies on pool {pool}; start workers with "
        f"`prefect worker start --pool {pool} --limit 1`."
    )


@app.command()
def dictionary(
    warehouse: Annotated[Path, typer.Option(help="Published warehouse file.")] = DEMO_WAREHOUSE,
) -> None:
    """Print the data dictionary (Markdown) from the warehouse's own comments."""
    if not warehouse.exists():
        raise fail("dictionary", f"{warehouse} does not exist; run `creditrecon nightly` first")
    import duckdb

    from transforms.dictionary import data_dictionary

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
    from generators.synthetic import generate as write

    counts = write(out, records=records, clients=clients, months=months, seed=seed, narrow=narrow)
    console.print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    app()
