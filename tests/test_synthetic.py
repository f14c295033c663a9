"""The synthetic generator writes a folder the pipeline reads like a real one."""

from __future__ import annotations

import datetime as dt
import filecmp
from pathlib import Path

from generators.synthetic import add_day, generate
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


def test_a_narrow_folder_holds_only_the_ids_and_gives_the_same_figures(tmp_path: Path) -> None:
    wide = generate(tmp_path / "wide", records=4_000, clients=4, months=3, seed=5)
    narrow = generate(tmp_path / "narrow", records=4_000, clients=4, months=3, seed=5, narrow=True)
    assert narrow == wide
    exports = sorted((tmp_path / "narrow" / "inbox" / "zoominfo" / "exports").glob("*.csv"))
    assert exports and {p.read_text().splitlines()[0] for p in exports} == {
        "ZoomInfo Contact ID,ZoomInfo Company ID"
    }
    wide_header = tmp_path / "wide" / "inbox" / "zoominfo" / "exports" / exports[0].name
    assert len(wide_header.read_text().splitlines()[0].split(",")) == 10
    # Entry ids name the input file by its bytes, which differ; everything else is the same.
    sql = {
        "monthly_balances": "SELECT * FROM monthly_balances ORDER BY ALL",
        "ledger_entries": "SELECT * EXCLUDE (recorded_at, entry_id) FROM ledger_entries ORDER BY ALL",
    }
    got = {}
    for name in ("wide", "narrow"):
        con = run_pipeline(tmp_path / name, tmp_path / f"{name}.duckdb", dt.date(2025, 4, 5))
        got[name] = {t: con.sql(q).fetchall() for t, q in sql.items()}
        con.close()
    assert got["narrow"] == got["wide"]
    assert len(got["wide"]["ledger_entries"]) > 3_000
