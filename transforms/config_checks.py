"""Checks of the agency's configuration that stop a run before it builds anything.

Most config problems are one row's: that row is quarantined with its reason and the rest
is used (models/config/). These are not: a config file rejected whole, or a contracts file with
a row that cannot be used, or two contracts of one vendor covering the same day. Building
on them would bill charges against the wrong pool (or all as overage) and publish it, so
the run stops with one line naming the file and rows, and the published warehouse stays.
So does a billing.csv row that cannot be used: a client's statement would go out, final
at the close, without what it owes or with the wrong amount.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from schemas.inputs import SOURCE_BY_NAME, VENDORS
from transforms.config_errors import ConfigError

SHOWN = 3  # problems named in the message; the count says if there are more


def _message(path: str, problems: list[str]) -> str:
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return f"{path}: {'; '.join(problems[:SHOWN])}{more}; nothing was published"


def check_config(store: Path, current_config: dict[str, str | None]) -> None:
    """Raise ConfigError if the config present now cannot be built on."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        for source, file_id in sorted(current_config.items()):
            if file_id is None:
                continue
            path = SOURCE_BY_NAME[source].pattern
            status = con.execute(
                "SELECT status, error FROM ingest_files WHERE file_id = ? AND path = ?",
                [file_id, path],
            ).fetchall()
            if status and status[0][0] == "rejected":
                raise ConfigError(_message(path, [f"the file is rejected: {status[0][1]}"]))
        _check_billing(con, current_config)
        contracts = current_config.get("contracts")
        if contracts is None:
            return
        path = SOURCE_BY_NAME["contracts"].pattern
        problems = _quarantined(con, contracts)
        problems += [
            f"row {n}: ends_on {e} is not after starts_on {s}"
            for n, s, e in con.execute(
                "SELECT row_number, starts_on, ends_on FROM stg_contracts "
                "WHERE file_id = ? AND ends_on <= starts_on ORDER BY 1",
                [contracts],
            ).fetchall()
        ]
        problems += [
            f"rows {a} and {b}: contract_id {cid} is used twice"
            for a, b, cid in con.execute(
                "SELECT a.row_number, b.row_number, b.contract_id FROM stg_contracts a "
                "JOIN stg_contracts b ON a.file_id = b.file_id AND a.vendor = b.vendor "
                "AND lower(a.contract_id) = lower(b.contract_id) AND a.row_number < b.row_number "
                "WHERE a.file_id = ? ORDER BY 1, 2",
                [contracts],
            ).fetchall()
        ]
        problems += [
            f"rows {a} and {b}: {vendor} contracts overlap from {start} to {end} "
            "(one contract per vendor on any day)"
            for a, b, vendor, start, end in con.execute(
                "SELECT a.row_number, b.row_number, a.vendor, greatest(a.starts_on, b.starts_on), "
                "least(a.ends_on, b.ends_on) FROM stg_contracts a JOIN stg_contracts b "
                "ON a.file_id = b.file_id AND a.vendor = b.vendor AND a.row_number < b.row_number "
                "AND a.starts_on < b.ends_on AND b.starts_on < a.ends_on "
                "AND lower(a.contract_id) <> lower(b.contract_id) "
                "WHERE a.file_id = ? ORDER BY 1, 2",
                [contracts],
            ).fetchall()
        ]
        if problems:
            raise ConfigError(_message(path, problems))
        if not con.execute(
            "SELECT count(*) FROM stg_contracts WHERE file_id = ?", [contracts]
        ).fetchall()[0][0]:
            raise ConfigError(_message(path, ["no contract rows (every charge would be overage)"]))
    finally:
        con.close()


# A billing.csv row that cannot be used as written, and why (policy and its columns).
BILLING_ROW_PROBLEMS = """
SELECT row_number, CASE
    WHEN client_id NOT IN (SELECT client_id FROM stg_clients WHERE file_id = $clients)
        THEN format('client_id ''{}'' is not in clients.csv', client_id)
    WHEN vendor IS NOT NULL AND NOT list_contains($vendors, vendor)
        THEN format('vendor ''{}'' is not one of {} (leave it blank for every vendor)',
                    vendor, array_to_string($vendors, ', '))
    WHEN policy = 'cost_plus' AND markup_percent IS NULL
        THEN 'policy cost_plus needs a markup_percent'
    WHEN policy = 'included' AND included_credits IS NULL
        THEN 'policy included needs included_credits (the credits a month included)'
    WHEN policy = 'at_cost' AND markup_percent IS NOT NULL
        THEN 'policy at_cost takes no markup_percent (cost_plus adds one)'
    -- the invoice keeps a markup to 4 decimals below 100,000%; beyond 10,000% (a price a
    -- hundred times the cost) it is a typo, not a policy
    WHEN markup_percent > 10000
        THEN format('markup_percent {} is more than 10000 (a hundred times the cost)',
                    markup_percent)
    WHEN policy <> 'included' AND included_credits IS NOT NULL
        THEN format('included_credits is for policy included only (this row is {})', policy)
    WHEN row_number <> min(row_number) OVER (PARTITION BY client_id, coalesce(vendor, ''))
        THEN format('row {} already sets the policy of {}{}',
                    min(row_number) OVER (PARTITION BY client_id, coalesce(vendor, '')),
                    client_id, CASE WHEN vendor IS NULL THEN '' ELSE ' for ' || vendor END)
    END AS problem
FROM stg_billing WHERE file_id = $billing
"""


def _quarantined(con: duckdb.DuckDBPyConnection, file_id: str) -> list[str]:
    """The rows of a config file that ingest quarantined, as 'row N: reason'."""
    return [
        f"row {n}: {reason}"
        for n, reason in con.execute(
            "SELECT row_number, reason FROM ingest_quarantine WHERE file_id = ? ORDER BY 1",
            [file_id],
        ).fetchall()
    ]


def _check_billing(con: duckdb.DuckDBPyConnection, current_config: dict[str, str | None]) -> None:
    """billing.csv: every row usable, and a price for every credit it bills."""
    billing = current_config.get("billing")
    if billing is None:
        return
    path = SOURCE_BY_NAME["billing"].pattern
    problems = _quarantined(con, billing)
    problems += [
        f"row {n}: {problem}"
        for n, problem in con.execute(
            f"SELECT * FROM ({BILLING_ROW_PROBLEMS}) WHERE problem IS NOT NULL ORDER BY 1",
            {"clients": current_config.get("clients"), "vendors": VENDORS, "billing": billing},
        ).fetchall()
    ]
    # Credits are billed at the contract's price: a contract without one cannot be billed.
    problems += [
        f"row {n}: {vendor} contract {contract} has no price_per_credit in contracts.csv "
        "to bill from"
        for n, vendor, contract in con.execute(
            "SELECT b.row_number, k.vendor, k.contract_id FROM stg_billing b "
            "JOIN stg_contracts k ON k.file_id = $contracts AND k.price_per_credit IS NULL "
            "AND (b.vendor IS NULL OR b.vendor = k.vendor) WHERE b.file_id = $billing "
            "ORDER BY 1, 2",
            {"contracts": current_config.get("contracts"), "billing": billing},
        ).fetchall()
    ]
    if problems:
        raise ConfigError(_message(path, problems))
