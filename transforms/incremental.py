"""An incremental night: the night's new files go through the rules, and what they add is
written into a copy of the published warehouse, so a night costs about its own rows, not
the whole history.

It applies when the night only appends: its new files are vendor files (never
configuration), every new record is later than anything the
published warehouse charged (``run_info.watermarks``), and nothing the night brings can
change an earlier decision. Then what the rules need from the past is small and already
published:

- rule 2: a record's latest charge (``prior_charges``, from the ledger's charge entries
  of the night's record keys): a new export of it is a free re-export while that window
  lasts; at a vendor whose repeat purchases are matched, a record's first purchase, which
  a new one repeats;
- rules 3 and 4: what earlier nights drew from the lots still open at the watermark
  (``prior_lot_draws``): the night draws on what is left, and their forfeits are decided
  again;
- everything else (balances, forfeitures, reconciliation, ...) is small and is recomputed
  from the merged ledger by the same models as a full rebuild.

Each model's declaration says how the night makes it (its ``[night]``, transforms/runner.py):
recomputed, merged into the published table in place, or added to the published rows; the
checks and the prior state it needs first (``before``). Those callables are all here:
``charges_eligible`` and ``lots_eligible`` (the checks, then the prior state the rules need),
``merge_ledger`` and ``merge_duplicates``, the ``add_*`` ones, and ``burn_lots_left``.

Anything else raises ``NotIncremental`` with the reason, and the caller rebuilds in full
(transforms/build.py chooses). The full rebuild is the reference: tests/test_incremental.py
runs random nights both ways and compares every published table.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import duckdb

from schemas.inputs import SOURCES
from transforms import close, ledger, pipeline
from transforms.dictionary import describe_tables
from transforms.failpoints import failpoint
from transforms.parquet import parquet_dir
from transforms.publish import Workspace
from transforms.runner import models, resolve

# Sources whose new files an incremental night takes: every vendor file. A configuration
# change can change any past decision.
NIGHT_SOURCES = {s.name for s in SOURCES if s.vendor != "config"}


class NotIncremental(Exception):
    """This night cannot be added to the published warehouse; rebuild in pipeline."""


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    return con.execute(sql, params or []).fetchall()[0][0]


def _published_run(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    columns = [
        c for (c,) in con.sql("SELECT column_name FROM (DESCRIBE warehouse.run_info)").fetchall()
    ]
    if "pipeline_fingerprint" not in columns:
        raise NotIncremental("the published warehouse was built by an earlier version")
    row = con.sql("SELECT * FROM warehouse.run_info").fetchall()
    if len(row) != 1:
        raise NotIncremental("the published warehouse has no run_info row")
    return dict(zip(columns, row[0], strict=True))


def _check_run(
    con: duckdb.DuckDBPyConnection,
    params: pipeline.RunParams,
    current_config: dict[str, str | None],
) -> dict[str, Any]:
    """Same code, parameters, configuration and closed months as the published build."""
    run = _published_run(con)
    if (run["creditrecon_version"], run["pipeline_fingerprint"]) != (
        version("creditrecon"),
        pipeline.pipeline_fingerprint(),
    ):
        raise NotIncremental("the pipeline changed since the published build")
    if (run["reporting_timezone"], run["reexport_window_months"]) != (
        params.reporting_timezone,
        params.reexport_window_months,
    ):
        raise NotIncremental("the time zone or the re-export window changed")
    if params.as_of < run["as_of"]:
        raise NotIncremental(f"as-of date {params.as_of} is before the published {run['as_of']}")
    if json.loads(run["config_files"]) != current_config:
        raise NotIncremental("the configuration changed")
    if json.loads(run["closed_months"]) != pipeline.closed_months(con):
        raise NotIncremental("a month was closed since")
    if _one(con, "SELECT count(*) FROM warehouse.ledger_entries WHERE late_for_month IS NOT NULL"):
        raise NotIncremental("the ledger holds entries booked late for a closed month")
    if params.as_of != run["as_of"] and _one(
        con,
        "SELECT count(*) FROM warehouse.quarantine "
        "WHERE rejected_by = 'rules' AND reason LIKE '%after the as-of date%'",
    ):
        raise NotIncremental("rows waiting for a later as-of date may now count")
    return run


def _night_files(con: duckdb.DuckDBPyConnection) -> int:
    """night_files: the ingest store's files the published warehouse has not seen. Returns
    how many; raises if one it has seen is gone or the night brings a file it cannot take.
    A file is the same when its path, bytes and ingest time are: a store rebuilt from the
    inbox ingests everything again, and entries record when their inputs arrived."""
    con.execute("""
        CREATE TABLE night_files AS
        SELECT f.path, f.content_hash, f.file_id, f.source, f.status
        FROM ingest.ingest_files f
        ANTI JOIN warehouse.ingest_manifest m USING (path, content_hash, ingested_at)
    """)
    gone = _one(
        con,
        "SELECT count(*) FROM warehouse.ingest_manifest m "
        "ANTI JOIN ingest.ingest_files f USING (path, content_hash, ingested_at)",
    )
    if gone:
        raise NotIncremental(f"{gone} files of the published warehouse are no longer staged")
    others = con.sql(
        "SELECT DISTINCT source FROM night_files WHERE NOT list_contains(?, source) ORDER BY 1",
        params=[sorted(NIGHT_SOURCES)],
    ).fetchall()
    if others:
        raise NotIncremental("new files of " + ", ".join(s for (s,) in others))
    return _one(con, "SELECT count(*) FROM night_files")


def _check_adapters(con: duckdb.DuckDBPyConnection) -> None:
    """What each vendor's adapter says keeps the night's files from being added to what is
    published (vendor_night_conflicts: e.g. a listing naming a file of another night)."""
    conflict = con.sql(
        "SELECT reason FROM vendor_night_conflicts ORDER BY vendor, reason LIMIT 1"
    ).fetchall()
    if conflict:
        raise NotIncremental(conflict[0][0])


def _check_after_watermarks(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    """Every new record is later than what its vendor already charged, and in an open month
    (published_watermarks: the published run's)."""
    con.execute("CREATE TEMP TABLE published_watermarks (vendor VARCHAR, watermark TIMESTAMP)")
    marks = json.loads(run["watermarks"])
    if marks:
        con.executemany("INSERT INTO published_watermarks VALUES (?, ?)", list(marks.items()))
    early = con.sql("""
        SELECT e.vendor, min(e.exported_at), any_value(w.watermark)
        FROM exported_records e JOIN published_watermarks w USING (vendor)
        GROUP BY ALL HAVING min(e.exported_at) <= any_value(w.watermark)
    """).fetchall()
    if early:
        vendor, first, mark = early[0]
        raise NotIncremental(f"a {vendor} record of {first} is not after the last charged ({mark})")
    closed = json.loads(run["closed_months"])
    if closed and _one(
        con,
        "SELECT count(*) FROM exported_records WHERE exported_at < (?::DATE + INTERVAL 1 MONTH)",
        [max(closed)],
    ):
        raise NotIncremental("a record falls in a closed month")


def _load_prior_charges(con: duckdb.DuckDBPyConnection) -> None:
    """prior_charges from the published ledger (see the module doc)."""
    con.execute("""
        CREATE TEMP TABLE night_keys AS
        SELECT DISTINCT vendor, record_type, record_key FROM exported_records
    """)
    # The earliest and latest charge of each record key the night exports again, in one scan
    # of the ledger. One charge can be split over several lots (several entries), all with
    # its time and source.
    con.execute("""
        CREATE TEMP TABLE charged_keys AS
        WITH charge_entries AS (
            SELECT vendor, record_type, record_key, effective_at,
                   {'client_id': client_id, 'export_id': export_id,
                    'source_file': source_file, 'row_number': source_row} AS source
            FROM warehouse.ledger_entries
            SEMI JOIN night_keys USING (vendor, record_type, record_key)
            WHERE entry_type IN ('consume', 'overage')
        )
        SELECT vendor, record_type, record_key,
               min(effective_at) AS first_at, arg_min(source, effective_at) AS first,
               max(effective_at) AS last_at, arg_max(source, effective_at) AS last
        FROM charge_entries
        GROUP BY ALL
    """)
    # first_in_window: a record's latest charge, whose window a new export may fall in.
    con.execute("""
        CREATE TEMP TABLE latest_charges AS
        SELECT vendor, record_type, record_key, last_at AS charged_at, last.*,
               last_at AS exported_at
        FROM charged_keys
        WHERE vendor IN (SELECT vendor FROM vendor_rules WHERE rule = 'first_in_window')
    """)
    # Repeat purchases: a record's first purchase. Bought more than once, the published
    # repeats name it; bought once, its charge entries are it. (One bought before only for 0
    # credits has no entry: its adapter's night_conflicts send the night to a full rebuild.)
    con.execute("""
        CREATE TEMP TABLE first_purchases AS
        WITH repeated AS (
            SELECT vendor, record_type, record_key,
                   any_value(first_exported_at) AS charged_at,
                   any_value(first_client_id) AS client_id,
                   any_value(first_export_id) AS export_id,
                   any_value(first_exported_at) AS exported_at,
                   any_value(first_source_file) AS source_file,
                   any_value(first_source_row) AS row_number
            FROM warehouse.duplicate_reexports
            SEMI JOIN night_keys USING (vendor, record_type, record_key)
            WHERE kind = 'repeat_purchase'
            GROUP BY ALL
        ),
        once AS (
            SELECT vendor, record_type, record_key, first_at AS charged_at, first.*,
                   first_at AS exported_at
            FROM charged_keys
            WHERE vendor IN (SELECT vendor FROM vendor_rules WHERE repeat_purchases)
        )
        SELECT * FROM repeated
        UNION ALL BY NAME
        SELECT * FROM once ANTI JOIN repeated USING (vendor, record_type, record_key)
    """)
    con.execute("""
        INSERT INTO prior_charges BY NAME
        SELECT *, -row_number() OVER (ORDER BY vendor, record_type, record_key) AS seq
        FROM (FROM latest_charges UNION ALL BY NAME FROM first_purchases)
    """)


def _load_prior_draws(con: duckdb.DuckDBPyConnection) -> None:
    """lots_open, prior_lot_draws and lots_left (what is left to draw) from the published
    ledger (see the module doc)."""
    # Lots open after the watermark and into the first open month: the only ones the
    # night's records (all later than both) can draw on or change the forfeit of. Lots that
    # expired earlier keep their published entries (frozen ones, for a closed month).
    closed = pipeline.closed_months(con)
    con.execute(
        """
        CREATE TABLE lots_open AS
        SELECT l.* FROM lots l LEFT JOIN published_watermarks w USING (vendor)
        WHERE (w.watermark IS NULL OR l.expires_on::TIMESTAMP > w.watermark)
          AND ($closed IS NULL OR l.expires_on > $closed::DATE + INTERVAL 1 MONTH)
        """,
        {"closed": max(closed) if closed else None},
    )
    con.execute("""
        INSERT INTO prior_lot_draws
        SELECT lot_id,
               sum(CASE entry_type WHEN 'consume' THEN credits ELSE -credits END),
               max(recorded_at)
        FROM warehouse.ledger_entries
        WHERE lot_id IN (SELECT lot_id FROM lots_open)
          AND entry_type IN ('consume', 'reverse')
        GROUP BY ALL
    """)
    con.execute("""
        CREATE TABLE lots_left AS
        SELECT l.* REPLACE (l.credits - coalesce(d.drawn, 0) AS credits)
        FROM lots_open l LEFT JOIN prior_lot_draws d USING (lot_id)
    """)


def _check_lots(con: duckdb.DuckDBPyConnection) -> None:
    """Published lots are unchanged; a lot that is new (the as-of date moved on) opens after
    the watermark, so no charge already made could have drawn on it."""
    changed = _one(
        con,
        """
        SELECT count(*) FROM warehouse.credit_lots p
        LEFT JOIN lots l USING (lot_id)
        WHERE l.lot_id IS NULL OR l.credits <> p.credits OR l.effective_on <> p.effective_on
           OR l.expires_on <> p.expires_on OR l.kind <> p.lot_kind
        """,
    )
    if changed:
        raise NotIncremental("lots changed")
    early = _one(
        con,
        """
        SELECT count(*) FROM lots l JOIN published_watermarks w USING (vendor)
        WHERE l.lot_id NOT IN (SELECT lot_id FROM warehouse.credit_lots)
          AND l.effective_on::TIMESTAMP <= w.watermark
        """,
    )
    if early:
        raise NotIncremental("a new lot opens before the last charge")


def _check_reversals(con: duckdb.DuckDBPyConnection) -> None:
    """No reversal touches the night's records or comes after the watermark; the reversals
    already applied are in the published ledger, so the night applies none."""
    touched = _one(
        con,
        """
        SELECT count(*) FROM cfg_reversals r
        WHERE EXISTS (SELECT 1 FROM charges c
                      WHERE c.vendor = r.vendor AND c.export_id = r.reference)
           OR EXISTS (SELECT 1 FROM charges c
                      WHERE c.vendor = r.vendor AND c.record_key = record_id(r.reference))
        """,
    )
    if touched:
        raise NotIncremental("a reversal refers to a record of the night")
    late = _one(
        con,
        """
        SELECT count(*) FROM reversals r JOIN published_watermarks w USING (vendor)
        WHERE r.reversed_at > w.watermark
        """,
    )
    if late:
        raise NotIncremental("a reversal is dated after the last charge")
    con.execute("DELETE FROM reversals; DELETE FROM reversal_targets")


def charges_eligible(con: duckdb.DuckDBPyConnection) -> None:
    """Before the charges: the night's records can be added (the adapters' conflicts, the
    watermarks), then prior_charges."""
    _check_adapters(con)
    _check_after_watermarks(con, _published_run(con))
    _load_prior_charges(con)


def lots_eligible(con: duckdb.DuckDBPyConnection) -> None:
    """Before the lots are drawn on: no reversal and no lot change what was published, then
    what earlier nights drew (prior_lot_draws, lots_left). The last check: past it the night
    writes into the copy."""
    _check_reversals(con)
    _check_lots(con)
    failpoint("build:write")
    _load_prior_draws(con)


def burn_lots_left(con: duckdb.DuckDBPyConnection) -> int:
    """Rules 3 and 5 on what is left of the lots open at the watermark (lots_left)."""
    return ledger.burn_lots(con, "lots_left")


def merge_ledger(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The night's entries into the warehouse copy's ledger. Returns the booking-month
    partitions (Parquet folder names) it changed. The close's ``then`` does not run at night
    (no closed month can change: checked), so the published entries stand; first_open, which
    it leaves for the models after it, is made here."""
    con.execute("ALTER TABLE ledger_entries RENAME TO night_entries")
    # Forfeits of lots still open at the watermark are decided again with the night's draws;
    # grants only for lots that are new.
    con.execute("""
        CREATE TABLE night_changes AS
        SELECT * FROM night_entries
        WHERE entry_type IN ('consume', 'overage', 'reexport')
           OR (entry_type = 'forfeit' AND entry_id IN (SELECT 'forfeit:' || lot_id FROM lots_open))
           OR (entry_type = 'grant' AND lot_id NOT IN (SELECT lot_id FROM warehouse.credit_lots))
    """)
    con.execute("""
        CREATE TABLE dropped_forfeits AS
        SELECT entry_id, booking_month FROM warehouse.ledger_entries
        WHERE entry_type = 'forfeit' AND entry_id IN (SELECT 'forfeit:' || lot_id FROM lots_open)
    """)
    months = {
        f"booking_month={m}"
        for (m,) in con.sql(
            "SELECT booking_month FROM night_changes "
            "UNION SELECT booking_month FROM dropped_forfeits"
        ).fetchall()
    }
    con.execute(
        "DELETE FROM warehouse.ledger_entries "
        "WHERE entry_type = 'forfeit' AND entry_id IN (SELECT entry_id FROM dropped_forfeits)"
    )
    con.execute("INSERT INTO warehouse.ledger_entries BY NAME SELECT * FROM night_changes")
    con.execute("CREATE TABLE night_entry_ids AS SELECT entry_id FROM night_changes")
    con.execute("DROP TABLE night_entries; DROP TABLE night_changes; DROP TABLE dropped_forfeits")
    # The audits check the night's entries, and any older one with the same id.
    con.execute("""
        CREATE TEMP VIEW entries_to_audit AS
        FROM warehouse.ledger_entries WHERE entry_id IN (SELECT entry_id FROM night_entry_ids)
    """)
    if pipeline.closed_months(con):
        close.create_first_open(con)
    return months


def merge_duplicates(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The night's repeats after the published ones. Returns the month partitions changed."""
    months = {
        f"month={m}"
        for (m,) in con.sql("SELECT DISTINCT month FROM duplicate_reexports").fetchall()
    }
    con.execute(
        "INSERT INTO warehouse.duplicate_reexports BY NAME "
        "SELECT * FROM duplicate_reexports ORDER BY vendor, repeat_exported_at, record_key"
    )
    con.execute("DROP TABLE duplicate_reexports")
    return months


def add_daily_charges(con: duckdb.DuckDBPyConnection) -> None:
    """The night's sums added to the published ones, per vendor, user, client and day."""
    con.execute("ALTER TABLE daily_charges RENAME TO night_daily_charges")
    con.execute("""
        CREATE TABLE daily_charges AS
        SELECT vendor, user, client_id, day, sum(records)::BIGINT AS records,
               sum(charged_records)::BIGINT AS charged_records, sum(credits)::BIGINT AS credits
        FROM (FROM warehouse.daily_charges UNION ALL BY NAME FROM night_daily_charges)
        GROUP BY ALL
        ORDER BY ALL
    """)
    con.execute("DROP TABLE night_daily_charges")


def add_purchase_counts(con: duckdb.DuckDBPyConnection) -> None:
    """The published purchase counts (purchase_quality's) beside the night's."""
    con.execute(
        "INSERT INTO purchase_counts SELECT vendor, client_id, month, "
        "email_confidence, contacts, credits FROM warehouse.purchase_quality"
    )


def _after_published(con: duckdb.DuckDBPyConnection, table: str, order: str) -> None:
    """The night's files' rows after the published ones (which the night cannot change:
    their files' fate was checked to be the same)."""
    con.execute(f"ALTER TABLE {table} RENAME TO night_{table}")
    con.execute(
        f"CREATE TABLE {table} AS FROM warehouse.{table} "
        f"UNION ALL BY NAME FROM night_{table} ORDER BY {order}"
    )
    con.execute(f"DROP TABLE night_{table}")


def add_quarantine(con: duckdb.DuckDBPyConnection) -> None:
    """ingest_manifest, which reads it after, counts rows per file of the night's
    (file_status): the published rows are of other files and count in none."""
    _after_published(con, "quarantine", "file, row_number")


def add_ingest_manifest(con: duckdb.DuckDBPyConnection) -> None:
    _after_published(con, "ingest_manifest", "source, path, ingested_at")


def add_watermarks(con: duckdb.DuckDBPyConnection) -> None:
    """The night's watermarks, and the published ones for vendors without new records."""
    con.execute("""
        INSERT INTO watermarks
        SELECT * FROM published_watermarks WHERE vendor NOT IN (SELECT vendor FROM watermarks)
    """)


def build_night(
    store: Path,
    warehouse: Path,
    params: pipeline.RunParams,
    current_config: dict[str, str | None],
    parquet: bool = True,
    on_step: Callable[[str, float], None] | None = None,
) -> tuple[dict[str, int], str]:
    """Add the night's new files to the published warehouse; publish the result like a full
    rebuild does (a new file swapped in once audited). Returns row counts and what it did.
    Raises NotIncremental, before anything is published, when the night must be rebuilt in
    pipeline.

    The published file is copied (bytes, not through DuckDB: an analyst's connection, even a
    read-write one, does not block a copy) and the copy is attached as ``warehouse``. Until
    the end its tables are the published ones: those it changes in place (night kind
    ``merged``) are read before they are changed, and through a view of the copy after.
    Each model is made as its declaration's ``[night]`` says (transforms/runner.py).
    """
    if not warehouse.exists():
        raise NotIncremental("nothing is published yet")
    if parquet and not parquet_dir(warehouse).exists():
        raise NotIncremental("the Parquet copy is missing")
    clock = pipeline.Clock(on_step)
    work = Workspace(warehouse)
    work.clear_stale()
    why = work.changed_since_published()
    if why:
        raise NotIncremental(why)
    shutil.copyfile(warehouse, work.building)
    why = work.changed_since_published()  # written to while we copied it?
    if why:
        work.discard()
        raise NotIncremental(why)
    con = pipeline.connect(store, work, params, current_config)
    try:
        con.execute("ATTACH ? AS warehouse", [str(work.building)])
        clock.done("copy warehouse file")
        run = _check_run(con, params, current_config)
        new_files = _night_files(con)
        nothing_new = not new_files and params.as_of == run["as_of"]
        if nothing_new:  # what a build would write is what is published
            counts = {
                m.name: _one(con, f"SELECT count(*) FROM warehouse.{m.name}")
                for m in models().published
            }
    except BaseException:
        con.close()
        work.discard()
        raise
    if nothing_new:
        con.close()
        work.discard()
        return counts, "nothing new since the last publish: the warehouse is as it was"
    changed: dict[str, set[str]] = {}
    with work.publishing(con):
        con.execute("DELETE FROM build_files")
        con.execute(f"INSERT INTO build_files {pipeline.BUILD_FILES} FROM night_files")
        clock.done("setup")
        plan = models()
        for model in plan.order:
            night = model.night
            if night.before:
                resolve(night.before)(con)
                clock.done(night.before.partition(":")[2])
            step = resolve(night.step) if night.step else None
            plan.run(con, model, then=night.then, step=step)
            if night.merge:
                changed[model.name] = resolve(night.merge)(con)
                con.execute(f"CREATE VIEW {model.name} AS FROM warehouse.{model.name}")
            if night.add:
                resolve(night.add)(con)
            plan.release(con, model)
            clock.done(model.name)
        counts = pipeline.finish(con, params, current_config, "incremental")
        clock.done("audits")
        con.execute("DETACH ingest")
        for table in [m.name for m in plan.published if m.name not in plan.merged]:
            con.execute(f"DROP TABLE IF EXISTS warehouse.{table}")
            con.execute(f"CREATE TABLE warehouse.{table} AS FROM memory.{table}")
        con.execute("USE warehouse")
        describe_tables(con)
        con.execute("USE memory")
        con.execute("CHECKPOINT warehouse")
        clock.done("write warehouse file")
        pipeline.write_side_dirs(con, work, parquet, changed)
        for table in plan.merged:
            con.execute(f"DROP VIEW {table}")
        con.execute("DETACH warehouse")
        clock.done("write disputes and parquet")
    return counts, f"incremental: {new_files} new files added to the published warehouse"
