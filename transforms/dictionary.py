"""The data dictionary: table and column comments from the models' declarations, and the
Markdown `creditrecon dictionary` prints from them (docs/data-dictionary.md)."""

from __future__ import annotations

import duckdb

from transforms.pipeline import AuditFailed
from transforms.runner import MACROS, MODELS, models
from transforms.sqltext import sql_identifier, sql_string

# The data dictionary's order: the ledger and what is built from it, then the inputs'
# accounts. A published table not named here comes after them, by name.
DICTIONARY_ORDER = [
    "ledger_entries",
    "monthly_balances",
    "forfeitures",
    "credit_lots",
    "duplicate_reexports",
    "disputes",
    "daily_charges",
    "purchase_quality",
    "vendor_reconciliation",
    "client_overconsumption",
    "pool_overconsumption",
    "pace_forecast",
    "closed_statements",
    "invoice_lines",
    "alerts",
    "clients",
    "quarantine",
    "ingest_manifest",
    "run_info",
]


def describe_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Table and column comments, readable from DuckDB itself (duckdb_columns())."""
    for model in models().published:
        table, docs = model.name, model.columns
        con.execute(f"COMMENT ON TABLE {table} IS {sql_string(model.description)}")
        columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        missing = [c for c in columns if c not in docs]
        if missing:
            where = model.path.relative_to(MODELS)
            raise AuditFailed(f"{table}: columns {missing} have no description in {where}")
        for column in columns:
            con.execute(
                f"COMMENT ON COLUMN {table}.{sql_identifier(column)} IS {sql_string(docs[column])}"
            )


def data_dictionary(con: duckdb.DuckDBPyConnection) -> str:
    """Markdown, from the warehouse's own table and column comments."""
    lines = [
        "# Data dictionary",
        "",
        "Generated from the warehouse's table and column comments.",
        "",
    ]
    tables = con.sql(
        "SELECT table_name, comment FROM duckdb_tables() "
        "WHERE database_name = current_database() ORDER BY table_name"
    ).fetchall()
    order = {t: i for i, t in enumerate(DICTIONARY_ORDER)}
    for table, comment in sorted(tables, key=lambda t: order.get(t[0], len(order))):
        lines += [
            f"## {table}",
            "",
            comment or "",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        for column, dtype, text in con.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() "
            "WHERE database_name = current_database() AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall():
            lines.append(f"| `{column}` | {dtype} | {text or ''} |")
        lines.append("")
    macros = con.sql(
        "SELECT DISTINCT function_name FROM duckdb_functions() "
        "WHERE function_type = 'table_macro' AND database_name = current_database() ORDER BY 1"
    ).fetchall()
    if macros:
        lines += ["## Table macros", ""]
        lines += [
            f"- `{m}(at_time TIMESTAMP)`: see transforms/models/{MACROS[0].relative_to(MODELS)}"
            for (m,) in macros
        ]
        lines.append("")
    return "\n".join(lines)
