"""Every mistake a user can make with the command ends in one line naming the file, option or
month, a non-zero exit and no traceback, and is answered before Prefect starts (there is no
Prefect API here: reaching Prefect would start a temporary server and take far longer)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_pipeline, write_folder
from tests.test_monthly_balances import SCENARIO
from transforms.close import close_month
from transforms.ingest import ingest_store_path

CREDITRECON = str(Path(sys.executable).parent / "creditrecon")
# Importing the command and reading a few files; well under what starting Prefect takes.
PROMPT = 5.0


def refused(*args: str, code: int = 1, prompt: float = PROMPT, **more_env: str) -> str:
    """Run the command, check it failed with one line on stderr, quickly; return the line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | more_env
    started = time.monotonic()
    run = subprocess.run(
        [CREDITRECON, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    took = time.monotonic() - started
    assert run.returncode == code, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert run.stdout == ""
    assert took < prompt, f"{took:.1f} s: {lines[0]}"
    return lines[0]


@pytest.fixture
def agency(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "agency", SCENARIO)


def nightly(agency: Path, *more: str) -> list[str]:
    return [
        "nightly",
        "--data",
        str(agency),
        "--warehouse",
        str(agency.parent / "w.duckdb"),
        *more,
    ]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('reporting_timezone = "Mars/Olympus"\n', "reporting_timezone = 'Mars/Olympus' is not"),
        ("reporting_timezone = UTC\n", "is not valid TOML"),
        ('reexport_window_months = "twelve"\n', "reexport_window_months = 'twelve' must be a"),
        ("reexport_window_months = 12.5\n", "reexport_window_months = 12.5 must be a whole"),
        ("reexport_window_months = 0\n", "reexport_window_months = 0 must be"),
        ("reexport_window = 12\n", "unknown settings ['reexport_window']"),
    ],
)
def test_a_bad_settings_file_is_named(agency: Path, toml: str, expected: str) -> None:
    (agency / "config" / "settings.toml").write_text(toml)
    line = refused(*nightly(agency, "--as-of", "2025-03-10"))
    assert str(agency / "config" / "settings.toml") in line
    assert expected in line


def test_a_missing_config_file_is_named_at_once(agency: Path) -> None:
    (agency / "config" / "users.csv").unlink()
    line = refused(*nightly(agency, "--as-of", "2025-03-10"))
    assert f"{agency / 'config' / 'users.csv'} is missing" in line


def test_bad_options(agency: Path, tmp_path: Path) -> None:
    assert "--data: " in refused("nightly", "--data", str(tmp_path / "nope"), code=2)
    assert "'10/11/2025' is not a date" in refused(
        *nightly(agency, "--as-of", "10/11/2025"), code=2
    )
    assert "'2025-13' is not a month" in refused("close", "2025-13", "--data", str(agency), code=2)
    (tmp_path / "folder.duckdb").mkdir()
    line = refused("nightly", "--data", str(agency), "--warehouse", str(tmp_path / "folder.duckdb"))
    assert "is a folder; give the DuckDB file" in line
    line = refused("status", "--warehouse", str(tmp_path / "none.duckdb"))
    assert "nothing is published at" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nightly", "--bogus"], "creditrecon nightly: No such option: --bogus"),
        (["close"], "creditrecon close: Missing argument 'month'."),
        (
            ["statements", "2025-13"],
            "creditrecon statements: '2025-13' is not a month like 2025-10",
        ),
        (["nope"], "creditrecon: No such command 'nope'."),
        (["nightly", "--as-of"], "creditrecon nightly: Option '--as-of' requires an argument."),
        (
            ["generate", "out", "--records", "many"],
            "creditrecon generate: Invalid value for '--records': ",
        ),
        (
            ["deploy-agencies", "agencies.toml"],
            "creditrecon deploy-agencies: Missing option '--pool'",
        ),
    ],
)
def test_a_usage_mistake_is_one_line_naming_it(args: list[str], expected: str) -> None:
    """What the command line itself refuses (not a known option, command or value) reads
    like every other mistake: one line, exit 2, no usage box."""
    line = refused(*args, code=2)
    assert line.startswith(expected), line
    assert "╭" not in line and "Usage:" not in line


def test_as_of_beyond_today_or_far_from_the_contracts_is_refused(agency: Path) -> None:
    line = refused(*nightly(agency, "--as-of", "9999-12-31"))
    assert "--as-of 9999-12-31 is after today" in line
    assert "--as-of-anyway" in line
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    assert f"--as-of {tomorrow} is after today" in refused(
        *nightly(agency, "--as-of", str(tomorrow))
    )
    # The scenario's contract runs through 2025: a day in 2019 is a typo.
    line = refused(*nightly(agency, "--as-of", "2019-03-10"))
    assert "before the first contract starts (2025-01-01" in line
    # More than 12 months after the contract ended (the date itself is in the past here).
    write_folder(
        agency,
        {
            "config/contracts.csv": """
                vendor,contract_id,starts_on,ends_on,pool_credits,reset,overage_allowed,cap_credits,price_per_credit
                zoominfo,ZI-1,2020-01-01,2021-01-01,20,monthly,true,25,0.5
            """
        },
    )
    line = refused(*nightly(agency, "--as-of", "2022-06-01"))
    assert "more than 12 months after the last contract ends (2021-01-01" in line


def test_closing_a_month_that_has_not_ended(agency: Path) -> None:
    line = refused("close", "2025-03", "--data", str(agency), "--as-of", "2025-03-10")
    assert line.endswith(
        "2025-03 has not ended by the as-of date 2025-03-10; close it on or after 2025-04-01"
    )


def test_closing_months_out_of_order_or_twice(agency: Path) -> None:
    warehouse = agency.parent / "w.duckdb"
    as_of = dt.date(2025, 3, 10)
    run_pipeline(agency, warehouse, as_of).close()
    args = ["--data", str(agency), "--warehouse", str(warehouse), "--as-of", "2025-03-10"]
    assert "close 2025-01 first: months close in order" in refused("close", "2025-02", *args)
    close_month(ingest_store_path(warehouse), warehouse, dt.date(2025, 1, 1), as_of)
    run_pipeline(agency, warehouse, as_of).close()
    assert refused("close", "2025-01", *args).endswith("2025-01 is already closed")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB file system (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_or_a_read_only_folder_is_refused(agency: Path, small_disk: Path) -> None:
    args = ["--data", str(agency), "--as-of", "2025-03-10", "--warehouse"]
    line = refused("nightly", *args, str(small_disk / "out" / "w.duckdb"))
    assert f"only 1 MB free on the disk of {small_disk}" in line
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    line = refused("nightly", *args, str(small_disk / "w.duckdb"))
    assert f"cannot write in {small_disk}" in line


def test_a_missing_file_is_not_retried() -> None:
    from prefect.states import Failed

    from flows.nightly import _transient

    assert _transient(None, None, Failed(data=OSError("file still being copied")))
    assert not _transient(None, None, Failed(data=FileNotFoundError(2, "missing", "users.csv")))
    assert not _transient(None, None, Failed(data=OSError(28, "No space left on device")))


def test_a_prefect_api_that_does_not_answer_is_named(agency: Path, tmp_path: Path) -> None:
    line = refused(
        *nightly(agency, "--as-of", "2025-03-10"),
        prompt=120,  # Prefect's client retries a few times first
        PREFECT_API_URL="http://127.0.0.1:9/api",
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    assert line == (
        "creditrecon nightly: cannot reach the Prefect API at http://127.0.0.1:9/api "
        "(PREFECT_API_URL): start the server, or unset PREFECT_API_URL to run with a "
        "temporary one"
    )
