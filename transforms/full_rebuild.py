"""A full rebuild: every mart from every staged row, into a new file swapped in once audited.
Models run in the order their declarations give (transforms/runner.py); one written in
place goes straight into the new file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from transforms.dictionary import describe_tables
from transforms.failpoints import failpoint
from transforms.pipeline import Clock, RunParams, connect, finish, write_side_dirs
from transforms.publish import Workspace
from transforms.runner import MACROS, models


def full_rebuild(
    store: Path,
    warehouse: Path,
    params: RunParams,
    current_config: dict[str, str | None],
    parquet: bool,
    on_step: Callable[[str, float], None] | None,
    reason: str,
) -> dict[str, int]:
    """Every mart from every staged row, into a new file swapped in once audited."""
    clock = Clock(on_step)
    work = Workspace(warehouse)
    work.clear_stale()
    con = connect(store, work, params, current_config)
    with work.publishing(con):
        con.execute("ATTACH ? AS warehouse", [str(work.building)])
        clock.done("setup")
        plan = models()
        in_place = [m.name for m in plan.order if m.kind == "in_place"]
        for model in plan.order:
            if model.kind == "in_place":
                # Created in the new file; the build's own tables are still found.
                con.execute("USE warehouse")
                con.execute("SET search_path = 'warehouse.main,memory.main'")
            plan.run(con, model)
            if model.kind == "in_place":
                con.execute("USE memory")
                con.execute(f"CREATE VIEW {model.name} AS FROM warehouse.{model.name}")
            plan.release(con, model)
            clock.done(model.name)
        counts = finish(con, params, current_config, f"full rebuild: {reason}")
        clock.done("audits")
        con.execute("DETACH ingest")
        failpoint("build:write")
        for table in [m.name for m in plan.published if m.name not in in_place]:
            con.execute(f"CREATE TABLE warehouse.{table} AS FROM memory.{table}")
        con.execute("USE warehouse")
        for macro in MACROS:
            con.execute(macro.read_text())
        describe_tables(con)
        con.execute("USE memory")
        con.execute("CHECKPOINT warehouse")
        clock.done("write warehouse file")
        write_side_dirs(con, work, parquet)
        for table in in_place:
            con.execute(f"DROP VIEW {table}")
        con.execute("DETACH warehouse")
        clock.done("write disputes and parquet")
    return counts
