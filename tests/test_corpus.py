"""The bad-input corpus (tests/corpus/): each file gives a clear error or quarantine rows with
reasons, input rows = loaded + quarantined for every file, and nothing outside the data
folder is read or written."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, rows, run_pipeline

CORPUS = REPO / "tests" / "corpus"
D = "inbox/zoominfo/downloads/"
X = "inbox/zoominfo/exports/"
U = "inbox/zoominfo/usage/"

# path: (status, rows read, loaded, quarantined, {row: words its reason must contain})
EXPECTED: dict[str, tuple[str, int, int, int, dict[int, str]]] = {
    "config/allocations.csv": (
        "loaded",
        3,
        2,
        1,
        {4: "row 2 already sets zoominfo for acme from 2025-09"},
    ),
    "config/clients.csv": ("loaded", 2, 2, 0, {}),
    "config/contracts.csv": ("loaded", 1, 1, 0, {}),
    "config/grants.csv": (
        "loaded",
        3,
        1,
        2,
        {3: "credits must be more than 0 (got '-5')", 4: "kind must be one of"},
    ),
    "config/reversals.csv": ("loaded", 0, 0, 0, {}),
    "config/users.csv": (
        "loaded",
        4,
        2,
        2,
        {
            4: "client_id 'acmee' is not in clients.csv",
            5: "already mapped for these dates by users.csv row 2",
        },
    ),
    D + "01_bom_us_dates.csv": (
        "loaded",
        1,
        0,
        1,
        {2: "listed again in inbox/zoominfo/downloads/10_redelivered.csv"},
    ),
    D + "02_cp1252_semicolons.csv": ("loaded", 1, 1, 0, {}),
    D + "03_day_first_dates.csv": (
        "loaded",
        2,
        0,
        2,
        {2: '"31/10/2025 17:40" is not a date', 3: '"25/10/2025" is not a date'},
    ),
    D + "04_missing_column.csv": (
        "rejected",
        1,
        0,
        1,
        {2: "file rejected: no 'Export Date' column"},
    ),
    D + "05_extra_columns.csv": ("loaded", 1, 1, 0, {}),
    D + "06_renamed_columns.csv": ("loaded", 1, 1, 0, {}),
    D + "07_duplicated_column.csv": (
        "rejected",
        1,
        0,
        1,
        {2: "'Credits Used', 'Credits Used' all mean credits_used"},
    ),
    D + "08_negative_fractional.csv": (
        "loaded",
        1,
        0,
        1,
        {2: "Records must not be negative (got '-3'); Credits Used: \"2.5\" is not a whole number"},
    ),
    D + "09_future_date.csv": (
        "loaded",
        1,
        0,
        1,
        {2: "after the as-of date 2025-10-31; it counts in a later run"},
    ),
    D + "10_redelivered.csv": ("loaded", 1, 1, 0, {}),
    D + "11_path_traversal.csv": ("loaded", 2, 2, 0, {}),
    D + "12_formula_text.csv": ("loaded", 1, 1, 0, {}),
    D + "13_header_only.csv": ("loaded", 0, 0, 0, {}),
    D + "14_empty.csv": ("rejected", 0, 0, 0, {}),
    D + "15_truncated_last_line.csv": ("loaded", 2, 1, 1, {3: "fewer columns than the header"}),
    D + "16_unbalanced_quote.csv": ("loaded", 1, 0, 1, {2: "a quote is opened and never closed"}),
    D + "17_same_file_twice.csv": ("duplicate", 0, 0, 0, {}),
    D + "18_mixed_line_endings.csv": (
        "rejected",
        3,
        0,
        3,
        {n: "file cannot be read as CSV" for n in (2, 3, 4)},
    ),
    X + "bom_export.csv": ("loaded", 3, 3, 0, {}),
    X + "formula_export.csv": ("loaded", 1, 1, 0, {}),
    X + "future_export.csv": (
        "loaded",
        1,
        0,
        1,
        {2: "its listing row is not used: Export Date 2030-01-01"},
    ),
    X + "latin1_export.csv": (
        "loaded",
        2,
        0,
        2,
        {
            2: "no loaded downloads listing row names this file",
            3: "no loaded downloads listing row names this file",
        },
    ),
    X + "orphan_export.csv": (
        "loaded",
        1,
        0,
        1,
        {2: "no loaded downloads listing row names this file"},
    ),
    X + "semi_export.csv": ("loaded", 2, 1, 1, {3: '"1.3E+09" is a number Excel rounded'}),
    X + "tab_export.csv": (
        "loaded",
        2,
        1,
        1,
        {3: "row of a Contacts export has no ZoomInfo Contact ID"},
    ),
    X + "trunc_export.csv": ("loaded", 1, 1, 0, {}),
    U + "usage_bad_values.csv": (
        "loaded",
        2,
        0,
        2,
        {2: '"Octobre 2025" is not a month', 3: "User is empty"},
    ),
    U + "usage_ok.csv": ("loaded", 2, 2, 0, {}),
}


def tree(root: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("corpus")
    data = root / "agency"
    shutil.copytree(CORPUS, data)
    # A re-delivered listing is the one delivered later (modified later), whatever its name.
    for n, name in enumerate(["01_bom_us_dates.csv", "10_redelivered.csv"]):
        os.utime(data / D / name, ns=(1_761_000_000_000_000_000 + n, 1_761_000_000_000_000_000 + n))
    (root / "neighbour.txt").write_text("must stay untouched")
    before_data, before_root = tree(data), tree(root)
    con = run_pipeline(data, root / "agency" / "warehouse" / "w.duckdb", dt.date(2025, 10, 31))
    outside = {k: v for k, v in tree(root).items() if not k.startswith("agency/")}
    assert outside == {k: v for k, v in before_root.items() if not k.startswith("agency/")}
    inputs_after = {k: v for k, v in tree(data).items() if not k.startswith("warehouse/")}
    assert inputs_after == before_data  # inputs are read, never changed
    yield con
    con.close()


def test_corpus_has_at_least_25_inbox_files() -> None:
    assert len(list((CORPUS / "inbox").rglob("*.csv"))) >= 25


def test_each_file_is_loaded_or_quarantined_as_expected(corpus_run) -> None:  # type: ignore[no-untyped-def]
    manifest = {r["path"]: r for r in rows(corpus_run, "SELECT * FROM ingest_manifest")}
    assert set(manifest) == set(EXPECTED)
    reasons = {
        (r["file"], r["row_number"]): r["reason"]
        for r in rows(corpus_run, "SELECT file, row_number, reason FROM quarantine")
    }
    for path, (status, read, loaded, quarantined, why) in EXPECTED.items():
        m = manifest[path]
        assert (m["status"], m["rows_read"], m["rows_loaded"], m["rows_quarantined"]) == (
            status,
            read,
            loaded,
            quarantined,
        ), path
        assert m["rows_read"] == m["rows_loaded"] + m["rows_quarantined"]
        mine = {row: reason for (file, row), reason in reasons.items() if file == path}
        assert set(mine) == set(why), path
        for row, words in why.items():
            assert words in mine[row], (path, row, mine[row])
    assert manifest[D + "14_empty.csv"]["error"] == "file is empty (not even a header row)"
    assert manifest[D + "02_cp1252_semicolons.csv"]["encoding"] == "cp1252"
    assert manifest[X + "latin1_export.csv"]["encoding"] == "latin-1"
    assert manifest[D + "17_same_file_twice.csv"]["duplicate_of"] == D + "01_bom_us_dates.csv"


def test_what_the_corpus_loads_is_read_right(corpus_run) -> None:  # type: ignore[no-untyped-def]
    charged = rows(
        corpus_run,
        "SELECT client_id, export_id, record_key FROM ledger_entries "
        "WHERE entry_type IN ('consume', 'overage') ORDER BY record_key",
    )
    assert [(r["client_id"], r["export_id"], r["record_key"]) for r in charged] == [
        ("acme", "L1", "1300000001"),  # 1.300000001E+9 with every digit kept
        ("acme", "L1", "1300000002"),  # 1300000002.0
        ("acme", "L1", "1300000003"),
        ("beta", "L2", "1300000004"),  # cp1252 listing with ';', ';' export file
        ("beta", "L7", "1300000005"),  # renamed headers, tab-separated export
        ("acme", "L13", "1300000010"),  # a formula-looking cell is only text
        ("beta", "L14", "1300000011"),
    ]
    # '../../../../etc/passwd' and '..\\..\\config\\users.csv' name only files inside exports/
    assert rows(corpus_run, "SELECT * FROM ledger_entries WHERE export_id IN ('L11', 'L12')") == []
    balances = rows(
        corpus_run,
        "SELECT client_id, month, available_credits, charged_credits FROM monthly_balances WHERE month = '2025-10-01' ORDER BY 1",
    )
    assert [(b["client_id"], b["available_credits"], b["charged_credits"]) for b in balances] == [
        ("acme", 120, 4),
        ("beta", 50, 3),
    ]
