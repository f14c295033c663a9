"""CSV for people who open it in a spreadsheet: a text cell a spreadsheet would run as a
formula (starting with =, +, - or @) is written as text, with a leading quote. The one
writer of the CSVs the pipeline hands out (statements, dispute files)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@")


def safe_cell(value: object) -> object:
    """``value``, or as text when a spreadsheet would take it for a formula."""
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value


def _field(value: object) -> str:
    text = "" if value is None else str(safe_cell(value))
    # Quoted when it holds the delimiter, a quote or a line break.
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(rows: Iterable[Sequence[object]], newline: str = "\r\n") -> str:
    """The rows (the first one the header) as CSV text, every text cell formula-safe."""
    return "".join(",".join(_field(v) for v in row) + newline for row in rows)
