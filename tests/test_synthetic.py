"""The synthetic generator writes a folder the pipeline reads like a real one."""

from __future__ import annotations

import datetime as dt
import filecmp
from pathlib import Path

from flows.synthetic import add_day, generate
from tests.conftest import rows, run_pipeline


def test_generated_folder_loads_and_accounts_for_every_row(tmp_path: Path) -> None:
    counts = generate(
        tmp_path / "a", records=20_000, clients=5, months=3, seed=7, bad_row_share=0.01
    )
    assert counts["export_rows"] == 20_000
    con = run_pipeline(tmp_path / "a", tmp_path / "w.duckdb", dt.date(2025, 4, 5))
    loaded = rows(
        con,
        "SELECT sum(rows_loaded) AS ok, sum(rows_quarantined) AS bad FROM ingest_manifest WHERE source = 'zoominfo_exports'",
    )[0]
    assert (loaded["ok"], loaded["bad"]) == (20_000 - counts["bad_rows"], counts["bad_rows"])
    charged = rows(
        con, "SELECT sum(charged_credits) AS n, sum(free_reexports) AS free FROM monthly_balances"
    )[0]
    assert charged["n"] + charged["free"] == 20_000 - counts["bad_rows"]
    assert charged["free"] > 1000  # about a tenth of the rows re-export an earlier ID
    con.close()
    day = add_day(tmp_path / "a", dt.date(2025, 4, 1), records=500, known_ids=counts["new_ids"])
    con = run_pipeline(tmp_path / "a", tmp_path / "w.duckdb", dt.date(2025, 4, 5))
    got = rows(
        con, "SELECT sum(rows_read) AS n FROM ingest_manifest WHERE source = 'zoominfo_exports'"
    )[0]["n"]
    assert got == 20_000 + day["export_rows"]


def test_generation_is_deterministic(tmp_path: Path) -> None:
    generate(tmp_path / "a", records=3_000, seed=3)
    generate(tmp_path / "b", records=3_000, seed=3)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv"))
    assert files and all(
        filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False) for f in files
    )
