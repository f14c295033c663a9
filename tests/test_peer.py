"""The benchmark's peer (benchmarks/peer.py), the script an analyst might write instead,
counts what the pipeline counts on a clean synthetic folder: a fair yardstick for speed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb

from generators.synthetic import generate
from tests.conftest import REPO, run_pipeline


def test_the_peer_counts_what_the_pipeline_charges_on_clean_files(tmp_path: Path) -> None:
    # No broken IDs (the peer would count `1.3E+09` as an ID) and 4 months, so no record
    # is exported again after 12 months (where the previous-export test and the rule part).
    generate(tmp_path / "d", records=12_000, clients=5, months=4, seed=9, bad_row_share=0)
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "peer.py"),
            str(tmp_path / "d"),
            str(tmp_path / "p.duckdb"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    peer = duckdb.connect(str(tmp_path / "p.duckdb"), read_only=True)
    counted = peer.sql(
        "SELECT client_id, month, charged, free_reexports FROM monthly_counts ORDER BY ALL"
    ).fetchall()
    assert sum(r[2] + r[3] for r in counted) == 12_000
    assert sum(r[3] for r in counted) > 500  # a tenth of the rows export an earlier ID
    con = run_pipeline(tmp_path / "d", tmp_path / "w.duckdb", dt.date(2025, 5, 2))
    charged = con.sql(
        "SELECT client_id, month, charged_credits, free_reexports FROM monthly_balances "
        "WHERE charged_credits + free_reexports > 0 ORDER BY ALL"
    ).fetchall()
    assert counted == charged
