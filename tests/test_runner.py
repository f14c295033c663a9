"""The runner orders models by what they declare they read, drops an intermediate after its
last reader, and refuses declarations that do not make a pipeline, in one line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import duckdb
import pytest

from transforms import runner
from transforms.runner import ModelError, plan


def declare(models: Path, path: str, sql: str | None, **keys: object) -> None:
    """models/<path>.toml (and .sql) with ``keys`` as its declaration."""
    toml = models / f"{path}.toml"
    toml.parent.mkdir(parents=True, exist_ok=True)
    lines = [f'description = "{Path(path).name}."']
    keys = {"kind": "table", "reads": [], "published": False, **keys}
    columns = keys.pop("columns", None)
    night = keys.pop("night", None)
    for key, value in keys.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
        else:
            lines.append(f'{key} = "{value}"')
    if night:
        lines += ["[night]", *(f'{k} = "{v}"' for k, v in night.items())]  # type: ignore[attr-defined]
    if columns:
        lines += ["[columns]", *(f'{c} = "{d}"' for c, d in columns.items())]  # type: ignore[attr-defined]
    toml.write_text("\n".join(lines) + "\n")
    if sql is not None:
        toml.with_suffix(".sql").write_text(sql)


def test_models_run_after_what_they_read_and_intermediates_go_after_their_last_reader(
    tmp_path: Path,
) -> None:
    m = tmp_path / "models"
    # Paths sort a_mart < b_view < c_base < d_other: the order must follow reads instead.
    declare(
        m,
        "z/a_mart",
        "CREATE TABLE a_mart AS FROM b_view",
        reads=["b_view"],
        published=True,
        columns={"n": "A number."},
        grain=["n"],
        partition="n",
    )
    declare(m, "z/b_view", "CREATE VIEW b_view AS FROM c_base", kind="view", reads=["c_base"])
    declare(m, "z/c_base", "CREATE TABLE c_base AS SELECT 1 AS n", reads=["build_files"])
    declare(m, "z/d_other", "CREATE TABLE d_other AS FROM c_base", reads=["c_base"])
    p = plan(m)
    assert [x.name for x in p.order] == ["c_base", "b_view", "d_other", "a_mart"]
    # c_base is read through the view b_view until a_mart has run; the view goes with it.
    assert p.drop_after == {"a_mart": ("c_base", "b_view")}
    assert [x.name for x in p.published] == ["a_mart"]
    assert p.parquet() == {"a_mart": "n"}

    con = duckdb.connect()
    for model in p.order:
        p.run(con, model)
        p.release(con, model)
    tables = {t for (t,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    views = {
        v for (v,) in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert (tables, views) == ({"a_mart", "d_other"}, set())
    # A row repeated breaks the declared grain: the audit counts the extra row.
    con.execute("INSERT INTO a_mart VALUES (1)")
    assert con.sql(runner.grain_audit(p)).fetchall() == [("a_mart", 1)]


def test_a_cycle_an_unknown_relation_or_a_model_without_declaration_is_one_error(
    tmp_path: Path,
) -> None:
    m = tmp_path / "cycle"
    declare(m, "x/a", "CREATE TABLE a AS FROM b", reads=["b"])
    declare(m, "x/b", "CREATE TABLE b AS FROM a", reads=["a"])
    declare(m, "x/c", "CREATE TABLE c AS SELECT 1", reads=[])
    with pytest.raises(ModelError, match=r"^models read each other in a cycle: a, b$"):
        plan(m)

    m = tmp_path / "unknown"
    declare(m, "x/a", "CREATE TABLE a AS FROM nowhere", reads=["nowhere"])
    with pytest.raises(ModelError, match=r"^x/a.toml: reads nowhere, which no model makes$"):
        plan(m)

    m = tmp_path / "undeclared"
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1")
    (m / "x" / "b.sql").write_text("CREATE TABLE b AS SELECT 1")
    with pytest.raises(ModelError, match=r"^x/b.sql: a model needs its declaration beside it"):
        plan(m)


def test_the_pipelines_declarations_publish_every_mart_with_its_description() -> None:
    """Each published model describes itself and its columns; the ledger is written in place."""
    p = runner.models()
    published = {x.name: x for x in p.published}
    assert published["ledger_entries"].kind == "in_place"
    assert published["ledger_entries"].night.kind == "merged"
    assert published["monthly_balances"].grain == ("vendor", "client_id", "month")
    assert p.parquet()["ledger_entries"] == "booking_month"
    assert "run_info" not in p.parquet()
    assert len(published) == 19  # with invoice_lines and alerts


def test_a_night_kind_or_key_the_runner_does_not_know_is_an_error_naming_the_file(
    tmp_path: Path,
) -> None:
    m = tmp_path / "night"
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1", night={"kind": "appended"})
    with pytest.raises(
        ModelError,
        match=r"^x/a.toml: night kind 'appended' is not one of recomputed, merged, added$",
    ):
        plan(m)
    # The full build's kind no longer takes the night's.
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1", kind="merged")
    with pytest.raises(ModelError, match=r"^x/a.toml: kind 'merged' is not one of table, view"):
        plan(m)
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1", night={"kind": "merged"})
    with pytest.raises(
        ModelError, match=r"^x/a.toml: night kind 'merged' names its merge callable$"
    ):
        plan(m)
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1", night={"kind": "added", "merge": "m:f"})
    with pytest.raises(ModelError, match=r"^x/a.toml: merge is only for night kind 'merged'$"):
        plan(m)
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1", night={"kind": "merged", "merge": "m:f"})
    with pytest.raises(ModelError, match=r"^x/a.toml: a merged model is merged into a published"):
        plan(m)
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1", night={"befor": "m:f"})
    with pytest.raises(ModelError, match=r"^x/a.toml: \[night\] has no key 'befor'"):
        plan(m)


def test_the_nights_merged_tables_are_exactly_those_declared_merged(tmp_path: Path) -> None:
    m = tmp_path / "models"
    columns = {"n": "A number."}
    declare(m, "x/a", "CREATE TABLE a AS SELECT 1 AS n", published=True, columns=columns)
    declare(
        m,
        "x/b",
        "CREATE TABLE b AS FROM a",
        reads=["a"],
        published=True,
        columns=columns,
        night={"kind": "merged", "merge": "m:merge_b"},
    )
    declare(
        m, "x/c", "CREATE TABLE c AS FROM b", reads=["b"], night={"kind": "added", "add": "m:f"}
    )
    assert plan(m).merged == ["b"]
    # The pipeline's: read from the declarations themselves.
    declared = sorted(
        path.stem
        for path in runner.MODELS.rglob("*.toml")
        if tomllib.loads(path.read_text()).get("night", {}).get("kind") == "merged"
    )
    assert sorted(runner.models().merged) == declared == ["duplicate_reexports", "ledger_entries"]
