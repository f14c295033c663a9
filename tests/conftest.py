from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.prefect_server import prefect_server_api  # noqa: F401  (a real server, per module)
from transforms.build import RunParams, build
from transforms.ingest import ingest, ingest_store_path
from transforms.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


def write_folder(root: Path, files: dict[str, str]) -> Path:
    """Write {relative path: CSV text} under root; text is dedented and stripped of the
    leading newline, so tests can show files as they look."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def run_pipeline(
    data: Path, warehouse: Path, as_of: dt.date, window: int = 12
) -> duckdb.DuckDBPyConnection:
    """Ingest and build without Prefect (the flow adds only orchestration around these),
    in the reporting time zone of the folder's config/settings.toml."""
    store = ingest_store_path(warehouse)
    result = ingest(data, store)
    zone = load_settings(data).reporting_timezone
    build(store, warehouse, RunParams(as_of, zone, window), result.current_config)
    return duckdb.connect(str(warehouse), read_only=True)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, object]]:
    rel = con.sql(sql)
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One temporary Prefect API server for the whole session; its URL for subprocesses."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # no network here to send it to
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield str(PREFECT_API_URL.value())
