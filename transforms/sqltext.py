"""SQL text for the statements DuckDB takes no parameter in.

Every value that can be a parameter (``?`` or ``$name``) is passed as one, paths of ATTACH
and COPY ... TO included. COMMENT ON takes only a literal: its text goes through
``sql_string``; a column name read back from the catalog through ``sql_identifier``.
"""

from __future__ import annotations

from pathlib import Path


def sql_string(text: str | Path) -> str:
    """``text`` as an SQL string literal: ``O'Brien's`` stays one string (single quotes
    doubled). A NUL cannot be in a literal and is refused."""
    text = str(text)
    if "\0" in text:
        raise ValueError(f"{text!r} contains a NUL character")
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier (double quotes doubled)."""
    if "\0" in name:
        raise ValueError(f"{name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'
